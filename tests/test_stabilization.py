"""The stabilization toolbox (issue 21 item 3) against closed forms derived independently of the code.

- losses: WGAN, non-saturating logistic (with one-sided label smoothing), hinge and LSGAN on
  constructed scores (a critic that returns its input), term by term;
- penalties WGAN-GP, R1 and DRAGAN on a *non-linear* critic ``D(x) = sum(w * x^2)`` whose input
  gradient ``2 w x`` differs from point to point, so a penalty taken at the wrong points (reals instead
  of interpolates, fakes instead of reals) gives another value; inside the D loss and lazily (K times);
- spectral normalization: the effective weight of every D layer has largest singular value 1;
- the options: recipes keep their meaning, illegal combinations are one-line errors, every option is
  in the summary;
- ``--reset-opt-at-stage`` resets Adam exactly where StyleGAN's rule says, and a run with every new
  option on resumes bit for bit (in process, from a checkpoint taken right before a reset).
"""
from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from families import FAMILIES
from progan import losses
from progan.layers import EqualizedConv2d, EqualizedLinear
from progan.spectral_norm import apply_spectral_norm
from progan.training.options import FAMILY_LOSS, TrainConfig
from progan.training.step import StepContext, discriminator_step, instance_noise_std, regularization_step

from critics import SHAPE, ConstantG as _ConstantG, SquareCritic, check_points as _check_points
from critics import data as _data, gp_closed_form as _gp_closed_form, make_ctx as _ctx, r1_closed_form as _r1_closed_form
from train_utils import assert_states_equal, load_state, make_image_folder

REAL = [-2.0, -0.5, 0.3, 1.5, 3.0]  # constructed D scores
FAKE = [-3.0, -1.0, 0.0, 0.8, 2.0]


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x  # the "images" are the scores themselves, [N, 1]


def _scores(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).unsqueeze(1)


# --- losses against closed forms --------------------------------------------------------------------

EXPECTED = {  # adversarial loss -> (D's loss on reals, D's loss on fakes, G's loss)
    "wgan": (-_mean(REAL), _mean(FAKE), -_mean(FAKE)),
    "logistic": (_mean(_softplus(-r) for r in REAL), _mean(_softplus(f) for f in FAKE),
                 _mean(-math.log(1 / (1 + math.exp(-f))) for f in FAKE)),
    "hinge": (_mean(max(0.0, 1 - r) for r in REAL), _mean(max(0.0, 1 + f) for f in FAKE), -_mean(FAKE)),
    # LSGAN eq. 9, a = -1, b = 1, c = 0
    "lsgan": (_mean(0.5 * (r - 1) ** 2 for r in REAL), _mean(0.5 * (f + 1) ** 2 for f in FAKE),
              _mean(0.5 * f ** 2 for f in FAKE)),
}


@pytest.mark.parametrize("adversarial", sorted(EXPECTED))
def test_each_loss_matches_its_closed_form(adversarial):
    d_real, d_fake, g = EXPECTED[adversarial]
    name = f"{adversarial}+none" if adversarial != "wgan" else "wgan+none"
    real_loss, parts = losses.discriminator_real_loss(name, _identity, _scores(REAL), _scores(FAKE), drift_epsilon=0.1)
    drift = 0.1 * _mean(r * r for r in REAL) if adversarial == "wgan" else 0.0  # the drift stays with WGAN
    assert real_loss.item() == pytest.approx(d_real + drift, rel=1e-6)
    assert ("d_drift" in parts) is (adversarial == "wgan")
    assert losses.discriminator_fake_loss(name, _scores(FAKE)).item() == pytest.approx(d_fake, rel=1e-6)
    assert losses.generator_loss(name, _scores(FAKE)).item() == pytest.approx(g, rel=1e-6)
    assert parts["real_sign"].item() == pytest.approx(_mean(math.copysign(1, r) for r in REAL))


def test_recipes_are_their_pairs():
    for recipe, pair in (("wgan_gp", ("wgan", "wgan_gp")), ("logistic_r1", ("logistic", "r1"))):
        assert losses.split_loss(recipe) == pair and losses.loss_name(*pair) == recipe
    assert losses.split_loss("hinge+dragan") == ("hinge", "dragan")
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        losses.split_loss("hinge")  # a bare name is an option value, never a step's loss


