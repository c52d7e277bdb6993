"""``--compile`` (progan.training.compiled): which calls run compiled, the one-line failure, and (slow: torch.compile
takes minutes on a CPU) that compiled training steps give eager's losses and that the replicate-pad failure
names its cure."""
from __future__ import annotations

import contextlib
import copy
import dataclasses

import pytest
import torch

from families import FAMILIES
from progan.training import iteration
from progan.training.compiled import CompileError, compile_failure, compile_modules
from progan.training.step import StepContext, discriminator_step, generator_step, regularization_step

FAMILY = FAMILIES["stylegan_lite"]
TINY = FAMILY.presets["tiny"]


def _models(config=TINY):
    torch.manual_seed(0)
    return FAMILY.generator_cls(config).train(), FAMILY.discriminator_cls(config).train()


def _context(g, d, *, loss: str, compiled=None, penalty: bool = True, mixing_prob: float = 1.0) -> StepContext:
    return StepContext(generator=g, discriminator=d, loss=loss, stage=TINY.num_stages - 1, alpha=1.0,
                       latent_dim=TINY.latent_dim, device=torch.device("cpu"), autocast=contextlib.nullcontext,
                       backward=lambda loss: loss.backward(), mixing_prob=mixing_prob, penalty=penalty,
                       compiled=compiled or {})


@pytest.mark.parametrize("loss", ["wgan_gp", "logistic_r1", "hinge+none"])
def test_penalties_call_the_eager_discriminator(loss):
    """Compiled graphs have no double backward: every D call a penalty differentiates twice is eager."""
    g, d = _models()
    calls: list[str] = []

    def spy(name, module):
        return lambda *args, **kwargs: (calls.append(name), module(*args, **kwargs))[1]

    ctx = _context(g, d, loss=loss, compiled={g: spy("G", g), d: spy("D", d)})
    reals = [torch.rand(4, 3, 16, 16) * 2 - 1]
    discriminator_step(ctx, reals)
    # the fake half is compiled; the real half too unless the penalty differentiates it
    assert calls == ["G", "D"] + (["D"] if loss == "hinge+none" else [])
    calls.clear()
    discriminator_step(dataclasses.replace(ctx, penalty=False), reals)  # lazy: the penalty is not in this step
    assert calls == ["G", "D", "D"]
    if loss != "hinge+none":
        calls.clear()
        regularization_step(ctx, reals, 4)  # the lazy penalty: eager D (and G only for WGAN-GP's interpolates)
        assert calls == (["G"] if loss == "wgan_gp" else [])
    calls.clear()
    generator_step(ctx, 4, 1)
    assert calls == ["G", "D"]


def test_compile_failure_is_one_line_that_names_the_cause():
    assert compile_failure(ValueError("a training problem")) is None  # not torch.compile's: passes through

    class Dynamo(torch._dynamo.exc.TorchDynamoException):
        pass

    replicate = Dynamo("expected size 8==8, stride 1==256 at dim=1\nError in op: "
                       "torch.ops.aten.replication_pad2d_backward.default\nThis error most often comes from ...")
    error = compile_failure(replicate, blur_padding="replicate")
    assert isinstance(error, CompileError) and "\n" not in str(error)
    assert str(error) == ("--compile: the compiled training step failed: Dynamo: expected size 8==8, stride 1==256 "
                          "at dim=1 (in torch.ops.aten.replication_pad2d_backward.default); StyleGAN-lite's "
                          "replicate-padded blur is the cause: train with --blur-padding zero (a new run; NVIDIA's "
                          "padding), or without --compile")
    other = compile_failure(Dynamo("something else\nmore"), blur_padding="zero")
    assert str(other).endswith("Dynamo: something else; rerun without --compile to train eagerly")


def test_compiled_forwards_share_the_modules_parameters():
    g, d = _models()
    compiled = compile_modules(g, d, num_stages=TINY.num_stages)  # lazy: nothing compiles until called
    assert set(compiled) == {g, d}
    assert [p.data_ptr() for p in compiled[g].parameters()] == [p.data_ptr() for p in g.parameters()]
    assert torch._dynamo.config.recompile_limit >= 8 * TINY.num_stages


def _iterations(g, d, *, compiled: bool, loss: str, steps: int) -> list[float]:
    """D's and G's loss of each of ``steps`` iterations: ``[d0, g0, d1, g1, ...]``."""
    from progan.training.step import make_optimizers
    from progan.training.options import TrainConfig

    opt_g, opt_d = make_optimizers(g, d, TrainConfig(family="stylegan_lite"))
    setup = iteration.IterationSetup(opt_g=opt_g, opt_d=opt_d, generator_ema=copy.deepcopy(g).eval())
    ctx = _context(g, d, loss=loss, compiled=compile_modules(g, d, num_stages=TINY.num_stages) if compiled else None)
    torch.manual_seed(1)
    losses = []
    for step in range(steps):
        reals = [torch.rand(4, 3, 16, 16) * 2 - 1]
        terms = iteration.train_iteration(ctx, setup, reals, step=step, ema_beta=0.9)
        losses += [terms.d_terms["d_loss"].item(), terms.g_terms["g_loss"].item()]
    return losses


@pytest.mark.slow
def test_compiled_steps_give_eager_losses_with_zero_padding(monkeypatch):
    """A few real iterations (WGAN-GP: compiled G, compiled D on fakes, eager D under the penalty) match
    eager ones; ``fallback_random`` makes the compiled graph draw G's noise from the same stream as eager."""
    import torch._inductor.config

    monkeypatch.setattr(torch._inductor.config, "fallback_random", True)
    from torch._dynamo.utils import counters

    config = dataclasses.replace(TINY, blur_padding="zero")
    graphs = counters["stats"]["unique_graphs"]
    eager = _iterations(*_models(config), compiled=False, loss="wgan_gp", steps=3)
    assert counters["stats"]["unique_graphs"] == graphs
    compiled = _iterations(*_models(config), compiled=True, loss="wgan_gp", steps=3)
    assert counters["stats"]["unique_graphs"] >= graphs + 4  # G in the D and the G step, D on fakes and in G's step
    # The first iteration's losses come before any update: only fusion's reordered float sums differ.
    assert compiled[:2] == pytest.approx(eager[:2], rel=1e-4)
    # Later ones follow Adam steps, which normalise the gradients and so amplify those last-digit
    # differences (seen: 6e-5 on one thread, 4e-3 on two in CI); a wrong graph is off by far more.
    assert compiled[2:] == pytest.approx(eager[2:], rel=2e-2)


@pytest.mark.slow
def test_replicate_padding_fails_to_compile_with_the_cure_named(tmp_path):
    from accelerate import Accelerator

    from data_prep import open_dataset
    from progan.training.options import TrainConfig
    from progan.training.trainer import Trainer
    from train_utils import make_image_folder

    data = make_image_folder(tmp_path / "data")
    config = TrainConfig(family="stylegan_lite", preset="tiny", data=str(data), out=str(tmp_path / "run"),
                         kimg=0.008, batch_size=4, progressive=False, workers=0, monitor_num=0, compile=True)
    trainer = Trainer(config, FAMILY, lambda r: open_dataset(str(data), r), accelerator=Accelerator(cpu=True))
    with pytest.raises(CompileError, match=r"replication_pad2d_backward.*train with --blur-padding zero"):
        trainer.train()
