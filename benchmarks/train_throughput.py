"""Training throughput: images/s and peak memory per family, preset and resolution.

Runs real D+G steps (the same ``train_step`` functions train.py uses, default loss per family) at
every resolution of each preset (as progressive growing visits them; ``--final-only`` for the last),
one configuration per subprocess so peak memory is clean. Prints a markdown table naming the device::

    python benchmarks/train_throughput.py [--presets tiny,demo-32,small-64] [--batch 16] [--steps 10]
    python benchmarks/train_throughput.py --presets paper-256 --batch 32 --precision bf16 --final-only
    python benchmarks/train_throughput.py --presets demo-64 --batch 32 --final-only --channels-last \
        --augment none,diffaugment,ada --reg-every 1,16

``--compile`` runs the step with G's and D's forward compiled as ``train.py --compile`` does
(``progan.training.compiled``: penalties stay eager). Compilation is not timed: the warm-up steps, and any
timed round in which a new variant compiled (style mixing is random, so a variant may first appear late),
are reported apart as "warm-up s", and the timing is repeated until a round compiles nothing.
``--blur-padding zero`` builds StyleGAN-lite with zero-padded blur (replicate fails to compile on CPU with
torch 2.14). Compare on a quiet machine::

    python benchmarks/train_throughput.py --presets demo-64 --families stylegan_lite --batch 32 --final-only \
        --precision bf16 --channels-last --blur-padding zero [--compile]

``--processes 2`` runs two measurements at once on one thread each and adds their img/s: two training
runs side by side against one run on both threads (``--processes 1``, the default).

``--augment ada`` runs ADA's bgc pipeline at p = 0.5 (each transform on half the images; the cost does
not depend on p: every parameter is drawn and the one grid_sample runs on every image);
``--reg-every K`` is lazy regularization: the penalty as its own D step every K steps, as train.py does.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _compiled_graphs() -> int:
    """Graphs dynamo has compiled in this process so far (0 without --compile)."""
    from torch._dynamo.utils import counters
    return counters["stats"]["unique_graphs"]


MAX_TIMED_ROUNDS = 5  # a round that compiled a new variant is warm-up; then the timing is repeated


def measure(family_name: str, preset: str, stage: int, batch: int, steps: int, precision: str, *,
            augment: str = "none", reg_every: int = 1, channels_last: bool = False, compile: bool = False,
            blur_padding: str = "", loss: str = "") -> dict:
    import torch

    from families import FAMILIES
    from progan.training.augment import build_augment
    from progan.training.compiled import compile_failure, compile_modules
    from progan.training.step import StepContext, discriminator_step, generator_step, regularization_step

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    family = FAMILIES[family_name]
    config = family.preset(preset)
    if blur_padding and hasattr(config, "blur_padding"):  # StyleGAN-lite only: ProGAN has no blur
        config = dataclasses.replace(config, blur_padding=blur_padding)
    torch.manual_seed(0)
    g = family.generator_cls(config).to(device)
    d = family.discriminator_cls(config).to(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    g, d = g.to(memory_format=memory_format), d.to(memory_format=memory_format)
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-3, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-3, betas=(0.0, 0.99))
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    stage = stage % config.num_stages  # -1 = the final resolution
    resolution = config.resolutions[stage]
    ctx = StepContext(generator=g, discriminator=d, loss=loss or family.default_loss, stage=stage, alpha=1.0,
                      latent_dim=config.latent_dim, device=device,
                      autocast=lambda: torch.autocast(device.type, dtype=dtype, enabled=dtype is not None),
                      backward=lambda loss: loss.backward(),
                      mixing_prob=0.9 if family_name == "stylegan_lite" else 0.0,
                      augment=build_augment(augment, p=0.5 if augment == "ada" else None),
                      penalty=reg_every == 1,
                      compiled=compile_modules(g, d, num_stages=config.num_stages) if compile else {})
    reals = [(torch.rand(batch, 3, resolution, resolution, device=device) * 2 - 1).contiguous(
        memory_format=memory_format)]
    count = [0]

    def step() -> None:
        discriminator_step(ctx, reals)
        opt_d.step()
        opt_d.zero_grad(set_to_none=True)
        if reg_every > 1 and count[0] % reg_every == 0:
            regularization_step(ctx, reals, reg_every)
            opt_d.step()
            opt_d.zero_grad(set_to_none=True)
        count[0] += 1
        generator_step(ctx, batch, 1)
        opt_g.step()
        opt_g.zero_grad(set_to_none=True)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    row = {"family": family_name, "preset": preset, "loss": loss or family.default_loss, "resolution": resolution, "batch": batch, "precision": precision,
           "augment": augment, "reg_every": reg_every, "channels_last": channels_last, "compile": compile,
           "blur_padding": getattr(config, "blur_padding", "")}
    try:
        start = time.perf_counter()
        for _ in range(3):  # with --compile: the first call of each variant compiles it
            step()
        sync()
        warmup = time.perf_counter() - start
        for _ in range(MAX_TIMED_ROUNDS):
            count[0] = 0  # the timed steps include their share of regularization steps
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            graphs, start = _compiled_graphs(), time.perf_counter()
            for _ in range(steps):
                step()
            sync()
            seconds = time.perf_counter() - start
            if _compiled_graphs() == graphs:
                break
            warmup += seconds  # a variant first met here compiled: this round was warm-up too
        else:
            return {**row, "error": f"still compiling after {MAX_TIMED_ROUNDS} timed rounds of {steps} steps"}
    except Exception as exc:  # one row says what failed; the other configurations still run
        failure = compile_failure(exc, blur_padding=row["blur_padding"] or None) if compile else None
        return {**row, "error": str(failure) if failure else f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB, whole process
    return {**row, "img_per_s": batch * steps / seconds, "peak_mib": peak, "warmup_s": warmup,
            "graphs": _compiled_graphs()}


def _threads_per_process(processes: int) -> int:
    """The thread budget (``OMP_NUM_THREADS`` if set, else every core) split over ``processes``."""
    return max(1, int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1) // processes)


def _run_side_by_side(command: list[str], processes: int, threads: int) -> dict:
    """Run ``command`` (one ``--one`` measurement) ``processes`` times at once, each on ``threads``
    threads; the row's img/s is their sum, its peak memory and warm-up the largest (one error: the row's)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    children = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                for _ in range(processes)]
    rows = []
    for child in children:
        out, err = child.communicate()
        if child.returncode != 0:
            raise SystemExit(f"benchmark subprocess failed (exit {child.returncode}): {err.strip().splitlines()[-1:]}")
        rows.append(json.loads(out.strip().splitlines()[-1]))
    failed = [r for r in rows if "error" in r]
    if failed:
        return failed[0]
    return {**rows[0], "img_per_s": sum(r["img_per_s"] for r in rows), "peak_mib": max(r["peak_mib"] for r in rows),
            "warmup_s": max(r["warmup_s"] for r in rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="tiny,demo-32,small-64")
    parser.add_argument("--families", default="progan,stylegan_lite")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--precision", default="no", choices=["no", "bf16", "fp16"])
    parser.add_argument("--final-only", action="store_true", help="only each preset's final resolution")
    parser.add_argument("--augment", default="none", help="comma-separated: none, diffaugment, ada (bgc, p=0.5)")
    parser.add_argument("--reg-every", default="1", help="comma-separated lazy-regularization intervals")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile G's and D's forward (train.py --compile)")
    parser.add_argument("--blur-padding", default="", choices=["", "replicate", "zero"],
                        help="StyleGAN-lite's blur padding (empty: the preset's)")
    parser.add_argument("--loss", default="", help="a loss recipe, e.g. wgan_gp or logistic_r1 (empty: each family's default)")
    parser.add_argument("--processes", type=int, default=1,
                        help="runs side by side, each on OMP_NUM_THREADS (default: all cores) / processes threads: img/s is their sum (two "
                             "one-thread runs against one run on both threads)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: family:preset:stage in a subprocess
    args = parser.parse_args()
    if args.one:
        family, preset, stage = args.one.split(":")
        print(json.dumps(measure(family, preset, int(stage), args.batch, args.steps, args.precision,
                                 augment=args.augment, reg_every=int(args.reg_every),
                                 channels_last=args.channels_last, compile=args.compile,
                                 blur_padding=args.blur_padding, loss=args.loss)))
        return
    from families import FAMILIES

    from benchmarks.machine import device_name, load_note

    print(f"device: {device_name()}; {load_note()}\n")
    peak_label = "peak GPU MiB" if __import__("torch").cuda.is_available() else "peak RSS MiB"
    layout = "channels_last" if args.channels_last else "contiguous"
    print(f"| family | preset | loss | resolution | batch | precision | layout | augment | reg every | blur padding | "
          f"compile | processes x threads | img/s | {peak_label} | warm-up s |")
    print("|---|---|---|---:|---:|---|---|---|---:|---|---|---|---:|---:|---:|")
    threads = _threads_per_process(args.processes)
    for family in args.families.split(","):
        for preset in args.presets.split(","):
            num_stages = FAMILIES[family].preset(preset).num_stages
            for stage in [num_stages - 1] if args.final_only else range(num_stages):
                for augment in args.augment.split(","):
                    for reg_every in args.reg_every.split(","):
                        command = [sys.executable, __file__, "--one", f"{family}:{preset}:{stage}",
                                   "--batch", str(args.batch), "--steps", str(args.steps),
                                   "--precision", args.precision, "--augment", augment, "--reg-every", reg_every]
                        command += ["--blur-padding", args.blur_padding, "--loss", args.loss]
                        command += ["--channels-last"] if args.channels_last else []
                        command += ["--compile"] if args.compile else []
                        r = _run_side_by_side(command, args.processes, threads)
                        blur = r["blur_padding"] or "–"  # ProGAN has no blur
                        head = (f"| {r['family']} | {r['preset']} | {r['loss']} | {r['resolution']} | {r['batch']} | "
                                f"{r['precision']} | {layout} | {augment} | {reg_every} | {blur} | "
                                f"{'yes' if args.compile else 'no'} | {args.processes} x {threads} | ")
                        if "error" in r:
                            print(head + f"failed: {r['error']} | | |", flush=True)
                            continue
                        print(head + f"{r['img_per_s']:.1f} | {r['peak_mib']:.0f} | {r['warmup_s']:.1f} |",
                              flush=True)


if __name__ == "__main__":
    main()
