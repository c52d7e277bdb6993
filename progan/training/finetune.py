"""Fine-tuning from pretrained weights, Freeze-D, and the image channels a dataset dictates.

- ``--init-from SOURCE`` (transfer learning as in Mo et al. 2020, "Freeze the Discriminator", section 3,
  and Karras et al. 2020, "ADA", section 4): the run starts at kimg 0 with fresh optimizers on its own
  dataset, but G, G_ema and D start from SOURCE's weights. SOURCE is an exported generator (a
  directory, ``.safetensors`` file, http(s) URL or ``hf://``, resolved and verified by ``progan.hub``)
  or a training checkpoint (a ``ckpt-*`` directory, or a run directory whose latest checkpoint is
  used). An export holds only the EMA generator: it initializes both G and G_ema, and D starts fresh.
  Every tensor must match by name and shape (same family, widths, resolution, image channels);
  anything else is refused with one line naming the first mismatching tensor.
- ``--freeze-d N`` (Mo et al. 2020, section 3): the first N discriminator blocks seen from the image
  side (each stage's fromRGB with its block, highest resolution first) keep their pretrained weights:
  ``requires_grad`` False and left out of D's optimizer. Gradients still flow *through* them to the
  input (the penalties need them), and since no rank ever has a gradient for them, the gradient
  all-reduce (``all_reduce_gradients``: parameters with a grad) covers the same tensors on every rank.
- ``model_config_for_dataset``: a dataset prepared with ``--channels 1|4`` sets the model's
  ``image_channels`` (the presets are RGB).
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..hub.export import PretrainedError, read_pretrained
from .checkpoint import latest_checkpoint, load_checkpoint

__all__ = ["InitSource", "read_init_source", "load_init_weights", "freeze_discriminator_blocks",
           "model_config_for_dataset"]


@dataclass(frozen=True)
class InitSource:
    """Pretrained weights to start from: state dicts by network (``discriminator`` None for an export)."""

    location: str                                   # what the user gave
    path: str                                       # the resolved local file or checkpoint directory
    kind: str                                       # "export" or "checkpoint"
    family: str
    generator: dict[str, torch.Tensor]
    generator_ema: dict[str, torch.Tensor]
    discriminator: dict[str, torch.Tensor] | None
    config: dict[str, Any]                          # the source's model config, where it is known


def _checkpoint_dir(source: str) -> Path | None:
    """A ``ckpt-*`` dir (has state.pt) or a run dir (has checkpoints/): the checkpoint to read, else None."""
    if "://" in source:
        return None
    path = Path(source).expanduser()
    if (path / "state.pt").is_file():
        return path
    if (path / "checkpoints").is_dir():
        latest = latest_checkpoint(path / "checkpoints")
        if latest is None:
            raise FileNotFoundError(f"--init-from {source}: no complete checkpoint under {path / 'checkpoints'}")
        return latest
    return None


def read_init_source(source: str | os.PathLike, **resolve_options: Any) -> InitSource:
    """Read SOURCE (see the module docstring); raises PretrainedError/FileNotFoundError with one line."""
    text = os.fspath(source)
    checkpoint = _checkpoint_dir(text)
    if checkpoint is not None:
        state, _ = load_checkpoint(checkpoint, rank=0)
        config: dict[str, Any] = {}
        return InitSource(text, str(checkpoint), "checkpoint", str(state.get("family")), state["generator"],
                          state["generator_ema"], state["discriminator"], config)
    from ..hub import resolve_weights  # deferred: downloading pulls in urllib/huggingface_hub

    path = resolve_weights(text, **resolve_options)
    meta, tensors = read_pretrained(path)
    return InitSource(text, str(path), "export", meta["family"], tensors, tensors, None, meta["config"])


def _check_match(module: nn.Module, tensors: dict[str, torch.Tensor], *, what: str, source: InitSource,
                 family: str) -> None:
    """Every tensor of ``module`` in ``tensors`` with its shape and nothing more, or one line naming the first."""
    expected = module.state_dict()
    problem = None
    for key, value in expected.items():
        if key not in tensors:
            problem = f"{what} tensor {key} {tuple(value.shape)} is not in the source"
        elif tensors[key].shape != value.shape:
            problem = (f"{what} tensor {key} has shape {tuple(tensors[key].shape)} in the source, "
                       f"this run needs {tuple(value.shape)}")
        if problem:
            break
    if problem is None:
        extra = [k for k in tensors if k not in expected]
        if extra:
            problem = f"the source's {what} tensor {extra[0]} {tuple(tensors[extra[0]].shape)} has no place in this run"
    if problem is not None:
        family_note = (f"the source is a {source.family} model, this run trains {family}; "
                       if source.family != family else "")
        raise PretrainedError(f"--init-from {source.location}: {family_note}{problem} (family, preset widths, "
                              "resolution and image channels must match the source)")


@torch.no_grad()
def load_init_weights(source: InitSource, *, family: str, generator: nn.Module, generator_ema: nn.Module,
                      discriminator: nn.Module) -> list[str]:
    """Copy the source's weights in place (all checked before any is copied); returns notes for the log."""
    pairs = [(generator, source.generator, "generator"), (generator_ema, source.generator_ema, "generator_ema")]
    if source.discriminator is not None:
        pairs.append((discriminator, source.discriminator, "discriminator"))
    for module, tensors, what in pairs:
        _check_match(module, tensors, what=what, source=source, family=family)
    for module, tensors, _ in pairs:
        # copy_ keeps each parameter's memory format (channels_last) and device
        for key, target in module.state_dict(keep_vars=True).items():
            target.copy_(tensors[key])
    notes = [f"initialized from {source.kind} {source.path}"]
    if source.discriminator is None:
        notes.append("the source is an exported generator without a discriminator: D starts fresh "
                     "(random initialization)")
    own = json.loads(json.dumps(dataclasses.asdict(generator.config)))  # as the source's JSON: tuples are lists
    differs = sorted(k for k, v in source.config.items() if k in own and own[k] != v)
    if differs:
        notes.append(f"warning: the source's model config differs in {', '.join(differs)} "
                     "(same shapes, so the weights load; behaviour follows this run's preset)")
    return notes


