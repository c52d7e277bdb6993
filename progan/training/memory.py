"""Memory of one training iteration per process, traced without allocating it.

The trace runs the iteration that trains, ``iteration.train_iteration`` (the D step with its penalty
-- fake half first, as stylegan2-ada's loss.py --, the lazy penalty's own D step, the G step, both
Adam steps, the EMA update and, for several processes, the flat all-reduce buffers of
``distributed.all_reduce_mean_``), on tensors of torch's ``FakeTensorMode``: every tensor has its real
shape, dtype and lifetime but no data, so a trace costs no memory and the same time at any batch size
(about 13 s at the paper presets on this project's busy 2-core VM, plus a one-time import of
``torch._dynamo``, which ``FakeTensorMode`` pulls in). Mixed precision is CPU autocast with the chosen
dtype (CUDA autocast casts the same convolutions and matmuls). ``LiveBytes``, a ``TorchDispatchMode``,
counts the bytes of every storage an op returns and subtracts them when the storage is freed (a
weakref finalizer), so the peak includes temporaries and not only the tensors saved for backward
(``SavedTensorBytes``).

``torch.distributed._tools.mem_tracker.MemTracker`` was not tried here: it files memory by module
pre/post and backward hooks, which this estimate does not need, and how it treats the penalties'
double backward is unknown. The meter here is small, and labels gradients (a post-accumulate hook)
and Adam/EMA state by identity.

What the trace does not see (the README states it next to its table): the CUDA context and cuDNN
workspaces, the caching allocator's rounding and fragmentation, kernels' internal scratch buffers,
and the foreach Adam's temporaries on CUDA (Adam is not at the peak). Of ``training.tricks``, feature
matching and ``--historical-averaging`` (float64 sums of both networks' parameters, ``history``) are
traced; ``--unrolled-steps`` is not (a copy of D with its Adam state, and its D steps): fake tensors
cannot be deep-copied. Nor are ``--cond``'s labels (the preset is traced unconditional).
"""
from __future__ import annotations

import contextlib
import dataclasses
import warnings
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.weak import WeakIdKeyDictionary

from ..config import Family
from . import iteration  # called as iteration.train_iteration: one function, replaceable in one place
from .augment import build_augment
from .options import TrainConfig, model_overrides
from .step import StepContext, make_optimizers, regularization_interval
from .tricks import discriminator_kwargs

__all__ = ["SavedTensorBytes", "LiveBytes", "MemoryEstimate", "estimate_training_memory", "format_estimate",
           "PRECISION_DTYPES"]

PRECISION_DTYPES = {"no": None, "bf16": torch.bfloat16, "fp16": torch.float16}
GiB = 2**30


class SavedTensorBytes:
    """Live and peak bytes of tensors saved for backward inside ``with meter:`` (saved-tensor hooks;
    a tensor saved by two ops counts twice, as autograd keeps two references)."""

    def __init__(self) -> None:
        self.live = self.peak = 0
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda ticket: ticket[0])

    def _pack(self, tensor: torch.Tensor):
        meter, size = self, tensor.numel() * tensor.element_size()
        meter.live += size
        meter.peak = max(meter.peak, meter.live)

        class Ticket(tuple):
            def __del__(self) -> None:
                meter.live -= size

        return Ticket((tensor,))

    def __enter__(self) -> "SavedTensorBytes":
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._hooks.__exit__(*exc)


