"""The training loop behind ``accelerate launch train.py`` (ProGAN appendix A.1, StyleGAN appendix C).

One ``Accelerator``; models are placed on the device and the two optimizers go through ``prepare``
once (mixed precision, GradScaler). Each step runs ``iteration.train_iteration``, the one training
iteration (D step -> lazy penalty -> G step -> EMA) that the memory estimate traces too; around it the
trainer owns the data stream, the schedule, logging, samples, evaluation and checkpoints (what a
checkpoint holds, resuming and ``--init-from``: ``training.resume``; log records, sample grids, monitor
signals, evaluations and the run summary: ``training.reporting``). What
processes must agree on (gradients, ``w_avg``, stop and non-finite flags, the checkpoint to resume
from) lives in ``training.distributed``. Every decision
(stage, alpha, batch size, data order, latents) derives from the images seen and RNG streams that
are saved per process, so a resumed run continues bit for bit (on CPU; see the README for CUDA).
SIGTERM/SIGUSR1 and non-finite losses are agreed on by all processes at the same step, at most
``--sync-every`` steps later; a stop saves a checkpoint first and skips samples and evaluation. A
stop during an evaluation or a sample grid gives way within one batch (all processes agree after each
feature batch; ``metrics.evaluation``), then saves; a stop that arrived before the first step (train.py
records it from its first line) ends the run before it starts, with nothing to save and exit 0.

The flags of stop requests and non-finite losses, and the fp16 rule for which non-finite term is
divergence (only a penalty of a D step the GradScaler skipped is excused), live in ``training.health``.

Small-data options: ``--augment diffaugment|ada`` (``training.augment``; ADA's p and its running
sign sums are checkpointed) and lazy regularization ``--r1-every/--gp-every K`` (StyleGAN2 section 3.1,
appendix B): the penalty becomes its own D optimizer step every K minibatches, so D takes K + 1 steps
per K minibatches and its Adam runs with ``lr * c`` and ``beta ** c``, ``c = K / (K + 1)``.

The stabilization options (``TrainConfig``): ``--spectral-norm`` normalizes D's layers
(``progan.spectral_norm``; its power-iteration vectors are buffers, so checkpoints carry them);
``--reset-opt-at-stage`` clears both Adam states whenever floor or ceil of StyleGAN's level of detail
changes, i.e. when a fade-in starts and when it ends, exactly as StyleGAN's ``reset_opt_for_new_lod``
(training_loop.py); the lod of the previous step is checkpointed (``opt_lod``), so a resumed run
resets on the same steps. All of them are recorded in ``summary()`` (the model card) and
``train_config``.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import signal
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

import torch
from accelerate import Accelerator
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from .augment import AdaptiveController, build_augment
from .compiled import compile_failure, compile_modules
from . import iteration  # called as iteration.train_iteration: one function, replaceable in one place
from .distributed import collective_phase
from ..config import Family
from ..spectral_norm import apply_spectral_norm
from .conditional import conditional_model_config
from .data_stream import make_loader, split_batch
from .ema import ema_beta
from ..metrics.evaluation import EvaluationStopped, PeriodicEvaluator
from .monitor import HeldOutSplit, TrainingMonitor
from .progress import RunClock, excluded_from_rate
from .reporting import RunReports
from .resume import CheckpointState
from .schedule import GrowthSchedule
from .health import RunFlags, TrainingDiverged
from .finetune import freeze_discriminator_blocks, model_config_for_dataset
from .options import TrainConfig, model_overrides, parse_batch_sizes
from .step import StepContext, current_grad_scale, make_optimizers, regularization_interval
from .tricks import discriminator_kwargs

__all__ = ["Trainer", "TrainingDiverged"]


class _Due(NamedTuple):
    """What is written after a step: its interval was crossed, or --kimg is reached."""
    sample: bool
    checkpoint: bool
    evaluate: bool



class Trainer(CheckpointState, RunReports):
    def __init__(self, config: TrainConfig, family: Family, open_dataset: Callable[[int], Dataset], *,
                 accelerator: Accelerator | None = None, evaluator: PeriodicEvaluator | None = None,
                 pending_signals: list[int] | None = None) -> None:
        self.config, self.family, self.open_dataset = config, family, open_dataset
        self.out = Path(config.out)
        self.accelerator = accelerator or Accelerator(mixed_precision=config.mixed_precision,
                                                      log_with="tensorboard", project_dir=str(self.out))
        acc = self.accelerator
        # a grayscale or RGBA dataset (data_prep --channels) sets image_channels; opened here once
        preset = dataclasses.replace(family.preset(config.preset), **model_overrides(config))  # --blur-padding
        self.model_config, full_dataset = model_config_for_dataset(preset, open_dataset)
        self.class_weights: torch.Tensor | None = None  # --cond: images per class (G-step label distribution)
        if config.cond:
            self.model_config, counts = conditional_model_config(self.model_config, full_dataset)
            self.class_weights = torch.tensor(counts, dtype=torch.float32, device=acc.device)
        self.loss = config.objective  # the family's recipe when --loss is empty (FAMILY_LOSS = default_loss)
        by_res = parse_batch_sizes(config.batch_sizes)
        self.schedule = GrowthSchedule(
            num_stages=self.model_config.num_stages, fade_kimg=config.fade_kimg, stable_kimg=config.stable_kimg,
            # a fine-tune trains the final stage from its first step unless --init-regrow
            progressive=config.progressive and (not config.init_from or config.init_regrow),
            batch_sizes=tuple(by_res.get(r, config.batch_size) for r in self.model_config.resolutions))
        torch.manual_seed(config.seed)  # identical initial weights on every process
        self.generator = family.generator_cls(self.model_config).to(acc.device).train()
        self.discriminator = family.discriminator_cls(self.model_config,
                                                      **discriminator_kwargs(config)).to(acc.device).train()
        if config.spectral_norm:  # u, v from their own generator: the global RNG stream is untouched
            apply_spectral_norm(self.discriminator)
        if config.channels_last:
            self.generator.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)
        self.generator_ema = copy.deepcopy(self.generator).eval().requires_grad_(False)
        # --compile: the step's forwards of G and D (training.compiled); the modules themselves stay plain
        self.compiled = (compile_modules(self.generator, self.discriminator, num_stages=self.model_config.num_stages)
                         if config.compile else {})
        self.frozen_d = freeze_discriminator_blocks(self.discriminator, config.freeze_d)  # before the optimizer
        self.init_digest: str | None = None  # weights digest right after --init-from (initialize_from)
        self.reg_every = regularization_interval(config, self.loss)
        self.opt_g, self.opt_d = acc.prepare(*make_optimizers(self.generator, self.discriminator, config,
                                                              reg_every=self.reg_every))
        # what every iteration updates besides G and D (training.iteration); historical averaging's running
        # sums of each player's parameters (training.tricks) live in it and are checkpointed
        self.iteration_setup = iteration.IterationSetup.from_config(
            config, generator=self.generator, discriminator=self.discriminator, generator_ema=self.generator_ema,
            opt_g=self.opt_g, opt_d=self.opt_d, reg_every=self.reg_every)
        self.history = self.iteration_setup.history
        self.ada = (AdaptiveController(target=config.ada_target, interval=config.ada_interval,
                                       speed_kimg=config.ada_kimg) if config.augment == "ada" else None)
        self.augment = build_augment(config.augment, policy=config.augment_policy)  # ADA starts at p = 0
        self._ada_signs = torch.zeros(2, dtype=torch.float64, device=acc.device)  # this rank: sum sign(D(real)), count
        self.sample_z = torch.randn(config.sample_count, self.model_config.latent_dim,
                                    generator=torch.Generator().manual_seed(config.seed))
        self.images_seen, self.step, self.consumed = 0, 0, 0
        self._opt_lod = self._lod(self.schedule.phase(0))  # --reset-opt-at-stage: lod of the previous step
        self.best_fid = math.inf  # lowest FID at the full resolution so far (exported to best/)
        if evaluator is None and config.eval_kimg > 0:
            from ..hub import cache_root

            evaluator = PeriodicEvaluator(acc, num=config.eval_num, data_label=config.data,
                                          network_path=config.eval_network or None,
                                          cache_dir=cache_root() / "fid-stats", seed=config.seed)
        self.evaluator = evaluator
        torch.manual_seed(config.seed * 1000 + 1 + acc.process_index)  # per-rank streams: latents, noise
        self._stop_requested = False
        self._pending_signals = pending_signals if pending_signals is not None else []  # caught before train()
        self._flags = RunFlags(acc.device)  # stop and non-finite, agreed on every --sync-every steps
        self._phase = "starting"
        self._datasets: dict[int, Dataset] = ({} if full_dataset is None else
                                              {self.model_config.resolution: full_dataset})
        # every logged term summed over the steps since the last log record, with the number of steps it
        # ran on: a lazy penalty (every K steps) is logged whatever K and --log-every are (device tensors)
        self._term_sums: dict[str, list] = {}
        self._split: HeldOutSplit | None = None      # --holdout: built on first use (needs the dataset size)
        self._monitor: TrainingMonitor | None = None
        self._signals: dict[str, float] = {}        # the latest monitor signals (progress bar)
        self._log_since = (time.time(), 0)          # (time, images_seen) of the last log record: its speed
        self.clock = RunClock()                     # wall and CPU seconds over all sessions (checkpointed)
        self._loader: Iterator[Any] | None = None   # the data stream at the current resolution and batch size
        self._loader_key: tuple[int, int] | None = None

    # --- helpers ----------------------------------------------------------------------------
    def _request_stop(self, signum: int, _frame: Any) -> None:
        if self._stop_requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now, without a checkpoint
        self._stop_requested = True

    def _full_dataset(self, resolution: int) -> Dataset:
        if resolution not in self._datasets:
            self._datasets = {resolution: self.open_dataset(resolution)}  # keep one open at a time
        full = self._datasets[resolution]
        if self._split is None:
            num_images = getattr(full, "num_images", len(full))
            self._split = HeldOutSplit(num_images, self.config.holdout, seed=self.config.seed)
        return full

    def _dataset(self, resolution: int) -> Dataset:
        """What D trains on (and the metrics compare against): the dataset without the held-out reals."""
        full = self._full_dataset(resolution)
        return self._split.training_subset(full) if self.config.holdout else full

    def _agree(self) -> tuple[bool, bool, int]:
        """(any rank asked to stop, any non-finite loss, images_seen at the first one): ``training.health``."""
        return self._flags.agree(stop_requested=self._stop_requested, images_seen=self.images_seen,
                                 scaler=self.accelerator.scaler)

    def _crossed(self, before: int, interval_kimg: float) -> bool:
        if interval_kimg <= 0:
            return False
        every = interval_kimg * 1000
        return math.floor(before / every) != math.floor(self.images_seen / every)

    def _lod(self, phase) -> float:
        """StyleGAN's level of detail: 0 at the full resolution, fractional during a fade-in."""
        return (self.model_config.num_stages - 1 - phase.stage) + (1.0 - phase.alpha)

    def _maybe_reset_optimizers(self, phase) -> None:
        """--reset-opt-at-stage: StyleGAN's rule, a reset whenever floor or ceil of the lod changes."""
        lod, previous = self._lod(phase), self._opt_lod
        self._opt_lod = lod
        if self.config.reset_opt_at_stage and (math.floor(lod) != math.floor(previous)
                                               or math.ceil(lod) != math.ceil(previous)):
            self.opt_g.state.clear()  # Adam's moments and step counts: the next step starts them afresh
            self.opt_d.state.clear()

    def _adapt(self, real_sign: torch.Tensor, count: int) -> None:
        """ADA: add this step's sign(D(real)) to the running sums; every interval, agree on p across ranks."""
        self._ada_signs += torch.stack([real_sign.detach().double() * count,
                                        torch.tensor(float(count), dtype=torch.float64, device=real_sign.device)])
        if (self.step + 1) % self.ada.interval:
            return
        totals = self.accelerator.reduce(self._ada_signs, reduction="sum")
        self.ada.adjust(float(totals[0]), int(totals[1]))
        self.augment.p = self.ada.p
        self._ada_signs.zero_()

    # --- the loop ---------------------------------------------------------------------------
    def train(self) -> Path:
        """Train to ``--kimg`` (returns the export dir) or until a stop signal (returns the checkpoint dir)."""
        try:
            with collective_phase("training", timeout=self.config.dist_timeout):
                return self._train()
        finally:
            self.clock.stop()
            # Shut the loader's workers down now. They ignore SIGTERM (a scheduler signals the whole
            # group), so if the iterator outlived train() multiprocessing's exit hook would terminate()
            # them in vain and then wait for them forever: the process printed "done" and never exited.
            self._loader, self._loader_key = None, None

    def _train(self) -> Path:
        """Start (or resume), then per step: one iteration, the agreement across processes, the log
        record, and the samples, evaluation and checkpoint that are due; at the end the export."""
        resumed = self._start()
        if self._agree()[0]:  # a stop before the first step: nothing to lose, nothing to save
            self.accelerator.print("stop requested before the first step: nothing to save; rerun the same command "
                                   "to " + ("resume" if resumed else "start"))
            # Every process past the agreement before any tears the process group down: a rank that
            # destroyed it while a peer still finished the all-reduce aborted that peer (gloo, CI).
            self.accelerator.wait_for_everyone()
            self.accelerator.end_training()
            return self.out / "checkpoints"
        cfg, total = self.config, int(self.config.kimg * 1000)
        bar = tqdm(total=round(cfg.kimg, 3), initial=round(self.images_seen / 1000, 3), unit="kimg",
                   disable=not self.accelerator.is_main_process, dynamic_ncols=True)  # one bar per run, not per node
        start = time.time()
        self.clock.start()
        self._loader, self._loader_key = None, None
        self._log_since = (time.time(), self.images_seen)  # speed of the next log record
        if not resumed:
            with excluded_from_rate(bar):
                self._samples(self.schedule.phase(0))
                self._monitor_signals(self.schedule.phase(0))
        while self.images_seen < total:
            phase = self.schedule.phase(self.images_seen)
            before = self.images_seen
            terms = self._train_step(phase, *self._next_minibatch(phase))
            bar.update(round(self.images_seen / 1000, 3) - bar.n)
            end = self.images_seen >= total
            due = _Due(sample=self._crossed(before, cfg.sample_kimg) or end,
                       checkpoint=self._crossed(before, cfg.checkpoint_kimg) or end,
                       evaluate=self.evaluator is not None and (self._crossed(before, cfg.eval_kimg) or end))
            stop = self._agree_before_writing(due, terms)
            if self.step % cfg.log_every == 0 or end:
                self._log_terms(phase, bar)
            if stop:  # save first: the scheduler's SIGKILL may follow; no samples, no evaluation
                return self._save_and_stop(bar)
            if not self._run_due(due, phase, bar, start):  # an evaluation gave way to a stop request
                return self._save_and_stop(bar)
        return self._finish(bar, start)

    def _start(self) -> Path | None:
        """Signal handlers, the output dir, the resume (or --init-from), trackers and train_config.json,
        and the Inception network; returns the checkpoint resumed from."""
        acc, cfg = self.accelerator, self.config
        for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT):
            signal.signal(sig, self._request_stop)
        if self._pending_signals:  # a signal that arrived while train.py was still importing/building
            self._stop_requested = True
        self.out.mkdir(parents=True, exist_ok=True)
        with collective_phase("choosing and loading the checkpoint to resume from", timeout=cfg.dist_timeout):
            resumed = self.try_resume()
            if resumed is None and cfg.init_from:  # a resumed fine-tune continues from its own checkpoint
                self.initialize_from(cfg.init_from)
        if acc.is_main_process:
            acc.init_trackers("train", config={k: v for k, v in asdict(cfg).items()})
            (self.out / "train_config.json").write_text(cfg.to_json() + "\n")
        acc.print(f"resumed from {resumed} at {self.images_seen / 1000:.3f} kimg" if resumed else
                  f"starting {self.family.name}/{cfg.preset} at {self.model_config.resolution}px, {cfg.kimg} kimg")
        if self.evaluator is not None:
            self.evaluator.load()  # a missing Inception file fails now, not at the first evaluation
        return resumed

    def _next_minibatch(self, phase) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
        """This step's ``--grad-accum`` micro-batches of reals (and their labels with --cond) on the
        device; a new loader, at the same position of the stream, when the resolution or batch size changes."""
        acc, cfg = self.accelerator, self.config
        key = (phase.resolution, phase.batch_size)
        if key != self._loader_key:
            self._loader = make_loader(self._dataset(phase.resolution), batch_size=phase.batch_size, seed=cfg.seed,
                                       rank=acc.process_index, world_size=acc.num_processes, consumed=self.consumed,
                                       workers=cfg.workers, pin_memory=acc.device.type == "cuda")
            self._loader_key = key
        batches = [split_batch(next(self._loader), acc.device) for _ in range(cfg.grad_accum)]
        reals = [images for images, _ in batches]
        if cfg.channels_last:
            reals = [r.contiguous(memory_format=torch.channels_last) for r in reals]
        self.consumed += phase.batch_size * cfg.grad_accum
        return reals, ([label for _, label in batches] if cfg.cond else None)

    def _train_step(self, phase, reals: list[torch.Tensor],
                    labels: list[torch.Tensor] | None) -> iteration.IterationTerms:
        """One ``iteration.train_iteration`` at ``phase``, then its health check, log terms and counters."""
        acc, cfg = self.accelerator, self.config
        scaler = acc.scaler
        self._maybe_reset_optimizers(phase)
        ctx = StepContext.from_config(
            cfg, family=self.family.name, loss=self.loss, reg_every=self.reg_every, images_seen=self.images_seen,
            generator=self.generator, discriminator=self.discriminator, stage=phase.stage,
            alpha=phase.alpha, latent_dim=self.model_config.latent_dim, device=acc.device,
            autocast=acc.autocast, backward=acc.backward,
            grad_scale=current_grad_scale(scaler),
            augment=self.augment, class_weights=self.class_weights, compiled=self.compiled)
        batch_images = phase.batch_size * cfg.grad_accum * acc.num_processes
        beta = ema_beta(batch_images, half_life_images=cfg.ema_half_life_kimg * 1000,
                        images_seen=self.images_seen + batch_images, rampup=cfg.ema_rampup)
        count = phase.batch_size * cfg.grad_accum  # this rank's reals in the step
        adapt = None if self.ada is None else (lambda d_terms: self._adapt(d_terms["real_sign"], count))
        try:
            terms = iteration.train_iteration(ctx, self.iteration_setup, reals, labels=labels, step=self.step,
                                              ema_beta=beta, after_discriminator=adapt)
        except Exception as exc:
            failure = compile_failure(exc, blur_padding=getattr(self.model_config, "blur_padding", None)) \
                if self.compiled else None
            if failure is None:
                raise
            raise failure from exc
        self._flags.note(terms, images_seen=self.images_seen)
        self._accumulate_terms({**terms.d_terms, **terms.g_terms})
        self.images_seen += batch_images
        self.step += 1
        return terms

    def _agree_before_writing(self, due: "_Due", terms: iteration.IterationTerms) -> bool:
        """Every --sync-every steps and before anything is written, all processes agree on a stop
        request (returned) and on divergence (raised, naming the first non-finite step)."""
        if not (due.sample or due.checkpoint or due.evaluate or self.step % self.config.sync_every == 0):
            return False
        stop, diverged, first_bad = self._agree()
        if diverged:
            raise TrainingDiverged(
                f"non-finite loss at {first_bad / 1000:.3f} kimg (seen by {self.images_seen / 1000:.3f} "
                f"kimg; last D {terms.d_terms['d_loss'].item():.4g}, G {terms.g_terms['g_loss'].item():.4g}); "
                "nothing saved after the last checkpoint; try lower learning rates or --mixed-precision bf16")
        return stop

    def _run_due(self, due: "_Due", phase, bar, start: float) -> bool:
        """Samples (+ monitor signals), evaluation and checkpoint due after this step, kept out of the
        bar's rate; False when a stop request made the evaluation give way (nothing of it kept)."""
        timeout = self.config.dist_timeout
        with excluded_from_rate(bar):  # the ETA counts training, not samples, evaluations, checkpoints
            if due.sample:
                self._samples(phase)
                self._monitor_signals(phase)
            if due.evaluate:
                try:
                    with collective_phase("evaluating", timeout=timeout):
                        self._evaluate(phase, time.time() - start)
                except EvaluationStopped:  # every process gave way at the same batch
                    return False
            if due.checkpoint:
                with collective_phase("saving a checkpoint", timeout=timeout):
                    self.save()
        return True

    def _finish(self, bar, start: float) -> Path:
        """``--kimg`` reached: export the EMA generator (main process) and close the run."""
        bar.close()
        export = self.out / "export"
        if self.accelerator.is_main_process:
            self.generator_ema.save_pretrained(export, summary=self.summary(time.time() - start))
        self.accelerator.wait_for_everyone()
        self.accelerator.end_training()
        return export

    def _save_and_stop(self, bar) -> Path:
        with collective_phase("saving the stop checkpoint", timeout=self.config.dist_timeout):
            self.save()
        bar.close()
        self.accelerator.print(f"stop requested: saved checkpoint at {self.images_seen / 1000:.3f} kimg; "
                               "rerun the same command to resume")
        self.accelerator.wait_for_everyone()
        self.accelerator.end_training()
        return self.out / "checkpoints"
