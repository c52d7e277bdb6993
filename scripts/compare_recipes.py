"""One measured table of training recipes on small data (issue 21): which loss, penalty, augmentation
and trick keeps StyleGAN-lite (and ProGAN) from collapsing on OpenMoji.

    python scripts/compare_recipes.py list                       # the rows, and which can run today
    python scripts/compare_recipes.py run [ROW ...] [--jobs 2]   # train + score what is not done yet
    python scripts/compare_recipes.py table                      # docs/recipes/table.md + .json + curves.png

Every row trains the same fixed configuration, `--preset recipe-32` (demo-64's networks stopped at
32 px, where the 64x64 campaign's StyleGAN-lite runs collapsed), progressive 4 -> 32 px with 20 kimg
fade-in + 20 kimg stable per resolution (32 px from 100 kimg, alone from 120), 160 kimg in all,
batch 32, bf16, channels_last; one thread per run (two runs side by side beat one run on two threads
on this 2-core VM: see docs/recipes.md). Only the row's own flags differ. Each run:

- logs FID/KID/precision/recall every 20 kimg (500 generated vs a fixed random 500 reals at the
  resolution being trained: the curve), and at every sample step (10 kimg) the collapse signal and
  r_v (`progan.training.monitor`; 128 reals held out of training for r_v);
- is scored at the end by `evaluate.py` on its EMA generator: 1,000 generated vs all 4,495 reals at
  32 px, the protocol of `scripts/real_floor.py --resolution 32`, whose random split is the floor.

Runs live in `campaign/recipes/<row>-s<seed>/`; rerunning `run` resumes unfinished ones from their
checkpoints (SIGTERM to this script stops its runs with a checkpoint). A row is **diverged** if
training stopped on a non-finite loss, **collapsed** if its final diversity (mean of the last three
monitor records) is below `COLLAPSE_BELOW` (0.75) of the reals', else ok.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "campaign" / "recipes"
DOCS = ROOT / "docs" / "recipes"
# final diversity / the reals' diversity (8x8 RGB) under which a run counts as collapsed. Set from the
# first pair of rows (docs/recipes.md): the NS + R1 run whose 16 samples all share one blob layout by
# eye ended at 0.60 (0.71 at 140 kimg), the WGAN-GP run with varied layouts at about 1.0; colour
# still varies in a collapsed run, which keeps its diversity above 0.5.
COLLAPSE_BELOW = 0.75

BASE = {"preset": "recipe-32", "kimg": 160, "fade-kimg": 20, "stable-kimg": 20, "batch-size": 32,
        "mixed-precision": "bf16", "channels-last": True, "eval-kimg": 20, "eval-num": 500, "sample-kimg": 10,
        "checkpoint-kimg": 20, "keep-checkpoints": 1, "workers": 1, "monitor-num": 128, "holdout": 128,
        "log-every": 10}
NS_R1 = {"loss": "logistic_r1", "r1-gamma": 1.0, "r1-every": 16}  # the collapsed campaign runs' loss (run 2)
WGAN = {"loss": "wgan_gp"}


@dataclass(frozen=True)
class Row:
    name: str
    family: str
    flags: dict = field(default_factory=dict)
    what: str = ""
    seeds: tuple[int, ...] = (0,)  # decisive rows get two


ROWS = [
    Row("sg-ns-r1", "stylegan_lite", NS_R1, "NS + R1, no augmentation", (0, 1)),
    Row("sg-wgan", "stylegan_lite", WGAN, "WGAN-GP, no augmentation (the campaign's recipe)", (0, 1)),
    Row("sg-ns-r1-ada", "stylegan_lite", {**NS_R1, "augment": "ada"},
        "NS + R1, ADA (bgc)", (0, 1)),
    Row("sg-ns-r1-g10", "stylegan_lite", {**NS_R1, "r1-gamma": 10.0}, "NS + R1 with gamma 10 (10x stronger)"),
    Row("sg-ns-r1-g0.1", "stylegan_lite", {**NS_R1, "r1-gamma": 0.1}, "NS + R1 with gamma 0.1 (10x weaker)"),
    Row("sg-ns-r1-xflip", "stylegan_lite", {**NS_R1, "xflip": True}, "NS + R1, x-flip"),
    Row("sg-ns-r1-diffaug", "stylegan_lite", {**NS_R1, "augment": "diffaugment"}, "NS + R1, DiffAugment"),
    Row("sg-hinge-sn", "stylegan_lite", {"loss": "hinge", "penalty": "none", "spectral-norm": True},
        "hinge + spectral norm"),
    Row("sg-ns-dragan", "stylegan_lite", {"loss": "logistic", "penalty": "dragan"}, "NS + DRAGAN"),
    Row("sg-lsgan", "stylegan_lite", {"loss": "lsgan", "penalty": "none"}, "LSGAN"),
    Row("sg-ns-r1-reset", "stylegan_lite", {**NS_R1, "reset-opt-at-stage": True}, "NS + R1, Adam reset per stage"),
    Row("sg-ns-r1-inoise", "stylegan_lite", {**NS_R1, "instance-noise": 0.1, "instance-noise-kimg": 160},
        "NS + R1, instance noise 0.1 annealed to 0"),
    Row("sg-wgan-xflip", "stylegan_lite", {**WGAN, "xflip": True}, "WGAN-GP, x-flip"),
    Row("pg-wgan", "progan", WGAN, "ProGAN, WGAN-GP (its paper recipe)"),
    Row("pg-ns-r1", "progan", NS_R1, "ProGAN, NS + R1"),
    # the class-conditional A/B (equal budget against sg-wgan / pg-wgan): OpenMoji's 11 emoji groups
    Row("sg-wgan-cond", "stylegan_lite", {**WGAN, "cond": True}, "WGAN-GP, class-conditional (emoji groups)"),
    Row("pg-wgan-cond", "progan", {**WGAN, "cond": True}, "ProGAN, WGAN-GP, class-conditional"),
    Row("sg-ns-r1-fm", "stylegan_lite", {**NS_R1, "feature-matching": 1.0}, "NS + R1, feature matching"),
    Row("sg-ns-r1-mbdisc", "stylegan_lite", {**NS_R1, "minibatch-discrimination": "50,5"},
        "NS + R1, minibatch discrimination"),
    Row("sg-ns-r1-unrolled5", "stylegan_lite", {**NS_R1, "unrolled-steps": 5}, "NS + R1, unrolled D (k = 5)"),
    # the second campaign's throughput question (issue 24): lazy GP is 24-49% more images per CPU-hour
    Row("sg-wgan-gp4", "stylegan_lite", {**WGAN, "gp-every": 4}, "WGAN-GP, lazy GP every 4 steps (times 4)"),
]


def row_args(row: Row, seed: int) -> list[str]:
    options = {**BASE, **row.flags, "family": row.family, "seed": seed, "out": str(run_dir(row, seed))}
    return [item for k, v in options.items() for item in ((f"--{k}",) if v is True else (f"--{k}", str(v)))]


def run_dir(row: Row, seed: int) -> Path:
    return RUNS / f"{row.name}-s{seed}"


def available(row: Row) -> str:
    """'' if train.py accepts the row's flags today, else the reason it does not."""
    sys.path.insert(0, str(ROOT))
    import contextlib
    import io

    import train
    from progan.training.options import from_namespace

    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            from_namespace(train.parse_args(row_args(row, 0)))
    except SystemExit:
        return stderr.getvalue().strip().splitlines()[-1] if stderr.getvalue().strip() else "rejected"
    except ValueError as exc:
        return str(exc)
    return ""