class LiveBytes(TorchDispatchMode):
    """Bytes of live tensor storages by category, their peak, and the breakdown at the peak.

    Storages an op returns count as ``activations`` (everything transient: inputs, activations,
    saved tensors, temporaries) until ``tag`` files them elsewhere (``parameters``, ``gradients``,
    ...). With ``scalars=True`` data-dependent scalars (``.item()`` of a random draw, which a fake
    tensor cannot know) answer 0.0 / 1: the style-mixing coin then always mixes (the larger graph).
    """

    def __init__(self, *, scalars: bool = False) -> None:
        super().__init__()
        self.live: Counter[str] = Counter()
        self.peak = 0
        self.at_peak: dict[str, int] = {}
        self.category_peaks: Counter[str] = Counter()
        self.phase = ""
        self.phase_peaks: Counter[str] = Counter()     # peak of all live bytes while each phase ran
        self._storages: WeakIdKeyDictionary = WeakIdKeyDictionary()  # storage -> [nbytes, category]
        self._scalars = scalars

    def _entry(self, tensor: torch.Tensor, category: str) -> list:
        storage = tensor.untyped_storage()
        entry = self._storages.get(storage)
        if entry is None:
            entry = self._storages[storage] = [storage.nbytes(), category]
            self.live[category] += entry[0]
            weakref.finalize(storage, self._free, entry)
        return entry

    def _free(self, entry: list) -> None:
        self.live[entry[1]] -= entry[0]

    def tag(self, tensor: torch.Tensor, category: str) -> None:
        """Count ``tensor``'s storage as ``category`` from now on (registering it if it is new)."""
        entry = self._entry(tensor, category)
        if entry[1] != category:
            self.live[entry[1]] -= entry[0]
            self.live[category] += entry[0]
            entry[1] = category
        self._update()

    def _update(self) -> None:
        total = sum(self.live.values())
        for category, value in self.live.items():
            if value > self.category_peaks[category]:
                self.category_peaks[category] = value
        if total > self.phase_peaks[self.phase]:
            self.phase_peaks[self.phase] = total
        if total > self.peak:
            self.peak, self.at_peak = total, dict(self.live)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if self._scalars and func is torch.ops.aten._local_scalar_dense.default:
            from torch._subclasses.fake_tensor import DataDependentOutputException

            try:  # fake tensors know constants (Adam's step counter), not random draws
                return func(*args, **(kwargs or {}))
            except DataDependentOutputException:
                return 0.0 if args[0].is_floating_point() else 1
        out = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor) and leaf.layout == torch.strided:
                self._entry(leaf, "activations")
        self._update()
        return out


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per process of one training iteration. ``total`` is the traced peak of everything alive
    at once; the other fields are the peaks of each part on its own (they need not coincide)."""

    family: str
    preset: str
    resolution: int
    batch_size: int
    precision: str
    loss: str
    processes: int
    parameters: int          # G and D weights (fp32 masters; autocast casts copies per op)
    buffers: int             # G and D buffers (w_avg, fixed noise, blur kernels)
    ema: int                 # the EMA generator's weights and buffers
    optimizer: int           # Adam's two moments of every parameter (+ a 4-byte step counter per tensor)
    gradients: int           # peak of live .grad tensors (D's and G's are never alive together)
    activations: int         # peak of everything else: inputs, activations, saved tensors, temporaries
    saved: int               # peak bytes saved for backward, per reference (a tensor saved twice counts twice)
    total: int               # peak of all of the above alive at the same moment
    phases: dict[str, int] = field(default_factory=dict)  # peak total while each phase ran
    history: int = 0         # --historical-averaging: float64 sums of G's and D's parameters

    def fits(self, capacity_bytes: float, *, headroom: float) -> bool:
        return self.total <= capacity_bytes * (1.0 - headroom)


def _tag_module(meter: LiveBytes, module: nn.Module, params: str, buffers: str) -> None:
    for p in module.parameters():
        meter.tag(p, params)
    for b in module.buffers():
        meter.tag(b, buffers)


@contextlib.contextmanager
def _phase(meter: LiveBytes, name: str) -> Iterator[None]:
    meter.phase = name
    yield
    meter.phase = ""


def estimate_training_memory(config: TrainConfig, family: Family, *, batch_size: int | None = None,
                             precision: str | None = None, processes: int = 1, stage: int | None = None,
                             alpha: float | None = None) -> MemoryEstimate:
    """Trace one training iteration of ``config`` on fake tensors and return its memory per process.

    Defaults: ``config.batch_size`` (or its ``--batch-sizes`` entry for the final resolution),
    ``config.mixed_precision``, the final stage, and alpha 0.5 when progressive growing fades that
    stage in (both paths alive: the largest graph of the run), else 1. ``processes > 1`` adds the flat
    gradient buffer of the all-reduce. Adam's state exists for every parameter before the traced iteration.
    """
    from torch._subclasses.fake_tensor import FakeTensorMode

    from .options import parse_batch_sizes

    model_config = dataclasses.replace(family.preset(config.preset), **model_overrides(config))
    loss = config.objective
    stage = model_config.num_stages - 1 if stage is None else stage
    if alpha is None:
        alpha = 0.5 if config.progressive and config.fade_kimg > 0 and stage > 0 else 1.0
    resolution = model_config.resolutions[stage]
    if batch_size is None:
        batch_size = parse_batch_sizes(config.batch_sizes).get(resolution, config.batch_size)
    precision = config.mixed_precision if precision is None else precision
    dtype = PRECISION_DTYPES[precision]
    reg_every = regularization_interval(config, loss)
    meter, saved = LiveBytes(scalars=True), SavedTensorBytes()
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    with FakeTensorMode(), warnings.catch_warnings():  # fake ops draw no random numbers: the RNG is untouched
        warnings.filterwarnings("ignore", message=".*data pointer of FakeTensor")  # Module.to() asks for it
        generator = family.generator_cls(model_config).train()
        discriminator = family.discriminator_cls(model_config, **discriminator_kwargs(config)).train()
        if config.spectral_norm:
            from ..spectral_norm import apply_spectral_norm

            apply_spectral_norm(discriminator)
        # a second construction, not deepcopy: a deep copy of fake tensors belongs to another fake mode
        generator_ema = family.generator_cls(model_config).eval().requires_grad_(False)
        if config.channels_last:  # what the trainer's module.to(memory_format=channels_last) does: its 4-D
            # weights and buffers channels_last. In place: Module.to swaps fake tensors, which torch 2.14 refuses
            for module in (generator, discriminator):
                for tensor in (*module.parameters(), *module.buffers()):
                    if tensor.dim() == 4:
                        tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)
        opt_g, opt_d = make_optimizers(generator, discriminator, config, reg_every=reg_every)
        augment = build_augment(config.augment, policy=config.augment_policy, p=1.0)  # ADA at its costliest
        with meter:
            _tag_module(meter, generator, "parameters", "buffers")
            _tag_module(meter, discriminator, "parameters", "buffers")
            _tag_module(meter, generator_ema, "ema", "ema")
            for p in (*generator.parameters(), *discriminator.parameters()):
                p.register_post_accumulate_grad_hook(lambda p: meter.tag(p.grad, "gradients"))
            ctx = StepContext.from_config(
                config, family=family.name, loss=loss, reg_every=reg_every,
                generator=generator, discriminator=discriminator, stage=stage, alpha=alpha,
                latent_dim=model_config.latent_dim, device=torch.device("cpu"),
                autocast=(lambda: torch.autocast("cpu", dtype=dtype)) if dtype else contextlib.nullcontext,
                backward=lambda value: value.backward(),
                grad_scale=65536.0 if precision == "fp16" else 1.0, augment=augment)
            # the flat all-reduce buffers of `processes` processes, traced in this one
            setup = iteration.IterationSetup.from_config(
                config, generator=generator, discriminator=discriminator, generator_ema=generator_ema,
                opt_g=opt_g, opt_d=opt_d, reg_every=reg_every,
                reduce_options={"world": processes, "all_reduce": lambda flat: None})
            setup.unrolled_steps = 0  # fake tensors cannot be deep-copied: the unrolled D copy is not traced
            for history in (setup.history or {}).values():  # --historical-averaging: float64 parameter sums
                for total in history.sums.values():
                    meter.tag(total, "history")
            # Adam's moments for every parameter, as after a progressive run has visited every stage
            for opt, module in ((opt_g, generator), (opt_d, discriminator)):
                for p in module.parameters():
                    p.grad = torch.zeros_like(p)
                opt.step()
                opt.zero_grad(set_to_none=True)
                for state in opt.state.values():
                    for value in state.values():
                        if torch.is_tensor(value):
                            meter.tag(value, "optimizer")
            meter.category_peaks.clear(), meter.phase_peaks.clear()
            meter.peak, meter.at_peak = 0, {}
            with saved:
                with _phase(meter, "D step"):  # the minibatch arrives at the start of the D step
                    reals = [torch.rand(batch_size, 3, resolution, resolution).contiguous(memory_format=memory_format)
                             * 2 - 1 for _ in range(config.grad_accum)]
                # step 0: the iteration with the lazy penalty, the largest; the trainer's own iteration
                iteration.train_iteration(ctx, setup, reals, step=0, ema_beta=0.999,
                                          phase=lambda name: _phase(meter, name))
    parts = meter.category_peaks
    return MemoryEstimate(
        family=family.name, preset=config.preset, resolution=resolution, batch_size=batch_size,
        precision=precision, loss=loss, processes=processes, parameters=parts["parameters"],
        buffers=parts["buffers"], ema=parts["ema"], optimizer=parts["optimizer"], gradients=parts["gradients"],
        activations=parts["activations"], saved=saved.peak, total=meter.peak, phases=dict(meter.phase_peaks),
        history=parts["history"])


def format_estimate(estimate: MemoryEstimate) -> str:
    """A small table of ``estimate`` in GiB (what ``train.py --dry-run`` prints)."""
    e = estimate
    rows = [("parameters (G + D, fp32)", e.parameters), ("buffers (G + D)", e.buffers),
            ("EMA generator", e.ema), ("Adam moments (G + D)", e.optimizer),
            ("gradients (peak; D's or G's)", e.gradients),
            *((("historical-averaging sums (float64)", e.history),) if e.history else ()),
            ("activations + temporaries (peak)", e.activations),
            ("saved for backward (peak, per reference)", e.saved),
            *((f"peak during {name}", value) for name, value in e.phases.items() if name),
            ("total peak per process", e.total)]
    width = max(len(name) for name, _ in rows)
    unit, scale = ("GiB", GiB) if e.total >= GiB else ("MiB", 2**20)
    head = (f"estimated memory per process: {e.family}/{e.preset}, {e.resolution}px, batch {e.batch_size}, "
            f"precision {e.precision}, loss {e.loss}, {e.processes} process(es)\n"
            "(traced on fake tensors with the real training step; CUDA context, cuDNN workspaces and "
            "allocator fragmentation come on top)")
    return "\n".join([head, *(f"  {name:<{width}}  {value / scale:9.3f} {unit}" for name, value in rows)])