@pytest.mark.parametrize("alpha", [0.1, 0.3])
def test_one_sided_label_smoothing(alpha):
    real_loss, _ = losses.discriminator_real_loss("logistic+none", _identity, _scores(REAL), _scores(FAKE),
                                                  label_smoothing=alpha)
    # cross-entropy against the target 1 - alpha: -(1 - a) log s(D) - a log(1 - s(D))
    expected = _mean((1 - alpha) * _softplus(-r) + alpha * _softplus(r) for r in REAL)
    assert real_loss.item() == pytest.approx(expected, rel=1e-6)
    # its minimum over a real's score is where sigmoid(D) = 1 - alpha (Salimans et al. 2016, 3.4) ...
    score = torch.tensor([[math.log((1 - alpha) / alpha)]], requires_grad=True)
    loss, _ = losses.discriminator_real_loss("logistic+none", lambda x: score, score, score, label_smoothing=alpha)
    (grad,) = torch.autograd.grad(loss, score)
    assert abs(grad.item()) < 1e-6
    # ... and fakes keep the target 0 (one-sided)
    assert losses.discriminator_fake_loss("logistic+none", _scores(FAKE)).item() == pytest.approx(
        EXPECTED["logistic"][1], rel=1e-6)


# --- penalties on a non-linear critic ---------------------------------------------------------------

def test_the_critic_tells_reals_from_fakes():
    d, (reals, fakes) = SquareCritic(SHAPE), _data()
    w = d.w.detach()
    assert abs(_r1_closed_form(w, reals)[0] - _r1_closed_form(w, fakes)[0]) > 1.0
    assert abs(_gp_closed_form(w, reals)[0] - _gp_closed_form(w, fakes)[0]) > 1.0


@pytest.mark.parametrize("adversarial,kind", [("logistic", "r1"), ("hinge", "wgan_gp"), ("logistic", "dragan"),
                                              ("lsgan", "dragan"), ("wgan", "r1")])
def test_penalty_inside_the_d_loss(adversarial, kind):
    """The D loss with a penalty = the loss without it + weight * the closed form at the right points."""
    torch.manual_seed(0)
    d, (reals, fakes) = SquareCritic(SHAPE), _data()
    name = losses.loss_name(adversarial, kind)
    kwargs = dict(gp_lambda=3.0, r1_gamma=5.0, dragan_c=0.5)
    loss, parts = losses.discriminator_real_loss(name, d, reals, fakes, **kwargs)
    points = d.seen[-1]  # the batch the penalty differentiated D at: its own call comes last
    _check_points(kind, points, reals, fakes, 0.5)
    w = d.w.detach()
    value, _ = _r1_closed_form(w, points) if kind == "r1" else _gp_closed_form(w, points)
    weight = 5.0 / 2 if kind == "r1" else 3.0
    plain, _ = losses.discriminator_real_loss(f"{adversarial}+none" if adversarial != "wgan" else "wgan+wgan_gp",
                                              d, reals, fakes, **kwargs, penalty=False)
    assert parts[{"r1": "d_r1", "wgan_gp": "d_gp", "dragan": "d_dragan"}[kind]].item() == pytest.approx(value, rel=1e-5)
    assert (loss - plain).item() == pytest.approx(weight * value, rel=1e-5)


@pytest.mark.parametrize("every", [1, 4])
@pytest.mark.parametrize("name", ["hinge+r1", "logistic+dragan", "lsgan+wgan_gp"])
def test_lazy_penalty_is_k_times_the_closed_form_on_a_nonlinear_critic(name, every):
    torch.manual_seed(0)
    d, g, (reals, _) = SquareCritic(SHAPE), _ConstantG(SHAPE), _data()
    kind = losses.split_loss(name)[1]
    terms = regularization_step(_ctx(g, d, name, gp_lambda=3.0, r1_gamma=5.0, dragan_c=0.5), [reals], every)
    points, w = d.seen[-1], d.w.detach()
    fakes = torch.full_like(reals, 2.0)  # what the constant G made
    _check_points(kind, points, reals, fakes, 0.5)
    value, dw = _r1_closed_form(w, points) if kind == "r1" else _gp_closed_form(w, points)
    weight = 5.0 / 2 if kind == "r1" else 3.0
    assert terms[{"r1": "d_r1", "wgan_gp": "d_gp", "dragan": "d_dragan"}[kind]].item() == pytest.approx(value, rel=1e-5)
    torch.testing.assert_close(d.w.grad, every * weight * dw, rtol=1e-4, atol=1e-5)


def test_no_penalty_means_no_penalty_term_and_no_gradient_from_one():
    torch.manual_seed(0)
    d, g, (reals, _) = SquareCritic(SHAPE), _ConstantG(SHAPE), _data()
    terms = discriminator_step(_ctx(g, d, "hinge+none"), [reals])
    assert {"d_hinge", "real_score", "fake_score"} <= set(terms)
    assert not {"d_gp", "d_r1", "d_dragan", "d_drift"} & set(terms)
    assert len(d.seen) == 2  # fakes and reals: no third call for a penalty
    with pytest.raises(ValueError, match="no penalty"):
        losses.discriminator_penalty("hinge+none", d, reals, reals)


