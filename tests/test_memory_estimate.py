"""The memory estimate of ``train.py --dry-run`` (``progan.training.memory``) against a real CPU run
and closed forms.

- The trace on fake tensors and a real CPU iteration of the same preset and batch keep the same
  bytes saved for backward and the same live tensor bytes at every moment (so the same peak); the
  real run's peak is also read from glibc's allocator (``mallinfo2``), a meter the estimator does
  not use, and the traced peak must lie below it by at most the kernels' scratch buffers (< 30%).
- Weights, EMA, Adam and gradient bytes are closed forms of the parameter counts; which parameters
  get a gradient at the traced stage is read from a real backward.
- Activations grow linearly with the batch, and bf16 halves the per-image bytes of fp32, roughly.
"""
from __future__ import annotations

import contextlib
import dataclasses
import copy
import ctypes
import json

import pytest
import torch

from families import FAMILIES
from progan.training import iteration
from progan.training.memory import LiveBytes, SavedTensorBytes, estimate_training_memory
from progan.layers import EqualizedConv2d, EqualizedLinear
from progan.spectral_norm import apply_spectral_norm
from progan.training.options import TrainConfig
from progan.training.step import StepContext, make_optimizers
from train_utils import run_train

FAMILY_NAMES = ["progan", "stylegan_lite"]


def _config(family: str, preset: str, batch: int, precision: str = "no") -> TrainConfig:
    # fixed resolution (alpha 1) and a style-mixing coin that always mixes: the real run's graph is
    # then the one the trace takes (fake tensors have no data to toss the coin with)
    return TrainConfig(family=family, preset=preset, batch_size=batch, mixed_precision=precision,
                       progressive=False, mixing_prob=1.0)


