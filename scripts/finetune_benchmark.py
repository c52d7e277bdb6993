"""Fine-tuning on a small dataset, measured: the OpenMoji flags, from the bundled weights vs from scratch.

    python scripts/finetune_benchmark.py --kimg 20 --out runs/finetune-bench            # the README table
    python scripts/finetune_benchmark.py --kimg 0.064 --eval-num 50 --out /tmp/ft-smoke  # proves it runs

The dataset is one OpenMoji group, the flags: 186 images whose file names start with a regional-indicator
pair (1F1E6..1F1FF, 121 country flags) or a flag sequence (1F3F3 white flag and its rainbow/pride
variants, 1F3F4 black flag with the subdivision flags, 1F6A9, 1F38C, 1F3C1), cut from the built-in
64 px dataset (`$GAN_STUDIO_CACHE/datasets/openmoji-64`, made on first use) into ``OUT/flags-64``.

Each arm runs ``train.py`` (the command a user would run) for the same ``--kimg`` with the same seed,
then is evaluated like ``evaluate.py`` (Inception FID/KID, ``--eval-num`` generated images against
all 186 real ones; few reals bias FID upwards, so compare rows, not with published numbers):

- ``pretrained``: the bundled weights as they are (kimg 0), the starting point;
- ``scratch``: random initialization, the final resolution from the first step (``--no-progressive``,
  so every arm trains at 64 px for the same images; growing from 4 px would spend a small budget at
  low resolution);
- ``finetune``: ``--init-from`` the campaign checkpoint the bundled weights were exported from
  (``campaign/stylegan_lite-demo64-wgan``, 680.32 kimg: its G_ema is bit-identical to
  ``weights/stylegan_lite-openmoji``), so G, G_ema *and D* start pretrained;
- ``finetune+freezeD``: the same with ``--freeze-d N`` (Mo et al. 2020, section 3).

Freeze-D keeps pretrained D layers, so it needs a source with a discriminator: with ``--weights`` an
export instead (D then starts fresh) the Freeze-D arm freezes random layers. Prints a markdown table,
writes ``OUT/results.json`` and ``OUT/samples.png`` (rows: real flags, then the arms in ``--arms``
order; the same seeds in every row).
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FLAGS = re.compile(r"^(1F1E[6-9A-F]-1F1[EF][0-9A-F]|1F3F3|1F3F4|1F6A9|1F38C|1F3C1)[-.]")
RESOLUTION = 64


def flags_dataset(out: Path) -> Path:
    """The flags cut from the built-in 64 px OpenMoji dataset (every pyramid level), written once."""
    import numpy as np

    import data_prep
    from data_prep.writer import DatasetWriter

    target = out / f"flags-{RESOLUTION}"
    if (target / "manifest.json").exists():
        return target
    source = data_prep.builtin_openmoji(RESOLUTION)
    names = json.loads((source / "names.json").read_text())
    keep = [i for i, name in enumerate(names) if FLAGS.match(name)]
    levels = {r: data_prep.open_dataset(source, r) for r in data_prep.read_manifest(source)["resolutions"]}
    with DatasetWriter(target, list(levels)) as writer:
        for i in keep:
            writer.add({r: np.asarray(ds[i]) for r, ds in levels.items()})
        return writer.commit({"source": {"kind": "openmoji-subset", "location": str(source),
                                         "group": "flags", "pattern": FLAGS.pattern},
                              "counts": {"found": len(names), "kept": len(keep)}},
                             [names[i] for i in keep])


def train(arm: str, args: argparse.Namespace, data: Path) -> tuple[Path, float]:
    """Run train.py for one arm; returns (export dir, seconds)."""
    out = args.out / arm
    budget = f"{args.kimg:g}"
    command = [sys.executable, str(ROOT / "train.py"), "--family", args.family, "--preset", args.preset,
               "--data", str(data), "--out", str(out), "--kimg", budget, "--seed", str(args.seed),
               "--eval-kimg", "0", "--checkpoint-kimg", budget, "--sample-kimg", budget, *args.train_args]
    if arm == "scratch":
        command.append("--no-progressive")
    else:
        command += ["--init-from", str(args.weights)]
        if arm == "finetune+freezeD":
            command += ["--freeze-d", str(args.freeze_d)]
    print("$ " + " ".join(command[1:]), file=sys.stderr, flush=True)
    start = time.time()
    result = subprocess.run(command, cwd=ROOT)
    if result.returncode:
        raise SystemExit(f"error: arm {arm!r}: train.py exited with {result.returncode}")
    return out / "export", time.time() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=ROOT / "campaign" / "stylegan_lite-demo64-wgan",
                        help="what the fine-tunes start from: a checkpoint/run dir (has D) or an export")
    parser.add_argument("--pretrained", type=Path, default=ROOT / "weights" / "stylegan_lite-openmoji",
                        help="export scored as the 'pretrained' row (the --weights generator, exported)")
    parser.add_argument("--family", default="stylegan_lite")
    parser.add_argument("--preset", default="demo-64")
    parser.add_argument("--kimg", type=float, default=20.0, help="training budget of every arm")
    parser.add_argument("--freeze-d", type=int, default=2, help="Freeze-D blocks (of 5 at 64 px)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-num", type=int, default=1000, help="generated images per FID/KID")
    parser.add_argument("--inception", default=None, help="Inception TorchScript file (default: the metrics extra)")
    parser.add_argument("--arms", default="pretrained,scratch,finetune,finetune+freezeD")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "finetune-bench")
    parser.add_argument("train_args", nargs="*", help="after --: more train.py flags for every arm")
    args = parser.parse_args(argv)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = set(arms) - {"pretrained", "scratch", "finetune", "finetune+freezeD"}
    if unknown or not arms:
        print(f"error: unknown --arms {sorted(unknown)}", file=sys.stderr)
        return 2
    pretrained = args.pretrained

    import numpy as np
    import torch
    from accelerate import Accelerator

    import data_prep
    from app.sampling import generate_images, make_grid
    from families import load_generator
    from progan.hub import cache_root
    from progan.metrics.evaluation import dataset_key, evaluate_generator
    from progan.metrics.inception import load_feature_network

    args.out.mkdir(parents=True, exist_ok=True)
    data = flags_dataset(args.out)
    dataset = data_prep.open_dataset(data, RESOLUTION)
    acc = Accelerator(cpu=not torch.cuda.is_available())
    network = load_feature_network(args.inception, device=acc.device)
    seeds = list(range(8))
    rows: list[dict] = []
    figure = [np.asarray(dataset[i]).transpose(1, 2, 0) for i in range(0, len(dataset), len(dataset) // 8)][:8]
    for arm in arms:
        export, seconds = (pretrained, 0.0) if arm == "pretrained" else train(arm, args, data)
        generator = load_generator(export, device=acc.device)
        metrics = evaluate_generator(generator, dataset, network, accelerator=acc, num=args.eval_num,
                                     num_real=len(dataset), dataset_key=dataset_key(str(data), dataset),
                                     cache_dir=cache_root() / "fid-stats", seed=args.seed, metrics=("fid", "kid"))
        rows.append({"arm": arm, "kimg": 0.0 if arm == "pretrained" else args.kimg, "seconds": round(seconds, 1),
                     "fid": float(metrics["fid"]), "kid": float(metrics["kid"]), "export": str(export)})
        figure += list(generate_images(generator, seeds, noise="fixed"))
        print(f"{arm}: FID {rows[-1]['fid']:.1f}, KID {rows[-1]['kid'] * 1e3:.1f}e-3", file=sys.stderr, flush=True)
    make_grid(figure, columns=len(seeds), padding=2).save(args.out / "samples.png")
    summary = {"data": str(data), "images": len(dataset), "weights": str(args.weights), "kimg": args.kimg,
               "freeze_d": args.freeze_d, "eval_num": args.eval_num, "seed": args.seed,
               "train_args": args.train_args, "rows": rows}
    (args.out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("| arm | kimg | FID | KID x 1e3 | train s |\n|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['arm']} | {r['kimg']:g} | {r['fid']:.1f} | {r['kid'] * 1e3:.1f} | {r['seconds']:.0f} |")
    print(f"\n{len(dataset)} flags at {RESOLUTION} px; FID/KID from {args.eval_num} generated images; "
          f"figure: {args.out / 'samples.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
