"""Salimans et al. 2016 (feature matching 3.1, minibatch discrimination 3.2, historical averaging 3.3) and the
unrolled discriminator of Metz et al. 2017 (section 2): closed forms, hand-computed sequences, a direct loop,
the unrolled copy leaving D alone, and bit-exact resume with the options on."""
import contextlib
import copy
import dataclasses
import math

import pytest
import torch
from torch import nn

from families import FAMILIES
from progan.minibatch_discrimination import MinibatchDiscrimination, parse_minibatch_discrimination
from progan.networks import Discriminator
from progan.training.options import TrainConfig
from progan.training.step import StepContext, discriminator_step, fade_reals, generator_step, instance_noise_std
from progan.training.tricks import (HistoricalAverage, feature_matching_generator_loss, feature_matching_loss,
                                    tricks_summary, unrolled_context)

from train_utils import assert_states_equal, make_image_folder

TINY = FAMILIES["progan"].presets["tiny"]


def _ctx(g, d, **extra) -> StepContext:
    return StepContext(generator=g, discriminator=d, loss=extra.pop("loss", "wgan_gp"), stage=2,
                       alpha=extra.pop("alpha", 1.0), latent_dim=TINY.latent_dim, device=torch.device("cpu"),
                       autocast=contextlib.nullcontext, backward=lambda loss: loss.backward(), **extra)