def test_instance_noise_is_added_to_every_image_d_sees_and_anneals_to_zero():
    config = TrainConfig(family="stylegan_lite", instance_noise=0.2, instance_noise_kimg=10.0)
    assert [instance_noise_std(config, n) for n in (0, 2500, 10_000, 20_000)] == pytest.approx([0.2, 0.15, 0.0, 0.0])
    torch.manual_seed(0)
    d, g = SquareCritic(SHAPE), _ConstantG(SHAPE)
    reals = torch.zeros(400, *SHAPE)
    discriminator_step(_ctx(g, d, "logistic+none", instance_noise=0.15), [reals])
    fakes_seen, reals_seen = d.seen
    assert fakes_seen.mean().item() == pytest.approx(2.0, abs=0.01)
    for seen, clean in ((fakes_seen, 2.0), (reals_seen, 0.0)):
        assert (seen - clean).std().item() == pytest.approx(0.15, rel=0.02)  # 19,200 draws: ~0.5 % sampling error


# --- spectral normalization -------------------------------------------------------------------------

def _equalized(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (EqualizedConv2d, EqualizedLinear))]


def test_spectral_norm_gives_every_effective_weight_unit_largest_singular_value():
    torch.manual_seed(0)
    family = FAMILIES["progan"]
    config = family.presets["tiny"]
    d = apply_spectral_norm(family.discriminator_cls(config).train())
    layers = _equalized(d)
    assert len(layers) > 5 and all(layer.spectral_norm is not None for layer in layers)
    with torch.no_grad():
        for _ in range(100):  # one power iteration per forward pass; the top singular values of a random
            d(torch.randn(2, 3, 16, 16), stage=config.num_stages - 1)  # 16 x 256 matrix lie close together
    for layer in layers:
        weight = layer.effective_weight().detach().flatten(1)
        assert torch.linalg.matrix_norm(weight, ord=2).item() == pytest.approx(1.0, abs=2e-3), layer
        raw = (layer.weight * layer.weight_scale).detach().flatten(1)
        assert torch.linalg.svdvals(raw)[0].item() != pytest.approx(1.0, abs=0.05)  # it was not 1 before
    keys = d.state_dict().keys()
    assert "from_rgb.0.spectral_norm.u" in keys and "from_rgb.0.spectral_norm.v" in keys
    # eval mode leaves the vectors alone; the gradient penalty's double backward goes through it
    before = {k: v.clone() for k, v in d.state_dict().items() if k.endswith((".u", ".v"))}
    d.eval()(torch.randn(2, 3, 16, 16), stage=2)
    assert all(torch.equal(before[k], d.state_dict()[k]) for k in before)
    d.train()
    gp = losses.gradient_penalty(lambda x: d(x, stage=2), torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16))
    gp.backward()
    assert torch.isfinite(gp) and d.from_rgb[2].weight.grad.abs().sum() > 0


# --- options ----------------------------------------------------------------------------------------

def test_family_loss_table_matches_the_families():
    assert FAMILY_LOSS == {name: family.default_loss for name, family in FAMILIES.items()}