def status(row: Row, seed: int) -> str:
    out = run_dir(row, seed)
    if (out / "final.json").exists():
        return json.loads((out / "final.json").read_text()).get("status", "done")
    return "partial" if (out / "log.jsonl").exists() else "todo"


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


_CHILDREN: list[subprocess.Popen] = []
_STOP = threading.Event()


def _spawn(cmd: list[str], log: Path) -> int:
    with open(log, "a") as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=f, stderr=subprocess.STDOUT)
        _CHILDREN.append(proc)
        code = proc.wait()
        _CHILDREN.remove(proc)
    return code


def train_and_score(row: Row, seed: int) -> str:
    out = run_dir(row, seed)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    code = _spawn([sys.executable, "train.py", *row_args(row, seed)], out / "train.out")
    if _STOP.is_set():
        return "stopped"
    text = (out / "train.out").read_text(errors="replace")
    if code != 0:
        if "non-finite" in text:
            final = {"status": "diverged", "error": text.strip().splitlines()[-1]}
            (out / "final.json").write_text(json.dumps(final, indent=2) + "\n")
            return "diverged"
        return f"failed (exit {code}; see {out / 'train.out'})"
    score = out / "score.json"
    code = _spawn([sys.executable, "evaluate.py", "--weights", str(out / "export"), "--num", "1000",
                   "--out", str(score)], out / "evaluate.out")
    if _STOP.is_set() or code != 0:
        return "stopped" if _STOP.is_set() else f"scoring failed (see {out / 'evaluate.out'})"
    grids = sorted((out / "samples").glob("grid-*kimg.png"))
    if grids:  # kept in git (samples/ is not), for the table's sample sheet on a later machine
        shutil.copyfile(grids[-1], out / "last-grid.png")
    signals = [r for r in read_log(out) if "diversity" in r]
    diversity = statistics.fmean(r["diversity"] for r in signals[-3:])
    final = {"status": "collapsed" if diversity < COLLAPSE_BELOW else "ok", "diversity": diversity,
             **{k: json.loads(score.read_text())[k] for k in ("fid", "kid", "precision", "recall")},
             "wall_seconds_this_session": round(time.time() - start)}
    (out / "final.json").write_text(json.dumps(final, indent=2) + "\n")
    return final["status"]