class IdentityFeatures(nn.Module):
    """A 'discriminator' whose features are the pixels and whose score is their mean."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, images, *, stage=None, alpha=1.0, features=False):
        f = images.flatten(1) * self.scale
        scores = f.mean(dim=1, keepdim=True)
        return (scores, f) if features else scores


# --- feature matching (section 3.1) -------------------------------------------------------------------

def test_feature_matching_loss_closed_form_and_modes():
    torch.manual_seed(0)
    real, fake = torch.randn(6, 3, 4, 4), torch.randn(6, 3, 4, 4)
    expected = (real.flatten(1).mean(0) - fake.flatten(1).mean(0)).square().sum()
    torch.testing.assert_close(feature_matching_loss(real.flatten(1), fake.flatten(1)), expected)
    critic = IdentityFeatures()
    critic_f = lambda x: critic(x, features=True)
    replace, parts = feature_matching_generator_loss(critic_f, fake, real, lambda s: -s.mean(), weight=0.5,
                                                     mode="replace")
    torch.testing.assert_close(replace, 0.5 * expected)
    torch.testing.assert_close(parts["g_feature_matching"], expected)
    add, _ = feature_matching_generator_loss(critic_f, fake, real, lambda s: -s.mean(), weight=0.5, mode="add")
    torch.testing.assert_close(add, -fake.mean() + 0.5 * expected)
    # the same batch on both sides matches exactly
    assert feature_matching_loss(real.flatten(1), real.flatten(1)).item() == 0.0


def test_generator_step_feature_matching_uses_faded_reals_and_the_weight():
    torch.manual_seed(1)
    g = FAMILIES["progan"].generator_cls(TINY)
    ctx = _ctx(g, IdentityFeatures(), alpha=0.3, feature_matching=2.0)
    real = torch.rand(4, 3, 16, 16) * 2 - 1
    torch.manual_seed(7)
    terms = generator_step(ctx, 4, 1, reals=[real])
    torch.manual_seed(7)
    with torch.no_grad():
        fake = g(torch.randn(4, TINY.latent_dim), stage=2, alpha=0.3)
    faded = fade_reals(real, 0.3)  # D sees reals blended as G's output during a fade-in
    expected = (faded.flatten(1).mean(0) - fake.flatten(1).mean(0)).square().sum()
    torch.testing.assert_close(terms["g_feature_matching"], expected)
    torch.testing.assert_close(terms["g_loss"], 2.0 * expected)
    with pytest.raises(ValueError, match="needs the minibatch of reals"):
        generator_step(ctx, 4, 1)


def test_feature_matching_gradient_reaches_g_and_not_d():
    torch.manual_seed(0)
    g, d = FAMILIES["progan"].generator_cls(TINY), Discriminator(TINY)
    ctx = _ctx(g, d, feature_matching=1.0, feature_matching_mode="replace")
    generator_step(ctx, 4, 1, reals=[torch.rand(4, 3, 16, 16) * 2 - 1])
    assert all(p.grad is None for p in d.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters())
    assert all(p.requires_grad for p in d.parameters())  # D unfrozen afterwards


def test_discriminator_features_are_the_last_conv_activations():
    torch.manual_seed(0)
    d = Discriminator(TINY)
    x = torch.randn(4, 3, 16, 16)
    scores, features = d(x, stage=2, features=True)
    assert torch.equal(scores, d(x, stage=2)) and features.shape == (4, TINY.channels(4) * 16)
    block = d.blocks[0]  # the two dense layers on the features give the score
    expected = block.out(torch.nn.functional.leaky_relu(block.dense(features), 0.2))
    torch.testing.assert_close(scores, expected)


# --- historical averaging (section 3.3) ---------------------------------------------------------------

def test_historical_average_against_hand_computed_sequence():
    module = nn.Module()
    module.theta = nn.Parameter(torch.zeros(2))
    history = HistoricalAverage(module)
    # theta_1 = (1, 2), theta_2 = (3, 0), theta_3 = (2, 5): means (1, 2), (2, 1), (2, 7/3)
    expected = [0.0, 1 + 1, 0 + (8 / 3) ** 2]
    grads = [(0.0, 0.0), (2.0, -2.0), (0.0, 16 / 3)]  # 2 (theta - mean): the average is a constant
    for i, (value, penalty, grad) in enumerate(zip([(1.0, 2.0), (3.0, 0.0), (2.0, 5.0)], expected, grads)):
        with torch.no_grad():
            module.theta.copy_(torch.tensor(value))
        module.theta.grad = None
        p = history.step(module)
        assert p.item() == pytest.approx(penalty), f"step {i + 1}"
        p.backward()
        torch.testing.assert_close(module.theta.grad, torch.tensor(grad))
        if i == 1:  # a checkpoint round trip in the middle continues the same sequence
            restored = HistoricalAverage(module)
            restored.load_state_dict(history.state_dict())
            history = restored
    assert history.count == 3
    torch.testing.assert_close(history.sums["theta"], torch.tensor([6.0, 7.0], dtype=torch.float64))


# --- minibatch discrimination (section 3.2) -----------------------------------------------------------

def _direct_closeness(layer: MinibatchDiscrimination, x: torch.Tensor) -> torch.Tensor:
    f = x.flatten(1)
    t = (layer.weight * layer.weight_scale).view(f.shape[1], layer.num_kernels, layer.kernel_dim)  # T [A, B, C]
    n = f.shape[0]
    m = [[[sum(f[i, a] * t[a, b, c] for a in range(f.shape[1])) for c in range(layer.kernel_dim)]
          for b in range(layer.num_kernels)] for i in range(n)]
    o = torch.zeros(n, layer.num_kernels)
    for i in range(n):
        for b in range(layer.num_kernels):
            for j in range(n):
                l1 = sum(abs(m[i][b][c] - m[j][b][c]) for c in range(layer.kernel_dim))
                o[i, b] += torch.exp(-l1)
    return o


def test_minibatch_discrimination_matches_a_direct_loop():
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(2 * 2 * 2, num_kernels=3, kernel_dim=2)
    x = torch.randn(4, 2, 2, 2) * 0.3
    with torch.no_grad():
        out = layer(x)
        expected = _direct_closeness(layer, x)
    assert out.shape == (4, 2 + 3, 2, 2)
    assert torch.equal(out[:, :2], x)
    torch.testing.assert_close(out[:, 2:], expected[:, :, None, None].expand(4, 3, 2, 2), rtol=1e-5, atol=1e-6)
    assert "num_kernels=3" in repr(layer)



@pytest.mark.parametrize("features", [4, 16])
def test_minibatch_discriminations_weight_is_scaled_by_one_over_root_a(features):
    # equalized learning rate: T = weight / sqrt(A). With weight all ones, sample 0 all zeros and
    # sample 1 all ones, M = (0, A / sqrt(A)) = (0, sqrt(A)): each o = exp(0) + exp(-sqrt(A))
    layer = MinibatchDiscrimination(features, num_kernels=1, kernel_dim=1)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        o = layer.closeness(torch.stack([torch.zeros(features), torch.ones(features)]))
    torch.testing.assert_close(o, torch.full((2, 1), 1 + math.exp(-math.sqrt(features))))

def test_minibatch_discrimination_tells_identical_from_varied_batches():
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(16 * 16, num_kernels=8, kernel_dim=4)
    varied = torch.randn(8, 16, 4, 4)
    identical = varied[:1].expand(8, -1, -1, -1)
    o_same, o_varied = layer.closeness(identical), layer.closeness(varied)
    torch.testing.assert_close(o_same, torch.full((8, 8), 8.0))  # n samples at L1 distance 0: exp(0) * n
    # itself (1), then distant samples add little: far below the collapsed batch's 8
    assert (o_varied >= 1.0).all() and o_varied.mean() < 1.5 and o_varied.max() < 2.0
    d = Discriminator(TINY, minibatch_discrimination=(8, 4))
    assert "minibatch_discrimination.weight" in dict(d.blocks[0].named_parameters())
    assert not hasattr(d.blocks[0], "mbstd")


def test_minibatch_discrimination_option_is_parsed_and_checked():
    assert parse_minibatch_discrimination("") is None and parse_minibatch_discrimination("100,5") == (100, 5)
    for bad in ("100", "a,b", "0,5", "3,4,5"):
        with pytest.raises(ValueError, match="--minibatch-discrimination"):
            TrainConfig(minibatch_discrimination=bad)
    assert parse_minibatch_discrimination("1,1") == (1, 1)  # the smallest kernel count and dimension
    for bad in ("0,1", "1,0"):
        with pytest.raises(ValueError, match=rf"^--minibatch-discrimination: B and C must be >= 1, got '{bad}'$"):
            parse_minibatch_discrimination(bad)


@pytest.mark.parametrize("options,message", [
    ({"unrolled_steps": -1}, "--unrolled-steps must be >= 0"),
    ({"feature_matching": -1.0}, "--feature-matching must be >= 0"),
    ({"historical_averaging": -0.1}, "--historical-averaging must be >= 0"),
    ({"feature_matching_mode": "mix"}, "--feature-matching-mode"),
    ({"unrolled_steps": 2, "mixed_precision": "fp16"}, "--unrolled-steps needs"),
])
def test_illegal_options_are_refused_in_one_line(options, message):
    with pytest.raises(ValueError, match=message) as info:
        TrainConfig(**options)
    assert "\n" not in str(info.value)


def test_fp16_is_refused_with_one_unrolled_step_and_accepted_with_none():
    """Only an unrolled D copy needs plain optimizer steps: fp16 with 0 unrolled steps is a valid run, 1 is refused."""
    assert TrainConfig(unrolled_steps=0, mixed_precision="fp16").mixed_precision == "fp16"
    with pytest.raises(ValueError, match="--unrolled-steps needs --mixed-precision no or bf16"):
        TrainConfig(unrolled_steps=1, mixed_precision="fp16")


# --- unrolled discriminator (Metz et al. 2017, section 2) ---------------------------------------------

def _unrolled_setup():
    torch.manual_seed(0)
    g, d = FAMILIES["progan"].generator_cls(TINY), Discriminator(TINY)
    opt_d = torch.optim.Adam(d.parameters(), lr=0.01, betas=(0.0, 0.99), eps=1e-8)
    ctx = _ctx(g, d, loss="logistic_r1")
    reals = [torch.rand(4, 3, 16, 16) * 2 - 1]
    discriminator_step(ctx, reals)  # one real step first: Adam has state to (not) disturb
    opt_d.step()
    opt_d.zero_grad(set_to_none=True)
    return g, d, opt_d, ctx, reals


def test_unrolled_discriminator_leaves_d_and_adam_alone_and_changes_g_gradient():
    g, d, opt_d, ctx, reals = _unrolled_setup()
    d_before, opt_before = copy.deepcopy(d.state_dict()), copy.deepcopy(opt_d.state_dict())
    g_ctx = unrolled_context(ctx, opt_d, reals, steps=3, discriminator_step=discriminator_step)
    rng = torch.get_rng_state()
    generator_step(g_ctx, 4, 1)
    unrolled_grads = [p.grad.clone() for p in g.parameters() if p.grad is not None]
    assert_states_equal(d.state_dict(), d_before)
    assert_states_equal(opt_d.state_dict(), opt_before)  # moments and step counts bit-identical
    assert all(p.grad is None for p in d.parameters())
    assert g_ctx.discriminator is not d and not torch.equal(g_ctx.discriminator.from_rgb[2].weight,
                                                            d.from_rgb[2].weight)
    g.zero_grad(set_to_none=True)
    torch.set_rng_state(rng)  # the same latents for G against the real D
    generator_step(ctx, 4, 1)
    plain_grads = [p.grad.clone() for p in g.parameters() if p.grad is not None]
    assert len(plain_grads) == len(unrolled_grads)
    assert any(not torch.allclose(a, b) for a, b in zip(plain_grads, unrolled_grads))
    assert unrolled_context(ctx, opt_d, reals, steps=0, discriminator_step=discriminator_step) is ctx


def test_unrolled_copy_is_d_after_k_of_its_own_optimizer_steps():
    g, d, opt_d, ctx, reals = _unrolled_setup()
    rng = torch.get_rng_state()
    g_ctx = unrolled_context(ctx, opt_d, reals, steps=2, discriminator_step=discriminator_step)
    torch.set_rng_state(rng)
    for _ in range(2):  # the real D, with its real Adam state, the same latents
        discriminator_step(ctx, reals)
        opt_d.step()
        opt_d.zero_grad(set_to_none=True)
    assert_states_equal(g_ctx.discriminator.state_dict(), d.state_dict())


# --- resume with the options on -----------------------------------------------------------------------

ALL_TRICKS = {"feature_matching": 1.0, "historical_averaging": 0.1, "minibatch_discrimination": "4,3",
              "unrolled_steps": 2}


def _train(tmp_path, out: str, kimg: float, **options):
    from accelerate import Accelerator

    from data_prep import open_dataset
    from progan.training.trainer import Trainer

    data = tmp_path / "data"
    if not data.exists():
        make_image_folder(data)
    config = TrainConfig(family="progan", preset="tiny", data=str(data), out=str(tmp_path / out), kimg=kimg,
                         batch_size=4, fade_kimg=0.04, stable_kimg=0.04, checkpoint_kimg=0.1, sample_kimg=0.1,
                         workers=0, log_every=5, **options)
    trainer = Trainer(config, FAMILIES["progan"], lambda r: open_dataset(str(data), r),
                      accelerator=Accelerator(cpu=True))
    trainer.train()
    return trainer


def _check_resume(tmp_path, options) -> None:
    from progan.training.checkpoint import latest_checkpoint

    from train_utils import load_state

    _train(tmp_path, "straight", 0.2, **options)
    _train(tmp_path, "resumed", 0.1, **options)   # stops with a checkpoint at 0.1 kimg
    _train(tmp_path, "resumed", 0.2, **options)   # resumes from it, crossing into stage 2
    a = load_state(latest_checkpoint(tmp_path / "straight" / "checkpoints"))
    b = load_state(latest_checkpoint(tmp_path / "resumed" / "checkpoints"))
    assert a["images_seen"] == 200
    a.pop("train_config"), b.pop("train_config")  # --kimg and --out differ
    assert_states_equal(a, b)
    if options.get("historical_averaging"):
        assert a["historical_average"]["discriminator"]["count"] == 50
    if options.get("minibatch_discrimination"):  # the trainer built D with it
        assert a["discriminator"]["blocks.0.minibatch_discrimination.weight"].shape == (16 * 16, 4 * 3)
    log = (tmp_path / "resumed" / "log.jsonl").read_text()
    for option, term in (("feature_matching", "g_feature_matching"), ("historical_averaging", "d_historical")):
        assert (f'"{term}"' in log) == bool(options.get(option))


def test_resume_is_bit_exact_with_all_tricks_on(tmp_path):
    _check_resume(tmp_path, ALL_TRICKS)
    # D's architecture is part of the run: another --minibatch-discrimination is refused in one line
    with pytest.raises(ValueError, match="was trained with --minibatch-discrimination '4,3', not '5,3'"):
        _train(tmp_path, "resumed", 0.3, **{**ALL_TRICKS, "minibatch_discrimination": "5,3"})
    _train(tmp_path, "no-history", 0.1)
    with pytest.raises(ValueError, match="without --historical-averaging"):
        _train(tmp_path, "no-history", 0.2, historical_averaging=0.1)


@pytest.mark.slow
@pytest.mark.parametrize("option", sorted(ALL_TRICKS))
def test_resume_is_bit_exact_with_each_trick(tmp_path, option):
    _check_resume(tmp_path, {option: ALL_TRICKS[option]})


def test_unrolled_copy_takes_its_penalty_every_step_even_when_ds_is_lazy():
    """Under lazy regularization the real D's loss has no penalty (``ctx.penalty`` False); the copy's K
    steps are D's full loss all the same: equal to D after K steps of ``penalty=True`` with the same
    latents, and not to D after K steps without the penalty (R1 changes the result here)."""
    g, d, opt_d, ctx, reals = _unrolled_setup()
    lazy = dataclasses.replace(ctx, penalty=False)
    start_d, start_opt = copy.deepcopy(d.state_dict()), copy.deepcopy(opt_d.state_dict())
    rng = torch.get_rng_state()
    g_ctx = unrolled_context(lazy, opt_d, reals, steps=2, discriminator_step=discriminator_step)
    outcomes = {}
    for penalty in (True, False):
        d.load_state_dict(start_d), opt_d.load_state_dict(copy.deepcopy(start_opt))
        torch.set_rng_state(rng)
        for _ in range(2):
            discriminator_step(dataclasses.replace(ctx, penalty=penalty), reals)
            opt_d.step()
            opt_d.zero_grad(set_to_none=True)
        outcomes[penalty] = copy.deepcopy(d.state_dict())
    assert_states_equal(g_ctx.discriminator.state_dict(), outcomes[True])
    assert any(not torch.equal(a, outcomes[False][k]) for k, a in outcomes[True].items())


def test_the_tricks_summary_records_each_options_value():
    """The model card's summary holds the values given (non-defaults: mode ``add``), and nothing when off."""
    config = TrainConfig(feature_matching=0.5, feature_matching_mode="add", historical_averaging=0.25,
                         minibatch_discrimination="4,3", unrolled_steps=2)
    assert tricks_summary(config) == {"feature_matching": {"weight": 0.5, "mode": "add"},
                                      "historical_averaging": 0.25, "minibatch_discrimination": "4,3",
                                      "unrolled_steps": 2}
    assert tricks_summary(TrainConfig()) == {}


@pytest.mark.parametrize("kimg", [0.5, 4.0])
def test_instance_noise_anneals_over_kimg_thousand_images_not_kimg_images(kimg):
    """--instance-noise-kimg counts thousands of images: sigma * max(0, 1 - seen / (kimg * 1000))."""
    sigma, span = 0.3, kimg * 1000
    config = TrainConfig(family="progan", instance_noise=sigma, instance_noise_kimg=kimg)
    expected = {0: sigma, 7: sigma * (1 - 7 / span), int(span / 4): 0.75 * sigma,
                int(span / 2): 0.5 * sigma, int(span): 0.0, int(3 * span): 0.0}
    for seen, value in expected.items():
        assert instance_noise_std(config, seen) == pytest.approx(value, abs=1e-12), seen
    assert instance_noise_std(dataclasses.replace(config, instance_noise=0.0), 0) == 0.0