def test_spectral_norm_runs_its_power_iterations_per_forward():
    """``apply_spectral_norm(d, power_iterations=n)``: each training-mode forward runs n iterations
    (algorithm 1 repeated), so one forward at n = 3 leaves every ``u``, ``v`` where three forwards at
    n = 1 do, and not where one forward at n = 1 does (the vectors have not converged yet)."""
    family = FAMILIES["progan"]
    config = family.presets["tiny"]
    x = torch.randn(2, 3, 16, 16)

    def vectors(power_iterations: int, forwards: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        d = apply_spectral_norm(family.discriminator_cls(config).train(), power_iterations=power_iterations)
        with torch.no_grad():
            for _ in range(forwards):
                d(x, stage=config.num_stages - 1)
        return {k: v for k, v in d.state_dict().items() if k.endswith(("spectral_norm.u", "spectral_norm.v"))}

    three, three_ones, one = vectors(3, 1), vectors(1, 3), vectors(1, 1)
    assert three.keys() == one.keys() and len(three) > 10
    for key in three:
        torch.testing.assert_close(three[key], three_ones[key], rtol=0, atol=1e-6)
    assert any(not torch.allclose(three[k], one[k], rtol=0, atol=1e-4) for k in three)


def test_old_configs_keep_their_meaning():
    root = Path(__file__).resolve().parents[1] / "campaign"
    for path in sorted(root.glob("*/train_config.json")):
        config = TrainConfig(**json.loads(path.read_text()))
        assert config.objective == (config.loss or FAMILY_LOSS[config.family]), path
    assert TrainConfig(loss="wgan_gp").objective == "wgan_gp"
    assert TrainConfig(loss="logistic_r1", penalty="r1").objective == "logistic_r1"
    assert TrainConfig(family="stylegan_lite", penalty="dragan").objective == "logistic+dragan"
    assert TrainConfig(loss="hinge").objective == "hinge+none"


@pytest.mark.parametrize("options,message", [
    (dict(loss="wgan_gp", penalty="r1"), r"--loss wgan_gp is wgan \+ the wgan_gp penalty"),
    (dict(loss="wgan", penalty="none"), "needs a Lipschitz constraint"),
    (dict(loss="hinge", label_smoothing=0.1), "--label-smoothing sets the logistic loss"),
    (dict(loss="logistic", label_smoothing=1.0), "--label-smoothing must be in"),
    (dict(r1_every=16), "--r1-every 16 applies to the r1 penalty"),             # ProGAN: WGAN-GP
    (dict(family="stylegan_lite", gp_every=4), "--gp-every 4 applies to"),
    (dict(loss="hinge", penalty="none", gp_every=4), "--gp-every 4 applies to"),
    (dict(instance_noise=-0.1), "--instance-noise must be >= 0"),
    (dict(penalty="dragan", dragan_c=0.0), "--dragan-c must be > 0"),
    (dict(reset_opt_at_stage=True, progressive=False), "--reset-opt-at-stage"),
    (dict(penalty="l2"), "--penalty must be one of"),
])
def test_illegal_combinations_are_one_line_errors(options, message):
    with pytest.raises(ValueError, match=message) as info:
        TrainConfig(**options)
    assert "\n" not in str(info.value)


def test_every_option_reaches_the_step_and_the_summary():
    config = TrainConfig(loss="logistic", penalty="dragan", gp_lambda=4.0, gp_every=8, dragan_c=0.3,
                         label_smoothing=0.2, instance_noise=0.1, instance_noise_kimg=5.0, spectral_norm=True, g_lr=1e-4, d_lr=4e-4,
                         reset_opt_at_stage=True)
    ctx = StepContext.from_config(config, family="progan", loss=config.objective, reg_every=8, images_seen=2500,
                                  generator=None, discriminator=None, stage=0, alpha=1.0, latent_dim=4,
                                  device=torch.device("cpu"), autocast=contextlib.nullcontext, backward=None)
    assert (ctx.loss, ctx.gp_lambda, ctx.dragan_c, ctx.label_smoothing, ctx.penalty) == (
        "logistic+dragan", 4.0, 0.3, 0.2, False)
    assert ctx.instance_noise == pytest.approx(0.05)
    assert config.stabilization() == {
        "loss": "logistic", "penalty": "dragan", "gp_lambda": 4.0, "penalty_every": 8, "dragan_c": 0.3,
        "spectral_norm": True, "label_smoothing": 0.2, "instance_noise": 0.1, "instance_noise_kimg": 5.0,
        "g_lr": 1e-4, "d_lr": 4e-4, "reset_opt_at_stage": True}


# --- the trainer: Adam reset and exact resume -------------------------------------------------------

def _trainer(tmp_path: Path, out: str, *, kimg: float, family: str = "progan", **options):
    from accelerate import Accelerator

    from data_prep import open_dataset
    from progan.training.trainer import Trainer

    data = make_image_folder(tmp_path / "data")
    config = TrainConfig(family=family, preset="tiny", data=str(data), out=str(tmp_path / out), kimg=kimg,
                         batch_size=4, fade_kimg=0.04, stable_kimg=0.04, checkpoint_kimg=0.124,
                         sample_kimg=0.124, workers=0, log_every=5, **options)
    return Trainer(config, FAMILIES[family], lambda r: open_dataset(str(data), r), accelerator=Accelerator(cpu=True))


def _adam_steps(trainer) -> set[int]:
    """Adam's step count of the parameters of D's and G's 4x4 blocks, which train at every stage."""
    d_params = list(trainer.discriminator.blocks[0].parameters())
    g_params = list(trainer.generator.blocks[0].parameters())
    return ({int(trainer.opt_d.state[p]["step"]) for p in d_params}
            | {int(trainer.opt_g.state[p]["step"]) for p in g_params})


def _stylegan_reset_steps(schedule, num_stages: int, starts: range) -> list[int]:
    """StyleGAN's rule (training_loop.py, reset_opt_for_new_lod), on our schedule: a reset before each
    step where floor or ceil of lod = (num_stages - 1 - stage) + (1 - alpha) differs from the last step's."""
    resets, previous = [], None
    for n in starts:
        phase = schedule.phase(n)
        lod = (num_stages - 1 - phase.stage) + (1 - phase.alpha)
        if previous is not None and (math.floor(lod), math.ceil(lod)) != (math.floor(previous), math.ceil(previous)):
            resets.append(n)
        previous = lod
    return resets


def test_adam_is_reset_when_a_fade_in_starts_and_ends(tmp_path):
    trainer = _trainer(tmp_path, "reset", kimg=0.2, reset_opt_at_stage=True)
    resets = _stylegan_reset_steps(trainer.schedule, 3, range(0, 200, 4))
    # tiny: 4, 8, 16 px, fade-ins over images 40..80 and 120..160: two resets each (start, end); the
    # float kimg arithmetic puts alpha = 1 one step after image 80 resp. 160
    assert len(resets) == 4 and resets[2] == 124 and resets[3] in (160, 164), resets
    trainer.train()
    assert _adam_steps(trainer) == {(200 - resets[-1]) // 4}  # Adam counts the steps since the last reset
    plain = _trainer(tmp_path, "plain", kimg=0.2)
    plain.train()
    assert _adam_steps(plain) == {50}


RESUME_OPTIONS = {  # name -> (kimg of the stop, options)
    # stopped at image 100, where no reset is due: a resumed run must not reset there either
    "hinge-sn-noise-reset": (0.1, dict(loss="hinge", spectral_norm=True, instance_noise=0.1, instance_noise_kimg=0.3,
                                       reset_opt_at_stage=True)),
    # stopped at image 124, the start of a step where StyleGAN's rule resets (see above)
    "dragan-lazy-smoothing-ttur": (0.124, dict(family="stylegan_lite", loss="logistic", penalty="dragan", gp_every=3,
                                               label_smoothing=0.1, g_lr=0.0005, d_lr=0.002, reset_opt_at_stage=True)),
    "lsgan-gp-sn": (0.124, dict(loss="lsgan", penalty="wgan_gp", spectral_norm=True)),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RESUME_OPTIONS))
def test_resume_with_the_new_options_is_bit_exact(tmp_path, name):
    """Straight to 0.2 kimg vs stopped and resumed; with --reset-opt-at-stage the checkpoint carries
    the previous step's lod, so the resumed run resets exactly where the straight one does."""
    stop, options = RESUME_OPTIONS[name]
    straight = _trainer(tmp_path, "straight", kimg=0.2, **options)
    straight.train()
    _trainer(tmp_path, "resumed", kimg=stop, **options).train()
    resumed = _trainer(tmp_path, "resumed", kimg=0.2, **options)
    resumed.train()
    assert resumed.images_seen == straight.images_seen == 200
    a = load_state(sorted((tmp_path / "straight" / "checkpoints").iterdir())[-1])
    b = load_state(sorted((tmp_path / "resumed" / "checkpoints").iterdir())[-1])
    assert a.pop("train_config") != b.pop("train_config")  # --out differs
    if options.get("spectral_norm"):
        assert any(k.endswith("spectral_norm.u") for k in a["discriminator"])
    assert_states_equal(a, b)
    meta = json.loads((tmp_path / "resumed" / "export" / "config.json").read_text())
    assert meta["summary"]["stabilization"] == TrainConfig(**{**options, "family": options.get("family", "progan"),
                                                              "preset": "tiny"}).stabilization()


def test_the_trainer_anneals_instance_noise_by_the_images_seen(tmp_path, monkeypatch):
    """--instance-noise 0.2 over 0.02 kimg, 4 images a step: the step that starts at n images seen adds
    noise of std 0.2 * (1 - n / 20), 0 from image 20 on (what each step's context holds, as trained)."""
    import progan.training.iteration as iteration_module

    sigmas, real = [], iteration_module.train_iteration
    monkeypatch.setattr(iteration_module, "train_iteration",
                        lambda ctx, *args, **kwargs: sigmas.append(ctx.instance_noise) or real(ctx, *args, **kwargs))
    _trainer(tmp_path, "noise", kimg=0.032, instance_noise=0.2, instance_noise_kimg=0.02).train()
    assert sigmas == pytest.approx([0.2 * max(0.0, 1 - n / 20) for n in range(0, 32, 4)])
