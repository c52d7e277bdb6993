"""What the processes of one run must agree on, and how they fail when they cannot.

- **Gradients**: one flat all-reduce of the *active* parameters' gradients, in place, then ``/ world``
  (NVlabs stylegan3 ``training_loop.py``; stylegan2-ada used DDP). DDP's reducer cannot follow a
  parameter set that changes with the progressive stage, nor the double backward of penalties.
- **Buffers**: only *persistent* floating buffers are averaged (StyleGAN's ``w_avg``, tracked by each
  process on its own latents; the update is linear, so the mean equals one update on the global
  batch). Non-persistent constants (fixed noise, blur kernels) are equal by construction and cost a
  collective each if reduced.
- **Flags**: stop requests and non-finite losses are folded into one small device tensor and
  max-reduced every few steps (``--sync-every``) and before anything is written, so the loop has no
  per-step host sync (stylegan2-ada checks NaNs on the host only at its tick/snapshot boundaries).
- **Resume**: rank 0 picks the checkpoint and broadcasts its name; every rank must see that directory,
  and after loading, ``images_seen`` and the weight digest must be equal on every rank. Otherwise all
  ranks raise the same one-line error together, instead of one rank raising while the others wait.
- **Timeouts**: the process group gets an explicit timeout (``--dist-timeout``); a collective that
  times out is reported with the phase of the loop it happened in.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DistributedError", "all_reduce_mean_", "all_reduce_gradients", "persistent_float_buffers",
           "max_reduce_", "choose_checkpoint", "check_ranks_agree", "collective_phase"]


class DistributedError(RuntimeError):
    """The processes of a run disagree, or one stopped answering; raised on every rank alike."""


def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def all_reduce_mean_(tensors: Sequence[torch.Tensor], *, world: int | None = None,
                     all_reduce: Callable[[torch.Tensor], object] | None = None) -> None:
    """Average ``tensors`` across processes in place with one flat all-reduce.

    ``world``/``all_reduce`` default to the process group; ``training.memory`` passes its own to trace
    the flat buffer's memory in one process."""
    world = _world() if world is None else world
    if world == 1 or not tensors:
        return
    flat = torch.cat([t.detach().flatten() for t in tensors])
    (all_reduce or dist.all_reduce)(flat)
    flat.div_(world)
    for t, part in zip(tensors, flat.split([t.numel() for t in tensors])):
        t.copy_(part.view_as(t))


def all_reduce_gradients(module: nn.Module, **options: Any) -> None:
    """Average the gradients of the parameters that have one (the active stage's)."""
    all_reduce_mean_([p.grad for p in module.parameters() if p.grad is not None], **options)


def persistent_float_buffers(module: nn.Module) -> list[torch.Tensor]:
    """Floating buffers saved with the weights (``w_avg``); constants registered non-persistent are left out."""
    saved = module.state_dict(keep_vars=True)
    return [b for name, b in module.named_buffers() if name in saved and b.is_floating_point()]


def max_reduce_(flags: torch.Tensor) -> torch.Tensor:
    """Element-wise max over processes, in place (any rank's stop or non-finite flag wins)."""
    if _world() > 1:
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    return flags


def _all_gather(value: object) -> list[object]:
    if _world() == 1:
        return [value]
    gathered: list[object] = [None] * _world()
    dist.all_gather_object(gathered, value)
    return gathered


def choose_checkpoint(root: Path, latest: Path | None, *, rank: int) -> Path | None:
    """Rank 0's ``latest`` for everyone; fails on all ranks if any of them cannot see that checkpoint."""
    chosen = [latest.name if latest is not None else None]
    if _world() > 1:
        dist.broadcast_object_list(chosen, src=0)
    if chosen[0] is None:
        return None
    path = root / chosen[0]
    visible = _all_gather((path / "state.pt").is_file())
    blind = [r for r, seen in enumerate(visible) if not seen]
    if blind:
        raise DistributedError(f"rank(s) {', '.join(map(str, blind))} cannot see {path}, the checkpoint rank 0 "
                               "resumes from: --out must be one directory shared by every node")
    return path


def check_ranks_agree(**values: object) -> None:
    """Every rank holds the same ``values`` (e.g. images_seen, weights digest), or every rank raises."""
    gathered = _all_gather(values)
    for key in values:
        seen = [g[key] for g in gathered]  # type: ignore[index]
        if any(v != seen[0] for v in seen):
            ranks = ", ".join(f"rank {r}: {str(v)[:16]}" for r, v in enumerate(seen))
            raise DistributedError(f"processes disagree on {key} after resuming ({ranks}); "
                                   "they loaded different checkpoints: use one shared --out")


@contextlib.contextmanager
def collective_phase(what: str, *, timeout: float) -> Iterator[None]:
    """Turn a collective timeout inside the block into one line naming ``what`` the loop was doing."""
    try:
        yield
    except DistributedError:
        raise
    except RuntimeError as exc:  # gloo: RuntimeError "Timed out ..."; NCCL: DistBackendError (a RuntimeError)
        if "timed out" not in str(exc).lower() and "timeout" not in str(exc).lower():
            raise
        rank = dist.get_rank() if _world() > 1 else 0
        raise DistributedError(f"rank {rank}: the other processes did not answer within --dist-timeout "
                               f"{timeout:g} s while {what}; one of them failed or is stuck there (see its "
                               "log)") from exc
