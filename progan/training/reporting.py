"""What a training run writes besides checkpoints: log records, sample grids, monitor signals, evaluations.

``log.jsonl`` (and the Accelerate trackers) get one record per ``--log-every`` steps, each term the mean
over the steps of the interval on which it ran, averaged over processes; the sample grid of the EMA
generator every ``--sample-kimg`` (with ``--cond``, its rows cycle through the classes:
``training.conditional.grid_labels``); the collapse signal and r_v of ``training.monitor``; and the
periodic metrics (``metrics.evaluation``), where a new best FID at the full resolution is exported to
``best/``. ``summary()`` is what the model card records about the run.

Used as a base class of ``Trainer`` (like ``training.resume.CheckpointState``): the methods read and write
its attributes (config, accelerator, models, counters, the term sums and the monitor), so the fields stay
where the loop sets them up.
"""
from __future__ import annotations

import json
import time
from typing import Any

import torch

from .conditional import grid_labels
from .monitor import TrainingMonitor
from .samples import save_sample_grid
from .tricks import tricks_summary

__all__ = ["RunReports"]


class RunReports:
    """Logging, samples, monitor signals, evaluation and the run summary for ``Trainer`` (see the module docstring)."""

    def summary(self, seconds: float) -> dict[str, Any]:
        """What the exported model card records about the run (options, images seen, time)."""
        return {"preset": self.config.preset, "family": self.family.name, "images_seen": self.images_seen,
                "kimg": round(self.images_seen / 1000, 3), "steps": self.step, "train_seconds": round(seconds, 1),
                "processes": self.accelerator.num_processes, "device": str(self.accelerator.device),
                "loss": self.loss, "data": self.config.data or "openmoji",
                "stabilization": self.config.stabilization(), **tricks_summary(self.config),
                **({"init_from": self.config.init_from, "init_regrow": self.config.init_regrow,
                    "freeze_d": self.config.freeze_d} if self.config.init_from else {})}

    def _log(self, record: dict[str, Any]) -> None:
        if self.accelerator.is_main_process:
            wall, cpu = self.clock.read()
            record = {**record, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}
            self.accelerator.log({k: v for k, v in record.items() if isinstance(v, (int, float))},
                                 step=self.images_seen)
            with open(self.out / "log.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def _accumulate_terms(self, terms: dict[str, torch.Tensor]) -> None:
        """Add this step's terms to the sums of the current log interval (no host sync)."""
        for name, value in terms.items():
            total = self._term_sums.setdefault(name, [torch.zeros((), device=self.accelerator.device), 0])
            total[0] += value.detach().float()
            total[1] += 1

    def _log_terms(self, phase, bar) -> None:
        """Each term's mean over the steps of the interval on which it ran, averaged over processes in
        one stacked reduce and read with one host sync. Every process runs the same steps, so the
        names and counts agree across ranks."""
        names = sorted(self._term_sums)
        means = torch.stack([self._term_sums[k][0] / self._term_sums[k][1] for k in names])
        self._term_sums = {}
        values = self.accelerator.reduce(means, reduction="mean")
        logged = dict(zip(names, values.tolist()))
        since, seen = self._log_since
        speed = (self.images_seen - seen) / max(time.time() - since, 1e-9)
        self._log_since = (time.time(), self.images_seen)
        record = {"kimg": self.images_seen / 1000, "step": self.step, "stage": phase.stage,
                  "resolution": phase.resolution, "alpha": round(phase.alpha, 4), "img_per_s": speed, **logged}
        postfix = {"res": phase.resolution, "alpha": f"{phase.alpha:.2f}", "d": f"{logged['d_loss']:.3f}",
                   "g": f"{logged['g_loss']:.3f}", "ips": f"{speed:.0f}"}
        if self.augment is not None:
            record["augment_p"] = self.augment.p
            postfix["p"] = f"{self.augment.p:.3f}"
        if "diversity" in self._signals:
            postfix["div"] = f"{self._signals['diversity']:.2f}"
        bar.set_postfix(postfix)
        self._log(record)

    def _samples(self, phase) -> None:
        """The sample grid (main process); a stop request abandons it between batches, unwritten, and
        the next agreement (at most --sync-every steps, or the evaluation's first batch) saves."""
        if self.accelerator.is_main_process:
            labels = grid_labels(len(self.sample_z), self.model_config.num_classes) if self.config.cond else None
            save_sample_grid(self.generator_ema, self.sample_z,
                             self.out / "samples" / f"grid-{self.images_seen / 1000:09.3f}kimg.png",
                             stage=phase.stage, alpha=phase.alpha, full_resolution=self.model_config.resolution,
                             labels=labels, should_stop=lambda: self._stop_requested)

    def _monitor_signals(self, phase) -> None:
        """The collapse signal and r_v (``training.monitor``), main process only, logged as one record."""
        if self.config.monitor_num == 0 or not self.accelerator.is_main_process:
            return
        full = self._full_dataset(phase.resolution)
        if self._monitor is None:
            self._monitor = TrainingMonitor(latent_dim=self.model_config.latent_dim, num=self.config.monitor_num,
                                            seed=self.config.seed, train_indices=self._split.train,
                                            heldout_indices=self._split.heldout)
        self._signals = self._monitor(self.generator, self.discriminator, full, stage=phase.stage,
                                      alpha=phase.alpha, device=self.accelerator.device)
        self._log({"kimg": self.images_seen / 1000, "step": self.step, "resolution": phase.resolution,
                   "alpha": round(phase.alpha, 4), **self._signals})

    def _evaluate(self, phase, seconds: float) -> None:
        """Metrics of the EMA generator at the current stage; a new best FID at full resolution is exported."""
        assert self.evaluator is not None
        results = self.evaluator(self.generator_ema, self._dataset(phase.resolution), stage=phase.stage,
                                 alpha=phase.alpha, should_stop=lambda: self._stop_requested)
        if results is None:  # not the main process
            return
        self._log({"kimg": self.images_seen / 1000, "step": self.step, "resolution": phase.resolution,
                   "alpha": round(phase.alpha, 4), "eval_num": self.evaluator.num, **results})
        self.accelerator.print(f"\neval at {self.images_seen / 1000:.3f} kimg, {phase.resolution}px: "
                               + ", ".join(f"{k} {v:.4g}" for k, v in results.items()))
        final = phase.resolution == self.model_config.resolution and phase.alpha >= 1.0
        if final and "fid" in results and results["fid"] < self.best_fid:
            self.best_fid = results["fid"]
            summary = {**self.summary(seconds), "fid": results["fid"], "fid_num": self.evaluator.num}
            self.generator_ema.save_pretrained(self.out / "best", summary=summary)
