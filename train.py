"""Train a ProGAN or StyleGAN-lite generator: ``accelerate launch train.py [options]``.

Also runs as ``python train.py`` (one process). Restarting the same command resumes from the latest
checkpoint in ``--out``; SIGTERM/SIGUSR1/Ctrl-C save a checkpoint and exit cleanly.
See ``python train.py --help`` and the README.
"""
from __future__ import annotations

import os
import signal

# Record a stop signal from the very first moment: importing torch and building the models takes
# seconds, and SIGTERM/SIGUSR1's default action would kill this process without a checkpoint. The
# trainer installs its own handlers later and honours anything recorded here (before the first step:
# the run ends with nothing to save).
PENDING_SIGNALS: list[int] = []
for _sig in (signal.SIGTERM, signal.SIGUSR1):
    signal.signal(_sig, lambda signum, _frame: PENDING_SIGNALS.append(signum))
# Tell progan.training.launch that this process now catches them: it forwards stop signals to a worker
# only from here on (READY_DIR_ENV there). Not in a DataLoader worker that re-imports this file.
if os.environ.get("GAN_STUDIO_STOP_READY_DIR") and __name__ != "__mp_main__":
    try:
        open(os.path.join(os.environ["GAN_STUDIO_STOP_READY_DIR"], str(os.getpid())), "x").close()
    except OSError:  # the launcher is gone or this pid announced already
        pass

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402

from families import FAMILIES, count_parameters, get_family  # noqa: E402
from progan.training.options import TrainConfig, add_arguments, from_namespace, model_overrides, recipe  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.add_argument("--dry-run", action="store_true",
                        help="print the resolved config (JSON, stdout) and the estimated memory per process "
                             "(table, stderr; traced on fake tensors: no GPU needed) and exit; trains and writes nothing")
    parser.add_argument("--estimate-memory", action=argparse.BooleanOptionalAction, default=True,
                        help="with --dry-run: trace the memory estimate (a few seconds to a minute on a CPU)")
    parser.add_argument("--estimate-processes", type=int, default=1, metavar="N",
                        help="with --dry-run: estimate for N processes (N > 1 adds the flat all-reduce buffer)")
    return parser


def dataset_opener(config: TrainConfig, accelerator):
    """Returns ``open(resolution) -> Dataset`` for --data, or the built-in OpenMoji set."""
    import data_prep

    path = config.data
    if not path:
        resolution = get_family(config.family).preset(config.preset).resolution
        path = str(data_prep.builtin_openmoji_for_processes(resolution, accelerator, need_labels=config.cond))
    return lambda resolution: data_prep.open_dataset(path, resolution, xflip=config.xflip, with_labels=config.cond)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Flags over the preset's recipe over the TrainConfig defaults."""
    parser = build_parser()
    first, _ = parser.parse_known_args(argv)
    parser.set_defaults(**recipe(first.family, first.preset))
    return parser.parse_args(argv)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX); without it PyTorch emulates bf16."""
    import torch

    checks = (getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None))
    return any(check() for check in checks if check is not None)


def emulated_bf16_warning(mixed_precision: str, cuda: bool, native_bf16: bool) -> str | None:
    """The warning for --mixed-precision bf16 on a CPU that would emulate it, else None.

    Measured on a 2-core AMD EPYC (AVX2, no bf16): a 64-channel 3x3 conv's forward + backward ran 22x
    slower under bf16 autocast than in fp32; a wide-64 training step went from seconds to minutes."""
    if mixed_precision != "bf16" or cuda or native_bf16:
        return None
    return ("warning: --mixed-precision bf16 on a CPU without native bf16 (no AVX512-BF16 or AMX): PyTorch "
            "emulates it, about 20x slower than fp32 here; use --mixed-precision no on this machine "
            "(a resume may change it)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = from_namespace(args)
        family = get_family(config.family)
        model_config = dataclasses.replace(family.preset(config.preset), **model_overrides(config))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        g, d = family.generator_cls(model_config), family.discriminator_cls(model_config)
        resolved = {"train": json.loads(config.to_json()), "model": model_config.__dict__,
                    "loss": config.objective,
                    "parameters": {"generator": count_parameters(g), "discriminator": count_parameters(d)}}
        if args.estimate_memory:
            from dataclasses import asdict

            from progan.training.memory import estimate_training_memory, format_estimate

            estimate = estimate_training_memory(config, family, processes=max(1, args.estimate_processes))
            resolved["memory_estimate_bytes"] = asdict(estimate)
            print(format_estimate(estimate), file=sys.stderr)
        print(json.dumps(resolved, indent=2))
        return 0

    from datetime import timedelta

    import torch
    from accelerate import Accelerator
    from accelerate.utils import InitProcessGroupKwargs

    from progan.metrics.inception import FeatureNetworkError
    from progan.training.compiled import CompileError
    from progan.training.distributed import DistributedError
    from progan.training.trainer import Trainer, TrainingDiverged

    if config.mixed_precision == "fp16" and not torch.cuda.is_available():
        # Accelerate would silently train in fp32 here (no autocast, no GradScaler on CPU)
        print("error: --mixed-precision fp16 needs a CUDA GPU; on CPU use bf16 or no", file=sys.stderr)
        return 2
    slow_bf16 = emulated_bf16_warning(config.mixed_precision, torch.cuda.is_available(), cpu_has_native_bf16())
    if slow_bf16:
        print(slow_bf16, file=sys.stderr)
    if torch.cuda.is_available():
        # an explicit choice: PyTorch's default already runs cuDNN convs in TF32, so "no" would not be fp32
        precision = "tf32" if config.tf32 else "ieee"
        torch.backends.cuda.matmul.fp32_precision = torch.backends.cudnn.conv.fp32_precision = precision
        torch.backends.cudnn.benchmark = config.cudnn_benchmark
    # cpu=True without CUDA makes Accelerate form a gloo process group when launched with several processes;
    # the explicit timeout bounds how long a process waits for a failed or stuck peer at a collective
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=config.mixed_precision,
                              log_with="tensorboard", project_dir=config.out,
                              kwargs_handlers=[InitProcessGroupKwargs(timeout=timedelta(seconds=config.dist_timeout))])
    try:
        trainer = Trainer(config, FAMILIES[config.family], dataset_opener(config, accelerator), accelerator=accelerator,
                          pending_signals=PENDING_SIGNALS)
        result = trainer.train()
    except (TrainingDiverged, DistributedError, FeatureNetworkError, CompileError, ValueError, FileNotFoundError,
            TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    accelerator.print(f"done: {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