def freeze_discriminator_blocks(discriminator: nn.Module, count: int) -> list[str]:
    """Freeze-D: ``requires_grad_(False)`` on the first ``count`` blocks from the image side (stage
    ``last``, ``last - 1``, ...: ``from_rgb[s]`` and ``blocks[s]``). Returns the frozen module names."""
    stages = len(discriminator.blocks)
    if not 0 <= count < stages:
        raise ValueError(f"--freeze-d must be between 0 and {stages - 1} (this discriminator has {stages} "
                         f"blocks and at least the output block must train), got {count}")
    frozen = []
    for stage in range(stages - 1, stages - 1 - count, -1):
        for name in (f"from_rgb.{stage}", f"blocks.{stage}"):
            discriminator.get_submodule(name).requires_grad_(False)
            frozen.append(name)
    return frozen


def model_config_for_dataset(model_config: Any, open_dataset: Callable[[int], Any]) -> tuple[Any, Any]:
    """``(model_config with the dataset's image_channels, the dataset at full resolution or None)``.

    The channel count comes from the dataset's ``channels`` (data_prep) or else its first image;
    a stand-in opener that returns None keeps the preset's.
    """
    dataset = open_dataset(model_config.resolution)
    if dataset is None:
        return model_config, None
    channels = getattr(dataset, "channels", None)
    if channels is None:
        channels = int(dataset[0].shape[0])
    if channels not in (1, 3, 4):
        raise ValueError(f"the dataset has {channels} image channels; gan-studio trains 1, 3 or 4")
    if channels != model_config.image_channels:
        model_config = dataclasses.replace(model_config, image_channels=channels)
    return model_config, dataset
