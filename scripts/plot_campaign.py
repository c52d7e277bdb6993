"""FID against images seen for training runs, from their ``log.jsonl`` (``--eval-kimg`` records).

    python scripts/plot_campaign.py campaign/progan-demo64 campaign/stylegan_lite-demo64 --out docs/campaign/fid.png

Each evaluation is scored at the resolution being trained then (progressive growing), against real
images at that resolution; points are marked by resolution, and only same-resolution points are
comparable. Needs matplotlib (``pip install -e ".[docs]"``). Also prints the evaluations as one
markdown table, a row per kimg and a column per run, so runs can be compared at equal images seen.

``--mark RUN:KIMG:TEXT`` draws a dotted vertical line in that run's colour where something changed
mid-run that the log does not record, e.g. ``--mark progan-demo64:700.8:"bf16 from here"``.

``--x cpu-hours`` plots against the training process's cumulative CPU time instead (the ``cpu_s`` of
each log record, ``progan.training.progress.RunClock``; logs written before it have none), so runs
that shared the machine unequally compare at equal cost; the table then lists each evaluation's
kimg and CPU-hours.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

MARKERS = {4: "v", 8: "<", 16: "s", 32: "D", 64: "o", 128: "p", 256: "h"}


def read_log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]


def read_evals(run: Path) -> list[dict]:
    return [r for r in read_log(run) if "fid" in r]


def x_value(record: dict, axis: str) -> float | None:
    """Where a record sits on the x axis: its kimg, or its CPU-hours (None when it has no ``cpu_s``)."""
    if axis == "kimg":
        return record["kimg"]
    return record["cpu_s"] / 3600 if record.get("cpu_s") is not None else None


def signal_series(rows: list[dict], name: str, axis: str = "kimg") -> tuple[list[float], list[float]]:
    """(x, value) of a monitor signal (``diversity`` or ``r_v``, progan/training/monitor.py); runs
    trained before the monitor existed have none."""
    points = [(x, r[name]) for r in rows if r.get(name) is not None and (x := x_value(r, axis)) is not None]
    return [k for k, _ in points], [v for _, v in points]


def parse_mark(text: str, runs: list[str]) -> tuple[str, float, str]:
    """``RUN:KIMG:TEXT`` -> (run name, kimg, label); a clear error for a bad spec or an unknown run."""
    parts = text.split(":", 2)
    if len(parts) != 3 or not parts[2]:
        raise ValueError(f"--mark {text!r}: expected RUN:KIMG:TEXT")
    name, kimg, label = parts
    if name not in runs:
        raise ValueError(f"--mark {text!r}: {name!r} is not one of the runs plotted ({', '.join(runs)})")
    try:
        value = float(kimg)
    except ValueError:
        raise ValueError(f"--mark {text!r}: kimg {kimg!r} is not a number") from None
    return name, value, label


def comparison_table(evals: dict[str, list[dict]]) -> str:
    """Markdown: a row per evaluated kimg, per run "FID (recall)" at the resolution then trained."""
    names = list(evals)
    kimgs = sorted({r["kimg"] for rows in evals.values() for r in rows})
    lines = ["| kimg | " + " | ".join(names) + " |", "|---:|" + "---:|" * len(names)]
    for kimg in kimgs:
        cells = []
        for name in names:
            row = next((r for r in evals[name] if r["kimg"] == kimg), None)
            cells.append("–" if row is None else f"{row['fid']:.1f} ({row['recall']:.3f}) @{row['resolution']}px")
        lines.append(f"| {kimg:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cpu_hours_table(evals: dict[str, list[dict]]) -> str:
    """Markdown: each run's evaluations with the CPU-hours spent to reach them (``cpu_s``)."""
    lines = ["| run | kimg | CPU-hours | FID (recall) |", "|---|---:|---:|---:|"]
    for name, rows in evals.items():
        lines += [f"| {name} | {r['kimg']:g} | {r['cpu_s'] / 3600:.2f} | {r['fid']:.1f} ({r['recall']:.3f}) "
                  f"@{r['resolution']}px |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (--out of train.py)")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--mark", action="append", default=[], metavar="RUN:KIMG:TEXT",
                        help="a dotted vertical line in RUN's colour at KIMG, labelled TEXT (repeatable)")
    parser.add_argument("--title", default="FID (1,000 generated vs 1,000 real) during training, 2-core CPU")
    parser.add_argument("--x", choices=("kimg", "cpu-hours"), default="kimg",
                        help="x axis: images seen, or the training process's CPU-hours (logs with cpu_s)")
    args = parser.parse_args(argv)
    if args.mark and args.x != "kimg":
        print("error: --mark places lines at a kimg; use it with --x kimg", file=sys.stderr)
        return 2
    try:
        import matplotlib
    except ImportError:
        print('error: plotting needs matplotlib: pip install -e ".[docs]"', file=sys.stderr)
        return 2
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        marks = [parse_mark(m, [run.name for run in args.runs]) for m in args.mark]
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    logs = {run: read_log(run) for run in args.runs}  # each log read once
    evals_by_run = {run: [r for r in rows if "fid" in r] for run, rows in logs.items()}
    with_signals = any(signal_series(rows, "diversity")[0] for rows in logs.values())
    colours = {}
    panels = 3 if with_signals else 1  # FID; the collapse signal and r_v when the runs logged them
    fig, axes = plt.subplots(panels, 1, figsize=(10.5, 4.5 + 2.6 * (panels - 1)), dpi=110, sharex=True,
                             squeeze=False, height_ratios=[1.6, 1, 1][:panels])
    ax = axes[0][0]
    for run, evals in evals_by_run.items():
        if not evals:
            print(f"error: {run}/log.jsonl has no evaluations (train with --eval-kimg)", file=sys.stderr)
            return 2
        if any(x_value(r, args.x) is None for r in evals):
            print(f"error: {run}/log.jsonl has evaluations without cpu_s (logged before the run clock); "
                  "plot it with --x kimg", file=sys.stderr)
            return 2
        xs = [x_value(r, args.x) for r in evals]
        fid = [r["fid"] for r in evals]
        line, = ax.plot(xs, fid, "-", alpha=0.5, label=run.name)
        colours[run.name] = line.get_color()
        for resolution in sorted({r["resolution"] for r in evals}):
            points = [(x_value(r, args.x), r["fid"]) for r in evals if r["resolution"] == resolution]
            ax.plot(*zip(*points), MARKERS.get(resolution, "o"), color=line.get_color(), markersize=5)
    for name, kimg, label in marks:
        ax.axvline(kimg, color=colours[name], linestyle=":", linewidth=1.2, label=f"{name}: {label}")
    used = {r["resolution"] for evals in evals_by_run.values() for r in evals}
    for resolution, marker in MARKERS.items():  # legend entries for the markers actually used
        if resolution in used:
            ax.plot([], [], marker, color="gray", label=f"{resolution} px")
    if with_signals:
        for panel, name, label, reference in ((axes[1][0], "diversity", "diversity: samples / reals\n(8x8 RGB)", 1.0),
                                              (axes[2][0], "r_v", "r_v (ADA): 0 = no\noverfitting, 1 = full", 0.0)):
            for run, rows in logs.items():
                xs, values = signal_series(rows, name, args.x)
                if xs:
                    panel.plot(xs, values, "-", color=colours[run.name], linewidth=1)
            panel.axhline(reference, color="gray", linewidth=0.8, linestyle="--")
            panel.set_ylabel(label, fontsize=8)
            panel.grid(alpha=0.3)
    axes[-1][0].set_xlabel("images seen (kimg)" if args.x == "kimg" else "CPU-hours of the training process")
    ax.set_ylabel("FID (lower is better)")
    ax.set_title(args.title, fontsize=10)
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # outside: no point hidden
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(f"wrote {args.out}\n\nFID (recall) at the resolution then trained:\n")
    named = {run.name: evals for run, evals in evals_by_run.items()}
    print(comparison_table(named) if args.x == "kimg" else cpu_hours_table(named))
    return 0


if __name__ == "__main__":
    sys.exit(main())
