"""A run's checkpointed state: what ``Trainer`` saves, how it resumes, and how a fine-tune starts.

The state that makes a resumed run continue bit for bit (on CPU; ProGAN appendix A.1's schedule and
StyleGAN appendix C's are functions of the images seen, so the images seen, the data stream's
position and the per-process RNG states are all it needs besides weights and optimizers): rank 0
writes the shared state, every process its own RNG file (``training.checkpoint``); a resume loads
the checkpoint rank 0 chose (``training.distributed.choose_checkpoint``) and every process checks
the weights digest agrees. ``initialize_from`` is ``--init-from`` (``training.finetune``).

Used as a base class of ``Trainer``: the methods read and write its attributes (models,
optimizers, counters, ADA, historical averaging), so the fields stay where the loop uses them.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import config_to_dict
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .data_stream import rescale_consumed
from .distributed import check_ranks_agree, choose_checkpoint
from .finetune import load_init_weights, read_init_source
from .tricks import check_resume_architecture

__all__ = ["CheckpointState", "load_optimizer_keeping_options"]

_SHOWN = ("lr", "betas", "eps", "weight_decay")  # what a note names when it differs


def load_optimizer_keeping_options(optimizer: torch.optim.Optimizer, saved: dict[str, Any], name: str) -> list[str]:
    """Load Adam's moments and step counts from ``saved`` but keep this run's hyperparameters.

    ``Optimizer.load_state_dict`` also restores each group's ``lr``/``betas``/... as saved, so a
    resume with another ``--d-lr``, ``--g-lr``, ``--adam-beta1/2`` or lazy interval (``--r1-every``,
    ``--gp-every``, which scale D's lr and betas by ``c = K / (K + 1)``) would silently keep the old
    values. The options of the command that resumes win; one note per changed value says so.
    """
    wanted = [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
    optimizer.load_state_dict(saved)
    notes = []
    for group, options in zip(optimizer.param_groups, wanted):
        notes += [f"note: {name}'s Adam {key} is {options[key]} from this run's options (the checkpoint had "
                  f"{group[key]}); its moments are kept" for key in _SHOWN
                  if key in options and key in group and tuple(np.atleast_1d(group[key])) != tuple(np.atleast_1d(options[key]))]
        group.update(options)
    return notes


class CheckpointState:
    """Checkpoint save/resume and ``--init-from`` for ``Trainer`` (see the module docstring)."""

    # --- state ------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        scaler = self.accelerator.scaler
        return {"generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict(),
                "generator_ema": self.generator_ema.state_dict(), "opt_g": self.opt_g.state_dict(),
                "opt_d": self.opt_d.state_dict(), "scaler": scaler.state_dict() if scaler is not None else {},
                "images_seen": self.images_seen, "step": self.step, "consumed": self.consumed,
                "sample_z": self.sample_z, "world_size": self.accelerator.num_processes, "best_fid": self.best_fid,
                "augment_p": self.augment.p if self.augment is not None else 0.0, "opt_lod": self._opt_lod,
                "train_config": self.config.to_json(), "family": self.family.name, "clock": self.clock.state_dict(),
                "model_config": json.dumps(config_to_dict(self.model_config), sort_keys=True),
                "class_names": list(self.model_config.class_names),
                **({"historical_average": {k: h.state_dict() for k, h in self.history.items()}}
                   if self.history is not None else {})}

    def weights_digest(self) -> str:
        """Hash of G, D and G_ema weights: equal on every process of a healthy run (saved per rank)."""
        digest = hashlib.sha256()
        for module in (self.generator, self.discriminator, self.generator_ema):
            for tensor in module.state_dict().values():
                digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()

    def _rank_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"torch_rng": torch.get_rng_state(), "weights_digest": self.weights_digest(),
                                 "ada_signs": self._ada_signs.cpu()}
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state(self.accelerator.device)
        return state

    def save(self) -> Path:
        acc = self.accelerator
        return save_checkpoint(self.out / "checkpoints", images_seen=self.images_seen,
                               state=self._state() if acc.is_main_process else None,
                               rank_state=self._rank_state(), rank=acc.process_index,
                               barrier=acc.wait_for_everyone, keep=self.config.keep_checkpoints)

    def try_resume(self) -> Path | None:
        """Resume from the checkpoint rank 0 sees as latest; every rank must load the same state."""
        root, acc = self.out / "checkpoints", self.accelerator
        latest = latest_checkpoint(root) if self.config.resume and acc.is_main_process else None
        path = choose_checkpoint(root, latest, rank=acc.process_index)
        if path is None:
            return None
        state, rank_state = load_checkpoint(path, rank=self.accelerator.process_index)
        if state.get("family") != self.family.name:
            raise ValueError(f"{path} holds a {state.get('family')} run; use another --out or the same --family")
        if list(state.get("class_names", [])) != list(self.model_config.class_names):
            raise ValueError(f"{path} was trained on classes {state.get('class_names', [])}, this run has "
                             f"{list(self.model_config.class_names)}; use another --out or the same data and --cond")
        check_resume_architecture(state["train_config"], self.config, path)
        self._check_blur_padding(state, path)
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.generator_ema.load_state_dict(state["generator_ema"])
        for name, optimizer in (("G", self.opt_g), ("D", self.opt_d)):
            for note in load_optimizer_keeping_options(optimizer, state[f"opt_{name.lower()}"], name):
                self.accelerator.print(note)
        if self.accelerator.scaler is not None and state["scaler"]:
            self.accelerator.scaler.load_state_dict(state["scaler"])
        self.images_seen, self.step = state["images_seen"], state["step"]
        # the data stream continues at the same global position even if the process count changed
        self.consumed = rescale_consumed(state["consumed"], saved_world_size=state["world_size"],
                                         world_size=self.accelerator.num_processes)
        self.sample_z = state["sample_z"]
        if self.history is not None:
            if "historical_average" not in state:
                raise ValueError(f"{path} was trained without --historical-averaging; its parameter history is "
                                 "unknown: use another --out or drop the option")
            for name, history in self.history.items():
                history.load_state_dict(state["historical_average"][name])
        self._opt_lod = state.get("opt_lod", self._lod(self.schedule.phase(self.images_seen)))
        self.best_fid = state.get("best_fid", math.inf)  # absent in checkpoints older than --eval-kimg
        if "clock" in state:
            self.clock.load_state_dict(state["clock"])
        else:
            self.accelerator.print(f"note: {path} predates the run clock; the log's wall_s and cpu_s count from "
                                   "this resume")
        if self.ada is not None:
            self.ada.p = self.augment.p = float(state.get("augment_p", 0.0))
        if rank_state is not None and state["world_size"] == self.accelerator.num_processes:
            torch.set_rng_state(rank_state["torch_rng"])
            if "ada_signs" in rank_state:
                self._ada_signs = rank_state["ada_signs"].to(self.accelerator.device)
            if "cuda_rng" in rank_state and torch.cuda.is_available():
                torch.cuda.set_rng_state(rank_state["cuda_rng"], self.accelerator.device)
        else:
            self.accelerator.print("warning: process count changed since the checkpoint; "
                                   "training continues but is no longer bit-identical")
        check_ranks_agree(images_seen=self.images_seen, weights_digest=self.weights_digest())
        return path

    def _check_blur_padding(self, state: dict[str, Any], path: Path) -> None:
        """Refuse a resume whose generator blurred with another padding (no weights tell: one line).
        Checkpoints from before the option (no ``model_config``) were all replicate."""
        ours = getattr(self.model_config, "blur_padding", None)
        if ours is None:  # ProGAN: no blur
            return
        saved = json.loads(state.get("model_config", "{}")).get("blur_padding", "replicate")
        if saved != ours:
            raise ValueError(f"{path} was trained with --blur-padding {saved}, this run would use {ours}: "
                             f"pass --blur-padding {saved} to resume it, or use another --out")

    def initialize_from(self, source: str) -> None:
        """Fine-tuning: G, G_ema (and D from a checkpoint) from ``source``; every rank reads it, rank 0
        first (a download is then cached for the others). Logs the weights digest the run starts from."""
        acc = self.accelerator
        with acc.main_process_first():
            init = read_init_source(source)
        for note in load_init_weights(init, family=self.family.name, generator=self.generator,
                                      generator_ema=self.generator_ema, discriminator=self.discriminator):
            acc.print(note)
        if self.frozen_d:
            acc.print(f"Freeze-D: {', '.join(self.frozen_d)} of D stay at their initial weights")
        self.init_digest = self.weights_digest()
        check_ranks_agree(init_digest=self.init_digest)
        acc.print(f"weights digest after --init-from: {self.init_digest}")

