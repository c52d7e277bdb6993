#!/usr/bin/env bash
# What a CPU cannot check (docs: ../shared/gpu_check.md): run once on a CUDA machine from the repository root.
#   bash benchmarks/gpu_check.sh            # OUT=dir for the logs (default: gpu_check_out)
# Needs torch (CUDA), accelerate, safetensors, einops, pillow, numpy, tqdm, psutil; pytest on PYTHONPATH.
# PRESET/FAMILY/BATCH shrink it for a dry run on a CPU (PRESET=tiny DEVICE=cpu), which skips the CUDA parts.
set -u
OUT=${OUT:-gpu_check_out}; PRESET=${PRESET:-paper-256}; BATCH=${BATCH:-32}; DEVICE=${DEVICE:-cuda}
RES=$(python -c "from families import FAMILIES; print(FAMILIES['stylegan_lite'].presets['$PRESET'].resolution)")
W=$(mktemp -d); mkdir -p "$OUT"; export PYTHONUNBUFFERED=1
step() { echo; echo "=== $* ($(date +%T))"; }
step "device"
python - <<'PY'
import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available(): print(torch.cuda.get_device_name(0), round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1), "GiB")
PY

step "1. the tests that skip without CUDA (and the rest of their file)"
timeout 240 python -m pytest -q -p no:cacheprovider -m "not slow or gpu" -rs tests/test_precision.py 2>&1 | tail -15

step "2. synthetic dataset at ${RES}px"
python - "$W/images" "$RES" <<'PY'
import sys, random
from pathlib import Path
from PIL import Image, ImageDraw
out, res = Path(sys.argv[1]), int(sys.argv[2]); out.mkdir(parents=True); rng = random.Random(0)
for i in range(256):
    im = Image.new("RGB", (res, res), tuple(rng.randrange(256) for _ in range(3))); d = ImageDraw.Draw(im)
    for _ in range(6):
        x, y, r = rng.randrange(res), rng.randrange(res), rng.randrange(res // 8, res // 3)
        d.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rng.randrange(256) for _ in range(3)))
    im.save(out / f"{i:03d}.png")
PY
python -m data_prep "$W/images" --out "$W/ds" --resolution "$RES" --quiet && echo "dataset ok: $(ls $W/ds)"

step "2. training throughput and peak memory at ${RES}px, batch $BATCH, bf16 (the benchmark's real train steps)"
timeout 200 python benchmarks/train_throughput.py --presets "$PRESET" --batch "$BATCH" --precision bf16 --final-only --steps 10 2>&1 | tail -8
step "2. the dry run's memory estimate for the same settings"
for fam in stylegan_lite progan; do
  python train.py --family $fam --preset "$PRESET" --batch-size "$BATCH" --mixed-precision bf16 --data "$W/ds" --out "$W/dry" --dry-run 2>&1 | grep -E "estimated memory|total peak"
done
step "2. train.py itself, stylegan_lite bf16, 3.2 kimg (100 steps at the first stages)"
timeout 120 python train.py --family stylegan_lite --preset "$PRESET" --batch-size "$BATCH" --mixed-precision bf16 --data "$W/ds" \
  --out "$W/bf16" --kimg 3.2 --checkpoint-kimg 3.2 --sample-kimg 100 --log-every 20 > "$OUT/bf16.log" 2>&1; echo "rc $?"
python - "$W/bf16/log.jsonl" <<'PY'
import json, sys; r = [json.loads(l) for l in open(sys.argv[1])]; t = [x for x in r if "img_per_s" in x]
print("records", len(r), "last kimg", r[-1].get("kimg"), "img/s (last 3 logs)", [round(x["img_per_s"]) for x in t[-3:]], "res", t[-1]["resolution"])
PY

step "3. 200 steps under fp16: finite losses, a sane loss scale"
if [ "$DEVICE" = cuda ]; then
  timeout 150 python train.py --family stylegan_lite --preset "$PRESET" --batch-size "$BATCH" --mixed-precision fp16 --data "$W/ds" \
    --out "$W/fp16" --kimg 6.4 --checkpoint-kimg 6.4 --sample-kimg 100 --log-every 10 > "$OUT/fp16.log" 2>&1; echo "rc $?"
  python - "$W/fp16" <<'PY'
import json, math, sys, glob, torch
run = sys.argv[1]; r = [json.loads(l) for l in open(run + "/log.jsonl")]
bad = [(x.get("step"), k) for x in r for k, v in x.items() if isinstance(v, float) and not math.isfinite(v)]
ck = sorted(glob.glob(run + "/checkpoints/ckpt-*"))
state = torch.load(ck[-1] + "/state.pt", weights_only=True, map_location="cpu") if ck else {}
print("steps", max(x.get("step", 0) for x in r), "non-finite values", bad[:5], "checkpoint", ck[-1:] , "loss scale", state.get("scaler", {}).get("scale"))
PY
fi

step "4. SIGTERM to the launcher mid-run (1 process, no --multi_gpu): checkpoint, exit 0, then resume"
python -m progan.training.launch --num_processes 1 train.py --family progan --preset "$PRESET" --batch-size "$BATCH" \
  --mixed-precision bf16 --data "$W/ds" --out "$W/sig" --kimg 200 --sample-kimg 100 --log-every 5 > "$OUT/sig.log" 2>&1 &
L=$!
for i in $(seq 1 120); do [ -s "$W/sig/log.jsonl" ] && [ "$(wc -l < "$W/sig/log.jsonl")" -ge 3 ] && break; sleep 1; done
kill -TERM $L; wait $L; echo "launcher rc $? after $(wc -l < "$W/sig/log.jsonl") log records"; ls "$W/sig/checkpoints"
python -m progan.training.launch --num_processes 1 train.py --family progan --preset "$PRESET" --batch-size "$BATCH" \
  --mixed-precision bf16 --data "$W/ds" --out "$W/sig" --kimg 200 --sample-kimg 100 --log-every 5 > "$OUT/resume.log" 2>&1 &
L=$!; sleep 45; kill -TERM $L; wait $L; echo "resumed run rc $?"; grep -i -m2 "resum" "$OUT/resume.log"; ls "$W/sig/checkpoints"
python - "$W/sig/log.jsonl" <<'PY'
import json, sys; k = [json.loads(l)["kimg"] for l in open(sys.argv[1]) if "kimg" in l]
print("kimg in the log never goes back:", all(b >= a for a, b in zip(k, k[1:])), "first", k[0], "last", k[-1])
PY

step "5. sampling latency"
timeout 120 python benchmarks/sample_latency.py --device "$DEVICE" --presets small-64 "$PRESET" --repeats 5 2>&1 | tail -12
python - "$DEVICE" <<'PY'
import sys, time, statistics, torch
from families import FAMILIES
from app.sampling import generate_images
dev = sys.argv[1]
for name in ("stylegan_lite", "progan"):
    fam = FAMILIES[name]
    t = time.perf_counter(); g = fam.generator_cls.from_pretrained(f"weights/{name}-openmoji", device=dev)
    first = time.perf_counter() - t
    assert next(g.parameters()).device.type == dev, "from_pretrained ignored the device"
    generate_images(g, range(16))
    times = []
    for rep in range(10):
        if dev == "cuda": torch.cuda.synchronize()
        t = time.perf_counter(); generate_images(g, range(rep * 16, rep * 16 + 16))
        if dev == "cuda": torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    print(f"bundled {name}: load {first:.2f} s, 16 seeds median {statistics.median(times) * 1000:.1f} ms on {dev}")
PY
rm -rf "$W"
