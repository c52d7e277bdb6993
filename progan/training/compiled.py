"""``--compile``: ``torch.compile`` of G's and D's forward as the training step calls them.

``compile_modules`` wraps each module with ``torch.compile(module)``, which shares the module's
parameters and buffers: optimizers, the EMA, checkpoints and exports keep seeing the plain modules
(state-dict keys unchanged), and only ``step._generate`` / ``step._critic`` call the compiled forwards
(``StepContext.compiled``). Compilation is lazy: the first call of each variant (stage, fade-in or not,
style mixing or not, grad mode) compiles it, so the first steps of every resolution take longer.

What stays eager:

- D's gradient penalties (WGAN-GP, R1, DRAGAN) differentiate D's input gradient a second time, and
  AOTAutograd has no double backward ("torch.compile with aot_autograd does not currently support
  double backward"). The penalised real half of the D step and the lazy penalty call the eager D; with
  ``--gp-every``/``--r1-every K > 1`` D's real half is compiled on the steps without the penalty.
- The unrolled D's copy (``tricks.unrolled_context``) is not in the map, so it runs eager.

Known failure: StyleGAN-lite's replicate-padded blur. Torch 2.14.1 on CPU compiles the backward of
``replication_pad2d`` with the wrong output strides and fails at the first G step (``AssertionError:
expected size 8==8, stride 1==256 at dim=1 ... Error in op: torch.ops.aten.replication_pad2d_backward``).
``--blur-padding zero`` has no pad op (``progan.layers.Blur``). ``compile_failure`` turns such an
error into one line that names the cause.
"""
from __future__ import annotations

import re
import traceback
from typing import Any, Callable

import torch
from torch import nn

__all__ = ["CompileError", "compile_modules", "compile_failure"]

# A progressive run compiles G in about 8 variants per stage (D step / G step x mixing x fade-in) and D
# in about 4; dynamo's default limit (8 per code object) would silently run later stages eager.
VARIANTS_PER_STAGE = 12


class CompileError(RuntimeError):
    """The compiled training step failed; the message is one line naming the cause."""


def compile_modules(*modules: nn.Module, num_stages: int) -> dict[nn.Module, Callable[..., Any]]:
    """``{module: torch.compile(module)}`` for ``StepContext.compiled``; raises dynamo's recompile limit
    so that every stage of a progressive run of ``num_stages`` stays compiled."""
    config = torch._dynamo.config
    config.recompile_limit = max(config.recompile_limit, VARIANTS_PER_STAGE * num_stages)
    return {module: torch.compile(module) for module in modules}


_COMPILER_FILES = re.compile(r"torch[/\\]_(dynamo|inductor|functorch)[/\\]|torchinductor_")


def compile_failure(exc: BaseException, *, blur_padding: str | None = None) -> CompileError | None:
    """The one-line ``CompileError`` for ``exc`` if it came out of torch.compile's machinery (dynamo,
    AOTAutograd, inductor or the code inductor generated), else None. ``blur_padding`` is the
    StyleGAN-lite generator's (None for ProGAN): with "replicate" a failing pad op points at the flag."""
    compiler_frames = any(_COMPILER_FILES.search(frame.filename) for frame in traceback.extract_tb(exc.__traceback__))
    if not compiler_frames and not isinstance(exc, torch._dynamo.exc.TorchDynamoException):
        return None
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    op = re.search(r"Error in op: (\S+)", text)
    cause = f"{type(exc).__name__}: {first}" + (f" (in {op.group(1)})" if op else "")
    if blur_padding == "replicate" and "replication_pad" in text:
        hint = ("StyleGAN-lite's replicate-padded blur is the cause: train with --blur-padding zero "
                "(a new run; NVIDIA's padding), or without --compile")
    else:
        hint = "rerun without --compile to train eagerly"
    return CompileError(f"--compile: the compiled training step failed: {cause}; {hint}")
