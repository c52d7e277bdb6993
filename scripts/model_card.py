"""Write a model card (README.md) beside exported weights, from its config and measured metrics.

    python scripts/model_card.py weights/stylegan_lite-openmoji --metrics metrics.json --floor floor.json \
        --run campaign/stylegan_lite-demo64 --title "StyleGAN-lite on OpenMoji (64x64, CPU)" \
        --memorization nearest.json

Every number comes from a file: the weights' own training summary, `evaluate.py --out` and
`scripts/real_floor.py --out` JSON, the run's log.jsonl (train time, img/s, ADA p) and, with
``--memorization``, the JSON of ``evaluate.py --nearest --out`` (progan/metrics/nearest.py). Its
figure of closest (generated | real) pairs is copied beside the weights (``closest-pairs.png``), so
the card's picture travels with them (a Hub upload of the folder, a copy elsewhere).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path


def _run_facts(run: Path) -> dict:
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    steps = [r for r in rows if "img_per_s" in r]
    evals = [r for r in rows if "fid" in r]
    facts = {"evals": evals}
    if steps and "augment_p" in steps[-1]:
        facts["augment_p"] = steps[-1]["augment_p"]
    return facts


_TRICKS = ("feature_matching", "historical_averaging", "minibatch_discrimination", "unrolled_steps")


def _tricks_line(summary: dict) -> list[str]:
    """The Salimans et al. 2016 / Metz et al. 2017 options the run used (progan.training.tricks), if any."""
    values = {k: summary[k] for k in _TRICKS if k in summary}
    if isinstance(values.get("feature_matching"), dict):
        values["feature_matching"] = "{weight} ({mode})".format(**values["feature_matching"])
    used = [f"{k.replace('_', ' ')} {v}" for k, v in values.items()]
    return [f"- Stabilization options (`training.tricks`): {'; '.join(used)}."] if used else []


def _stabilization(facts: dict) -> str:
    """The training summary's loss/penalty/stabilization settings as one line (older weights have none)."""
    return ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in facts.items())


def _architecture_lines(family: str, model: dict) -> list[str]:
    """Architecture options beyond the preset: StyleGAN-lite's blur padding (configs written before the
    field existed blurred with replicate padding, and load so)."""
    if family != "stylegan_lite" or not model.get("blur", True):
        return []
    return [f"- Generator blur: [1 2 1] after each upsampling, {model.get('blur_padding', 'replicate')} padding "
            "at the borders (`blur_padding`)."]