class _Mallinfo(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _glibc_in_use():
    """Bytes glibc's malloc has handed out (heap + mmapped chunks), or None off glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _Mallinfo
    except (OSError, AttributeError):
        return None
    return lambda: (lambda m: m.uordblks + m.hblkhd)(libc.mallinfo2())


class _MallocPeak(torch.utils._python_dispatch.TorchDispatchMode):
    """Peak of glibc's bytes in use, sampled after every op (allocations happen only inside ops)."""

    def __init__(self, in_use) -> None:
        super().__init__()
        self.in_use, self.base, self.peak = in_use, in_use(), 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.peak = max(self.peak, self.in_use() - self.base)
        return out


def _real_iteration(family_name: str, config: TrainConfig, *, meters=()) -> dict:
    """One real training iteration on CPU tensors, the trainer's ``iteration.train_iteration`` (1 process, fp32),
    with the trainer's own ``--spectral-norm`` and ``--channels-last`` conversions when ``config`` asks."""
    family = FAMILIES[family_name]
    model = family.preset(config.preset)
    torch.manual_seed(0)
    g, d = family.generator_cls(model).train(), family.discriminator_cls(model).train()
    if config.spectral_norm:
        apply_spectral_norm(d)
    if config.channels_last:  # as the trainer does it (Trainer.__init__)
        g.to(memory_format=torch.channels_last)
        d.to(memory_format=torch.channels_last)
    g_ema = copy.deepcopy(g).eval().requires_grad_(False)
    opt_g, opt_d = make_optimizers(g, d, config)
    for opt, module in ((opt_g, g), (opt_d, d)):  # Adam's moments exist, as in the estimate
        for p in module.parameters():
            p.grad = torch.zeros_like(p)
        opt.step()
        opt.zero_grad(set_to_none=True)
    ctx = StepContext(generator=g, discriminator=d, loss=family.default_loss, stage=model.num_stages - 1, alpha=1.0,
                      latent_dim=model.latent_dim, device=torch.device("cpu"), autocast=contextlib.nullcontext,
                      backward=lambda loss: loss.backward(),
                      mixing_prob=config.mixing_prob if family_name == "stylegan_lite" else 0.0)
    setup = iteration.IterationSetup(opt_g=opt_g, opt_d=opt_d, generator_ema=g_ema)
    got_grad: set[int] = set()  # parameters a backward reached (the optimizers clear .grad before the call returns)
    for p in (*g.parameters(), *d.parameters()):
        p.register_post_accumulate_grad_hook(lambda p: got_grad.add(id(p)))
    live = next((m for m in meters if isinstance(m, LiveBytes)), None)
    if live is not None:
        for module, params, buffers in ((g, "parameters", "buffers"), (d, "parameters", "buffers"),
                                        (g_ema, "ema", "ema")):
            for p in module.parameters():
                live.tag(p, params)
            for b in module.buffers():
                live.tag(b, buffers)
        for opt in (opt_g, opt_d):
            for state in opt.state.values():
                for value in state.values():
                    live.tag(value, "optimizer")
        for p in (*g.parameters(), *d.parameters()):
            p.register_post_accumulate_grad_hook(lambda p: live.tag(p.grad, "gradients"))
        live.peak, live.category_peaks = 0, type(live.category_peaks)()
    with contextlib.ExitStack() as stack:
        for meter in meters:
            stack.enter_context(meter)
        reals = [torch.rand(config.batch_size, 3, model.resolution, model.resolution) * 2 - 1]
        if config.channels_last:  # as Trainer._next_minibatch
            reals = [r.contiguous(memory_format=torch.channels_last) for r in reals]
        iteration.train_iteration(ctx, setup, reals, step=0, ema_beta=0.999)
    return {"g": g, "d": d, "d_active": [p.numel() for p in d.parameters() if id(p) in got_grad],
            "g_active": [p.numel() for p in g.parameters() if id(p) in got_grad]}


@pytest.mark.parametrize("family_name", FAMILY_NAMES)
def test_trace_equals_a_real_cpu_iteration(family_name):
    config = _config(family_name, "demo-32", 8)
    estimate = estimate_training_memory(config, FAMILIES[family_name])

    saved, live = SavedTensorBytes(), LiveBytes()
    _real_iteration(family_name, config, meters=(saved, live))
    assert saved.peak > 0 and estimate.saved == saved.peak
    assert estimate.total == live.peak
    assert estimate.activations == live.category_peaks["activations"]

    in_use = _glibc_in_use()
    if in_use is None:
        pytest.skip("glibc mallinfo2 not available")
    malloc = _MallocPeak(in_use)
    _real_iteration(family_name, config, meters=(malloc,))
    # the real run allocated these itself; weights, EMA and Adam were allocated before the meter started
    transient = estimate.total - (estimate.parameters + estimate.buffers + estimate.ema + estimate.optimizer)
    # above it by the kernels' own scratch buffers (oneDNN/im2col here, cuDNN workspaces on a GPU): 6-22% measured
    assert transient <= malloc.peak <= 1.3 * transient, (transient, malloc.peak)


@pytest.mark.parametrize("option", ["spectral_norm", "channels_last"])
@pytest.mark.parametrize("family_name", FAMILY_NAMES)
def test_trace_with_spectral_norm_or_channels_last_equals_a_real_iteration_with_it(family_name, option):
    """``--spectral-norm`` adds D's power-iteration vectors u, v (4 bytes per row and per column of each
    layer's weight, counted by hand) and the normalization's own tensors; ``--channels-last`` changes no
    state bytes. Either way the trace must keep the live bytes of a real CPU iteration with that option,
    at every moment (``--channels-last`` made the estimate itself crash: torch 2.14 refuses to swap fake
    parameters in ``Module.to``)."""
    family = FAMILIES[family_name]
    plain = estimate_training_memory(_config(family_name, "tiny", 4), family)
    config = TrainConfig(family=family_name, preset="tiny", batch_size=4, progressive=False, mixing_prob=1.0,
                         **{option: True})
    estimate = estimate_training_memory(config, family)
    saved, live = SavedTensorBytes(), LiveBytes()
    _real_iteration(family_name, config, meters=(saved, live))
    assert estimate.total == live.peak and estimate.saved == saved.peak
    assert estimate.activations == live.category_peaks["activations"]
    assert (estimate.parameters, estimate.optimizer, estimate.ema) == (plain.parameters, plain.optimizer, plain.ema)
    layers = [m for m in family.discriminator_cls(family.preset("tiny")).modules()
              if isinstance(m, (EqualizedConv2d, EqualizedLinear))]
    vectors = 4 * sum(m.weight.shape[0] + m.weight[0].numel() for m in layers) if option == "spectral_norm" else 0
    assert estimate.buffers == plain.buffers + vectors and (vectors > 0) == (option == "spectral_norm")
    if option == "spectral_norm":  # sigma and W / sigma per layer, in every D forward
        assert estimate.total > plain.total + vectors


@pytest.mark.parametrize("family_name", FAMILY_NAMES)
def test_state_bytes_are_closed_forms_of_the_parameter_counts(family_name):
    config = _config(family_name, "tiny", 4)
    estimate = estimate_training_memory(config, FAMILIES[family_name])
    real = _real_iteration(family_name, config)
    g, d = real["g"], real["d"]
    params = [p for m in (g, d) for p in m.parameters()]
    count = sum(p.numel() for p in params)
    g_count = sum(p.numel() for p in g.parameters())
    buffer_bytes = {m: sum(b.numel() * b.element_size() for b in m.buffers()) for m in ("g", "d")
                    for m in [real[m]]}
    assert estimate.parameters == 4 * count                      # fp32 master weights of G and D
    assert estimate.buffers == sum(buffer_bytes.values())
    assert estimate.ema == 4 * g_count + buffer_bytes[g]         # one more generator
    assert estimate.optimizer == 8 * count + 4 * len(params)     # exp_avg + exp_avg_sq, a step counter each
    # gradients of the active parameters only; D's are freed (set_to_none) before G's exist
    assert estimate.gradients == 4 * max(sum(real["d_active"]), sum(real["g_active"]))
    assert 0 < len(real["d_active"]) < len(list(d.parameters()))  # inactive from_rgb layers: no gradient


@pytest.mark.parametrize("family_name", FAMILY_NAMES)
def test_historical_averaging_sums_are_traced_as_float64_copies(family_name):
    family = FAMILIES[family_name]
    plain = estimate_training_memory(_config(family_name, "tiny", 4), family)
    config = TrainConfig(family=family_name, preset="tiny", batch_size=4, progressive=False, mixing_prob=1.0,
                         historical_averaging=0.1)
    estimate = estimate_training_memory(config, family)
    model = family.preset("tiny")
    count = sum(p.numel() for m in (family.generator_cls(model), family.discriminator_cls(model))
                for p in m.parameters())
    assert plain.history == 0 and estimate.history == 8 * count   # one float64 sum per parameter of G and D
    assert estimate.total >= plain.total + estimate.history       # alive through the whole iteration


def test_the_estimate_and_the_trainer_run_the_same_iteration(tmp_path, monkeypatch):
    """``iteration.train_iteration`` is the one iteration: replaced by a recording wrapper, it is what
    the memory estimate traces and what every training step of the trainer runs."""
    from accelerate import Accelerator

    from data_prep import open_dataset
    from progan.training.trainer import Trainer
    from train_utils import make_image_folder

    calls = []
    original = iteration.train_iteration

    def recorded(ctx, setup, reals, **kwargs):
        calls.append((type(reals[0]).__name__, kwargs["step"]))  # fake tensors in the trace, real ones in training
        return original(ctx, setup, reals, **kwargs)

    monkeypatch.setattr(iteration, "train_iteration", recorded)
    config = TrainConfig(family="stylegan_lite", preset="tiny", batch_size=4, progressive=False, r1_every=2,
                         data=str(make_image_folder(tmp_path / "data")), out=str(tmp_path / "run"), kimg=0.012,
                         checkpoint_kimg=10, sample_kimg=10, workers=0, monitor_num=0)
    estimate_training_memory(config, FAMILIES["stylegan_lite"])
    assert calls == [("FakeTensor", 0)]                            # step 0: with the lazy penalty
    calls.clear()
    trainer = Trainer(config, FAMILIES["stylegan_lite"], lambda r: open_dataset(config.data, r),
                      accelerator=Accelerator(cpu=True))
    trainer.train()
    assert calls == [("Tensor", 0), ("Tensor", 1), ("Tensor", 2)] and trainer.step == 3  # 12 images, batch 4


@pytest.mark.parametrize("family_name", FAMILY_NAMES)
def test_activations_grow_linearly_with_batch_and_bf16_halves_them(family_name):
    family = FAMILIES[family_name]
    fp32 = {b: estimate_training_memory(_config(family_name, "demo-32", b), family).activations for b in (4, 8, 16)}
    assert fp32[16] - fp32[8] == pytest.approx(2 * (fp32[8] - fp32[4]), rel=0.05)
    assert fp32[4] == pytest.approx(fp32[8] - (fp32[8] - fp32[4]), rel=0.05)
    assert fp32[4] < 0.6 * fp32[8]                                # nearly all of it is per image
    bf16 = {b: estimate_training_memory(_config(family_name, "demo-32", b, "bf16"), family).activations for b in (4, 16)}
    ratio = (bf16[16] - bf16[4]) / (fp32[16] - fp32[4])
    assert 0.45 <= ratio <= 0.7, ratio                            # 2-byte activations, fp32 norms and losses


def test_dry_run_prints_the_estimate_and_writes_nothing(tmp_path):
    out = tmp_path / "run"
    result = run_train(["--family", "progan", "--preset", "tiny", "--batch-size", "8", "--mixed-precision", "bf16",
                        "--out", str(out), "--dry-run"])
    assert result.returncode == 0, result.stderr[-3000:]
    resolved = json.loads(result.stdout)
    memory = resolved["memory_estimate_bytes"]
    assert (memory["batch_size"], memory["precision"], memory["resolution"]) == (8, "bf16", 16)
    assert memory["total"] >= memory["activations"] > memory["parameters"] > 0
    assert "total peak per process" in result.stderr and "batch 8, precision bf16" in result.stderr
    assert not out.exists()                                       # no checkpoints, logs or samples


def test_dry_run_estimates_for_the_processes_it_is_given(tmp_path):
    """--estimate-processes 3 reaches the estimate: the JSON and the table both say 3 processes (the
    default, 1, is what every other dry run here uses)."""
    result = run_train(["--family", "progan", "--preset", "tiny", "--batch-size", "4", "--out", str(tmp_path / "run"),
                        "--dry-run", "--estimate-processes", "3"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["memory_estimate_bytes"]["processes"] == 3
    assert "3 process(es)" in result.stderr


def test_each_stage_is_traced_at_its_own_batch_sizes_entry():
    """``--batch-sizes 8:6,16:2`` on the 16 px tiny preset: the estimate of stage 1 (8 px) uses 6 images,
    the final stage 2, and stage 0 (4 px, not listed) ``--batch-size``; an explicit batch wins
    (which entry is picked does not depend on the family)."""
    config = dataclasses.replace(_config("progan", "tiny", 5), batch_sizes="8:6,16:2")
    family = FAMILIES["progan"]
    assert [estimate_training_memory(config, family, stage=s).batch_size for s in (0, 1, 2)] == [5, 6, 2]
    assert estimate_training_memory(config, family).batch_size == 2
    assert estimate_training_memory(config, family, stage=1, batch_size=3).batch_size == 3


def test_saved_bytes_peak_is_the_largest_live_total_by_hand():
    """``x * x`` saves both factors for backward: 1000 fp32 values hold 2 * 4000 bytes; freeing the graph
    brings the live count back to 0, a later 10-value product holds 80 and the peak stays 8000."""
    x = torch.zeros(1000, requires_grad=True)
    with SavedTensorBytes() as saved:
        y = x * x
        assert saved.live == 8000
        del y
        small = x[:10] * x[:10]                                     # 80 bytes: the peak does not move
    assert (saved.live, saved.peak) == (80, 8000)
    del small


def test_no_fade_is_traced_without_fade_kimg_or_at_the_first_stage():
    """alpha 0.5 (both paths of a fade-in alive) only where a fade happens: progressive growing with
    fade_kimg > 0 past stage 0. fade_kimg 0 or stage 0 trace the alpha-1 graph; fading does cost more."""
    family = FAMILIES["progan"]
    faded = dataclasses.replace(_config("progan", "tiny", 4), progressive=True, fade_kimg=1.0)
    assert estimate_training_memory(faded, family) == estimate_training_memory(faded, family, alpha=0.5)
    assert estimate_training_memory(faded, family, alpha=0.5).total > estimate_training_memory(faded, family, alpha=1.0).total
    no_fade = dataclasses.replace(faded, fade_kimg=0.0)
    assert estimate_training_memory(no_fade, family) == estimate_training_memory(no_fade, family, alpha=1.0)
    assert estimate_training_memory(faded, family, stage=0) == estimate_training_memory(faded, family, stage=0, alpha=1.0)