def read_log(out: Path) -> list[dict]:
    path = out / "log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def command_run(names: list[str], jobs: int) -> int:
    by_name = {r.name: r for r in ROWS}
    rows = [by_name[n] for n in dict.fromkeys(names) if n in by_name] if names else ROWS
    unknown = set(names) - {r.name for r in ROWS}
    if unknown:
        print(f"error: unknown rows {sorted(unknown)}; see `list`", file=sys.stderr)
        return 2
    queue = []
    for row in rows:
        reason = available(row)
        if reason:
            print(f"skip {row.name}: not available yet ({reason})")
            continue
        queue += [(row, seed) for seed in row.seeds if status(row, seed) in ("todo", "partial")]
    if not names:  # named rows run in the order given; otherwise every first seed before any second seed
        queue.sort(key=lambda item: item[1])
    print(f"{len(queue)} runs to do, {jobs} at a time: {', '.join(f'{r.name}-s{s}' for r, s in queue)}", flush=True)

    def stop(signum, _frame):
        _STOP.set()
        for proc in list(_CHILDREN):
            proc.send_signal(signal.SIGTERM)  # train.py saves a checkpoint and exits 0

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        signal.signal(sig, stop)
    lock = threading.Lock()

    def worker():
        while not _STOP.is_set():
            with lock:
                if not queue:
                    return
                row, seed = queue.pop(0)
            print(f"{time.strftime('%H:%M:%S')} start {row.name}-s{seed}", flush=True)
            result = train_and_score(row, seed)
            print(f"{time.strftime('%H:%M:%S')} {row.name}-s{seed}: {result}", flush=True)

    threads = [threading.Thread(target=worker) for _ in range(jobs)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(0.5)
    return 0


def summarize(row: Row, seed: int) -> dict | None:
    out = run_dir(row, seed)
    log = read_log(out)
    if not log:
        return None
    final = json.loads((out / "final.json").read_text()) if (out / "final.json").exists() else {}
    signals = [r for r in log if "diversity" in r]
    at32 = [r["img_per_s"] for r in log if "img_per_s" in r and r.get("resolution") == 32 and r.get("alpha") == 1.0]
    status = final.get("status", "unfinished")
    if status in ("ok", "collapsed"):  # re-judged here, so a changed threshold applies to finished runs too
        status = "collapsed" if final["diversity"] < COLLAPSE_BELOW else "ok"
    return {"row": row.name, "seed": seed, "what": row.what, "family": row.family,
            "kimg": max(r["kimg"] for r in log), "status": status,
            **{k: final.get(k) for k in ("fid", "kid", "precision", "recall")},
            "diversity": final.get("diversity", signals[-1]["diversity"] if signals else None),
            "min_diversity_32px": min((r["diversity"] for r in signals if r["resolution"] == 32), default=None),
            "r_v": signals[-1].get("r_v") if signals else None,
            "img_per_s_32px": statistics.median(at32) if at32 else None,
            "evals": [{k: r[k] for k in ("kimg", "resolution", "fid")} for r in log if "fid" in r],
            "signals": [{k: r.get(k) for k in ("kimg", "resolution", "diversity", "r_v")} for r in signals]}


def _fmt(value, digits=3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def command_table() -> int:
    results = [s for row in ROWS for seed in row.seeds if (s := summarize(row, seed))]
    DOCS.mkdir(parents=True, exist_ok=True)
    (DOCS / "table.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = ["| row | seed | recipe | kimg | status | FID | KID | precision | recall | diversity (end / min at 32 px) "
             "| r_v | img/s at 32 px |", "|---|---:|---|---:|---|---:|---:|---:|---:|---|---:|---:|"]
    for r in results:
        lines.append(f"| {r['row']} | {r['seed']} | {r['what']} | {r['kimg']:.0f} | {r['status']} | {_fmt(r['fid'], 4)} "
                     f"| {_fmt(r['kid'], 2)} | {_fmt(r['precision'], 2)} | {_fmt(r['recall'], 2)} "
                     f"| {_fmt(r['diversity'], 2)} / {_fmt(r['min_diversity_32px'], 2)} | {_fmt(r['r_v'], 2)} "
                     f"| {_fmt(r['img_per_s_32px'], 3)} |")
    (DOCS / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    try:
        plot(results, DOCS / "curves.png")
    except ImportError:
        print("matplotlib missing: no curves.png (pip install -e '.[docs]')", file=sys.stderr)
    sample_sheet(results, DOCS / "samples.png")
    return 0


def sample_sheet(results: list[dict], path: Path) -> None:
    """Each run's latest fixed-latent sample grid side by side, labelled with its row, kimg and verdict.

    samples/ is not committed (it stays on the machine that trained); a finished run keeps its last
    grid as ``last-grid.png``, which is, so a later session on a fresh machine still has every tile."""
    from PIL import Image, ImageDraw

    tiles = []
    for r in results:
        out = RUNS / f"{r['row']}-s{r['seed']}"
        grids = sorted((out / "samples").glob("grid-*kimg.png"))
        if grids:
            kimg = float(grids[-1].stem.removeprefix("grid-").removesuffix("kimg"))
            tiles.append((f"{r['row']} s{r['seed']}: {kimg:.0f} kimg, {r['status']}", Image.open(grids[-1]).convert("RGB")))
        elif (out / "last-grid.png").exists():
            tiles.append((f"{r['row']} s{r['seed']}: {r['kimg']:.0f} kimg, {r['status']}",
                          Image.open(out / "last-grid.png").convert("RGB")))
    if not tiles:
        return
    scale, label_h, pad = 2, 16, 8
    w, h = (max(t.width for _, t in tiles) * scale, max(t.height for _, t in tiles) * scale)
    columns = min(4, len(tiles))
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * (w + pad), rows * (h + label_h + pad)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (label, tile) in enumerate(tiles):
        x, y = (i % columns) * (w + pad), (i // columns) * (h + label_h + pad)
        draw.text((x + 2, y + 2), label, fill="black")
        sheet.paste(tile.resize((tile.width * scale, tile.height * scale), Image.NEAREST), (x, y + label_h))
    sheet.save(path)


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_fid, ax_div) = plt.subplots(1, 2, figsize=(14, 5.5))
    for i, r in enumerate(results):
        # the rows that held are drawn bold, the collapsed and unfinished ones thin and faint
        held = r["status"] == "ok"
        style = {"color": plt.cm.tab20(i % 20), "linestyle": "-" if r["seed"] == 0 else "--",
                 "linewidth": 2.2 if held else 0.9, "alpha": 1.0 if held else 0.55}
        label = f"{r['row']} s{r['seed']} ({r['status']})"
        at32 = [e for e in r["evals"] if e["resolution"] == 32]
        ax_fid.plot([e["kimg"] for e in r["evals"]], [e["fid"] for e in r["evals"]], marker=".", label=label, **style)
        if at32:
            ax_fid.scatter([e["kimg"] for e in at32], [e["fid"] for e in at32], color=style["color"], marker="D",
                           s=18, alpha=style["alpha"])
        ax_div.plot([s["kimg"] for s in r["signals"]], [s["diversity"] for s in r["signals"]], label=label, **style)
    for x in (20, 40, 60, 80, 100, 120):
        for ax in (ax_fid, ax_div):
            ax.axvline(x, color="0.85", linewidth=0.8, zorder=0)
    ax_fid.set(xlabel="kimg", ylabel="FID (500 vs 500, at the resolution trained; diamonds: 32 px)",
               title="FID during training")
    ax_div.axhline(COLLAPSE_BELOW, color="red", linewidth=0.8, linestyle=":")
    ax_div.set_ylim(0, 2)  # a random G starts far above 1 (about 5): the range that matters is below
    ax_div.set(xlabel="kimg", ylabel="diversity of samples / reals (8x8 RGB)", title="collapse signal")
    ax_div.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the rows and whether train.py accepts them today")
    run = sub.add_parser("run", help="train and score the rows not done yet (resumes partial runs)")
    run.add_argument("rows", nargs="*", help="row names (default: all available)")
    run.add_argument("--jobs", type=int, default=2, help="runs side by side, one thread each")
    sub.add_parser("table", help="write docs/recipes/table.md, table.json and curves.png from the runs")
    args = parser.parse_args(argv)
    if args.command == "list":
        for row in ROWS:
            reason = available(row)
            states = ", ".join(f"s{s}: {status(row, s)}" for s in row.seeds)
            print(f"{row.name:22s} {row.family:14s} {states:30s} {'' if not reason else 'unavailable: ' + reason}")
            print(f"{'':22s} python train.py {' '.join(row_args(row, row.seeds[0]))}")
        return 0
    if args.command == "run":
        if args.jobs < 1:
            print("error: --jobs must be >= 1", file=sys.stderr)
            return 2
        return command_run(args.rows, args.jobs)
    return command_table()


if __name__ == "__main__":
    sys.exit(main())