def _memorization_lines(memo: dict, weights: Path) -> list[str]:
    """The memorization check as a card paragraph, showing ``closest-pairs.png`` beside the card."""
    return ["", "## Memorization check", "",
            f"{memo['nearest_fraction_below']:.1%} of {memo['num_generated']:,} samples (psi {memo.get('psi', 1.0):g}) lie "
            f"closer to their nearest training image (Inception pool features, L2, all {memo['num_real']:,} "
            f"training images) than the median real image lies to its own nearest neighbour "
            f"({memo['nearest_threshold']:.2f}); held-out real images score about 50% by construction, a "
            f"copying generator near 100%. Nearest distances: median {memo['nearest_median_distance']:.2f}, "
            f"smallest {memo['nearest_min_distance']:.2f} (`python evaluate.py --weights {weights} --nearest "
            f"--num {memo['num_generated']}`). The closest pairs (generated | nearest real, distance):", "",
            "![closest pairs](closest-pairs.png)"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", type=Path)
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--floor", type=Path, required=True)
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--title", required=True)
    parser.add_argument("--hours", type=float, required=True, help="wall-clock training hours (both runs shared the CPU)")
    parser.add_argument("--command", required=True, help="the training command")
    parser.add_argument("--hardware", default="this project's 2-core CPU VM (CPU only)",
                        help="where it trained, e.g. \"a 2-core Intel Xeon VM (CPU only)\"")
    parser.add_argument("--memorization", type=Path, help="evaluate.py --nearest --out JSON (adds the check and "
                        "its figure of closest pairs)")
    parser.add_argument("--figure", type=Path, help="the --memorization figure (default: the JSON's 'figure')")
    args = parser.parse_args(argv)
    memo = json.loads(args.memorization.read_text()) if args.memorization else None
    if memo is not None:
        if "nearest_fraction_below" not in memo:
            print(f"error: {args.memorization} is not an `evaluate.py --nearest` summary (no nearest_fraction_below)",
                  file=sys.stderr)
            return 2
        figure = args.figure or Path(memo["figure"])
        if not figure.is_file():
            print(f"error: the memorization figure {figure} does not exist (pass --figure)", file=sys.stderr)
            return 2
    config = json.loads((args.weights / "config.json").read_text())
    summary, model = config["summary"], config["config"]
    metrics, floor = json.loads(args.metrics.read_text()), json.loads(args.floor.read_text())
    if "per_seed" not in floor:  # the old floor held out the last N by name: a different distribution
        print(f"error: {args.floor} predates the random held-out split (issue 20); rerun scripts/real_floor.py",
              file=sys.stderr)
        return 2
    seeds = ", ".join(str(row["seed"]) for row in floor["per_seed"])
    facts = _run_facts(args.run)
    family = config["family"]
    lines = [
        f"# {args.title}",
        "",
        f"- Family / preset: `{family}` / `{summary['preset']}`, {model['resolution']}x{model['resolution']}; "
        f"the EMA generator of the latest checkpoint.",
        *_architecture_lines(family, model),
        "- Data: the 4,495 OpenMoji colour emoji (CC BY-SA 4.0, \"All emojis designed by OpenMoji – the "
        "open-source emoji and icon project\"), the built-in set of `train.py` (rendered by resvg at each resolution).",
        f"- Command: `{args.command}` (resumed across stops with the same command; see campaign/README.md).",
        f"- Images seen: {summary['images_seen']:,} ({summary['kimg']:g} kimg, {summary['steps']:,} steps of 32). Wall clock: "
        f"{args.hours:.1f} h on {args.hardware}, one thread, shared with the other "
        "family's run, evaluations and tests.",
        f"- Loss: {summary['loss']}" + (f"; ADA p at the end {facts['augment_p']:.3f}" if "augment_p" in facts else "")
        + ".",
        *_tricks_line(summary),
        *([f"- Stabilization: {_stabilization(summary['stabilization'])}."] if "stabilization" in summary else []),
        *([f"- Fine-tuned from `{summary['init_from']}` (`--init-from`"
           + (", `--init-regrow`" if summary.get("init_regrow") else "")
           + (f", Freeze-D `--freeze-d {summary['freeze_d']}`" if summary.get("freeze_d") else "") + ")."]
          if summary.get("init_from") else []),
        f"- FID **{metrics['fid']:.1f}**, KID {metrics['kid']:.4f}, precision {metrics['precision']:.3f}, recall "
        f"{metrics['recall']:.3f}: {metrics['num_generated']:,} generated (psi 1) vs all {metrics['num_real']:,} real "
        f"images at {metrics['resolution']} px, `python evaluate.py --weights {args.weights} --num "
        f"{metrics['num_generated']}`.",
        f"- Floor at this sample size: {floor['num_held_out']:,} randomly held-out real images vs the other "
        f"{floor['num_reference']:,} (mean over split seeds {seeds}) score FID {floor['fid']:.1f}, KID "
        f"{floor['kid']:.5f}, precision "
        f"{floor['precision']:.3f}, recall {floor['recall']:.3f} (`python scripts/real_floor.py --resolution "
        f"{floor['resolution']}`).",
        f"- Load: `families.load_generator(\"{args.weights}\")`; sample: `python -m app.generate --weights "
        f"{args.weights} --seeds 0-15 --out grid.png`.",
    ]
    if facts["evals"]:
        lines += ["", "FID during training (1,000 generated vs 1,000 real, at the resolution being trained then):", "",
                  "| kimg | resolution | FID |", "|---:|---:|---:|"]
        lines += [f"| {r['kimg']:.0f} | {r['resolution']} | {r['fid']:.1f} |" for r in facts["evals"]]
    if memo is not None:
        shutil.copyfile(figure, args.weights / "closest-pairs.png")
        lines += _memorization_lines(memo, args.weights)
    (args.weights / "README.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.weights / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
