"""Options the trainer itself applies, each given a value other than its default and checked by its effect
against a value built by hand: the EMA half-life and ramp-up (one real step), ADA's target, interval and
speed (the trainer's own adjustment), --holdout, --no-resume, --grad-accum, --batch-sizes, --channels-last,
--spectral-norm and --compile's failures; the loss the dry run reports for each family's default, each
--loss/--penalty pair and each 64 px preset's recipe. The sample grids, the evaluator and the run clock are in
tests/test_trainer_samples.py."""
from __future__ import annotations

import pytest
import torch

from families import FAMILIES
from progan.training.augment import AdaptiveController
from train_utils import make_image_folder, tiny_trainer


# --- EMA ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("options,half_life_images", [
    (dict(ema_half_life_kimg=0.008, ema_rampup=0.0), 8.0),   # no ramp-up: the half-life as given, in images
    (dict(ema_rampup=0.5), 2.0),                              # ramp-up caps 10 kimg at 4 images seen * 0.5
    (dict(), 0.2),                                            # the defaults: 4 * 0.05
])
def test_the_trainers_ema_step_uses_its_half_life_and_rampup(tmp_path, options, half_life_images):
    """After the first step (4 images) G_ema = beta * G_before + (1 - beta) * G_after with
    beta = 0.5 ** (4 / half-life in images), the half-life min(--ema-half-life-kimg * 1000, 4 * --ema-rampup)."""
    trainer = tiny_trainer(tmp_path, **options)
    before = [p.detach().clone() for p in trainer.generator.parameters()]
    phase = trainer.schedule.phase(0)
    trainer._train_step(phase, *trainer._next_minibatch(phase))
    beta = 0.5 ** (4 / half_life_images)
    moved = 0
    for old, new, ema in zip(before, trainer.generator.parameters(), trainer.generator_ema.parameters()):
        torch.testing.assert_close(ema, beta * old + (1 - beta) * new.detach(), rtol=1e-5, atol=1e-6)
        moved += int(not torch.equal(old, new))
    assert moved > 0  # the step changed G, so beta is seen


# --- ADA --------------------------------------------------------------------------------------------

def test_the_controller_steers_towards_the_target_it_is_given():
    """r_t between the default target 0.6 and the given one: p moves towards the given one's side."""
    high = AdaptiveController(target=0.9, interval=1, speed_kimg=0.1, p=0.5)
    assert high.adjust(0.75 * 40, 40) == 0.75 and high.p == pytest.approx(0.5 - 40 / 100)  # 0.75 < 0.9: down
    low = AdaptiveController(target=0.3, interval=1, speed_kimg=0.1, p=0.5)
    low.adjust(0.45 * 40, 40)
    assert low.p == pytest.approx(0.5 + 40 / 100)                                          # 0.45 > 0.3: up


def test_the_trainer_adjusts_ada_with_its_target_interval_and_speed(tmp_path):
    """--ada-interval 3: p moves only after every third step, by the three steps' r_t against --ada-target
    0.9 (r_t 0.7 would raise p under the default 0.6), by 12 images / (--ada-kimg 0.1 * 1000)."""
    trainer = tiny_trainer(tmp_path, "stylegan_lite", augment="ada", ada_target=0.9, ada_interval=3, ada_kimg=0.1)
    trainer.ada.p = trainer.augment.p = 0.5
    for step, sign in enumerate((1.0, 0.5, 0.6)):  # this step's mean sign(D(real)) over its 4 reals
        trainer.step = step
        trainer._adapt(torch.tensor(sign), 4)
        if step < 2:
            assert trainer.ada.p == trainer.augment.p == 0.5
    r_t = (1.0 + 0.5 + 0.6) * 4 / 12
    assert r_t == pytest.approx(0.7) and trainer.augment.p == trainer.ada.p == pytest.approx(0.5 - 12 / 100)
    assert trainer._ada_signs.tolist() == [0.0, 0.0]  # the next interval starts afresh


def test_ada_defaults_adjust_p_every_4_minibatches_at_500_kimg_towards_0_6(tmp_path):
    """--augment ada with its defaults: ADA's p moves every 4 minibatches (Karras et al. 2020 section 3), by the
    interval's 16 reals / (500 kimg * 1000), up when r_t = 0.65 is above the target 0.6."""
    trainer = tiny_trainer(tmp_path, "stylegan_lite", augment="ada")
    trainer.ada.p = trainer.augment.p = 0.5
    p = 0.5
    for step, sign in enumerate((1.0, 0.5, 0.6, 0.5) * 2):  # each interval: r_t = 2.6 / 4 = 0.65
        trainer.step = step
        trainer._adapt(torch.tensor(sign), 4)
        if step % 4 == 3:
            p += 16 / 500_000
        assert trainer.ada.p == trainer.augment.p == pytest.approx(p, rel=0, abs=1e-12), step
    assert p > 0.5


# --- --holdout ---------------------------------------------------------------------------------------

def test_d_never_sees_a_held_out_image_or_its_mirror(tmp_path):
    """--holdout 3 with --xflip on 8 images: over two epochs D's reals are exactly the 5 training images
    and their mirrors, each found by its pixels among the dataset's 16 views; no held-out image, no mirror
    of one (r_v would otherwise measure images D trained on)."""
    from accelerate import Accelerator

    from data_prep import open_dataset
    from progan.training.options import TrainConfig
    from progan.training.trainer import Trainer

    data = make_image_folder(tmp_path / "data", count=8)
    config = TrainConfig(family="progan", preset="tiny", data=str(data), out=str(tmp_path / "run"), batch_size=4,
                         workers=0, monitor_num=0, holdout=3, seed=2, xflip=True, progressive=False)
    trainer = Trainer(config, FAMILIES["progan"], lambda r: open_dataset(str(data), r, xflip=True),
                      accelerator=Accelerator(cpu=True))
    views = open_dataset(str(data), 16, xflip=True)
    assert len(views) == 16
    pixels = torch.stack([torch.as_tensor(views[i]).float() for i in range(16)])  # uint8 [16, 3, 16, 16]
    phase = trainer.schedule.phase(0)
    seen = []
    for _ in range(5):                                           # 20 images: two epochs of 10
        (reals,), _ = trainer._next_minibatch(phase)
        for image in (reals + 1) * 127.5:
            distance = (pixels - image).abs().flatten(1).amax(1)
            assert distance.min() < 1e-3
            seen.append(int(distance.argmin()))
    heldout = trainer._split.heldout
    assert len(heldout) == 3 and len(set(heldout)) == 3
    allowed = {i for i in range(8) if i not in heldout} | {i + 8 for i in range(8) if i not in heldout}
    assert sorted(seen) == sorted([*allowed, *allowed])  # each training view once per epoch


# --- --no-resume ------------------------------------------------------------------------------------

def test_no_resume_starts_afresh_beside_a_checkpoint(tmp_path):
    """A checkpoint in --out whose weights and counters differ from a fresh start: the default resumes
    from it, --no-resume ignores it (counters 0, the seed's initial weights, bit for bit)."""
    first = tiny_trainer(tmp_path)
    fresh = {k: v.clone() for k, v in first.generator.state_dict().items()}
    with torch.no_grad():
        for p in first.generator.parameters():
            p.add_(1.0)
    first.images_seen, first.step = 400, 100
    first.save()
    resumed = tiny_trainer(tmp_path)
    assert resumed.try_resume() is not None and (resumed.images_seen, resumed.step) == (400, 100)
    assert torch.equal(next(resumed.generator.parameters()), next(first.generator.parameters()))
    again = tiny_trainer(tmp_path, resume=False)
    assert again.try_resume() is None and (again.images_seen, again.step) == (0, 0)
    for name, tensor in again.generator.state_dict().items():
        assert torch.equal(tensor, fresh[name]), name


# --- gradient accumulation ----------------------------------------------------------------------------

@pytest.mark.parametrize("accum", [1, 2, 4])
def test_grad_accum_counts_every_micro_batch_in_images_seen(tmp_path, accum):
    """--grad-accum K with --batch-size 4: each step sees 4K images, so --kimg 0.048 is 12/K steps; the
    schedule is counted in images too (fade 0.016 + stable 0.016 kimg per resolution: 4 px for the first
    16 images, 8 px fading in and then stable up to 48, 16 px from there)."""
    import json

    trainer = tiny_trainer(tmp_path, grad_accum=accum, kimg=0.048, fade_kimg=0.016, stable_kimg=0.016, log_every=1,
                       checkpoint_kimg=1.0, sample_kimg=1.0)
    trainer.train()
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    steps = [r for r in records if "g_loss" in r]
    assert [r["step"] for r in steps] == list(range(1, 12 // accum + 1))
    assert [round(r["kimg"] * 1000) for r in steps] == [4 * accum * s for s in range(1, 12 // accum + 1)]
    for r in steps:  # the resolution of the step that ended at r["kimg"] began at r["kimg"] minus one step
        start = round(r["kimg"] * 1000) - 4 * accum
        assert r["resolution"] == (4 if start < 16 else 8 if start < 48 else 16)
    # the data stream's position (checkpointed as "consumed"; a resume restarts the stream there) counts
    # every micro-batch too: one process read 48 images, so a resumed run neither repeats nor skips any
    assert trainer.consumed == 48
    assert trainer.summary(0.0)["steps"] == 12 // accum  # the model card's "N steps of B images"


def test_ada_counts_every_micro_batch_of_reals(tmp_path):
    """--grad-accum 2 with --batch-size 4 and --ada-interval 1: each step adjusts p by 8 reals /
    (--ada-kimg 0.1 * 1000), up or down as sign(D(real)) says, from p = 0.5."""
    trainer = tiny_trainer(tmp_path, "stylegan_lite", augment="ada", ada_interval=1, ada_kimg=0.1, grad_accum=2,
                       progressive=False)
    trainer.ada.p = trainer.augment.p = 0.5
    phase = trainer.schedule.phase(0)
    trainer._train_step(phase, *trainer._next_minibatch(phase))
    assert abs(trainer.ada.p - 0.5) == pytest.approx(8 / 100) and trainer.augment.p == trainer.ada.p



# --- per-resolution batch sizes -----------------------------------------------------------------------

def test_batch_sizes_entries_are_resolution_then_batch_and_the_trainer_steps_with_them(tmp_path):
    """--batch-sizes RES:BATCH with --batch-size 4 on the 4-8-16 px tiny model: '4:3,8:16' gives stages of 3,
    16 and 4 (the unlisted 16 px takes --batch-size), '16:8' gives 4, 4, 8 (both fields powers of two: read the
    other way round it would put 16 at 8 px); the first step, at 4 px, reads 3 images and counts 3 seen."""
    listed = tiny_trainer(tmp_path / "a", batch_sizes="4:3,8:16")
    assert listed.model_config.resolutions == (4, 8, 16)
    assert [listed.schedule.batch_size(stage) for stage in range(3)] == [3, 16, 4]
    last = tiny_trainer(tmp_path / "b", batch_sizes="16:8")
    assert [last.schedule.batch_size(stage) for stage in range(3)] == [4, 4, 8]
    phase = listed.schedule.phase(0)
    assert (phase.resolution, phase.batch_size) == (4, 3)
    reals, _ = listed._next_minibatch(phase)
    assert [tuple(r.shape) for r in reals] == [(3, 3, 4, 4)]
    listed._train_step(phase, reals, None)
    assert listed.images_seen == 3


# --- the loss the dry run reports -----------------------------------------------------------------------

@pytest.mark.parametrize("family, flags, objective", [
    ("progan", [], "wgan_gp"),                                         # each family's recipe for an empty --loss
    ("stylegan_lite", [], "logistic_r1"),
    ("progan", ["--penalty", "r1"], "wgan+r1"),                        # the recipe's loss with another penalty
    ("stylegan_lite", ["--penalty", "none"], "logistic+none"),
    ("progan", ["--loss", "logistic_r1"], "logistic_r1"),              # a recipe named on either family
    ("stylegan_lite", ["--loss", "wgan_gp"], "wgan_gp"),
    ("progan", ["--loss", "wgan", "--penalty", "wgan_gp"], "wgan_gp"),  # a recipe's pair keeps the recipe's name
    ("progan", ["--loss", "logistic", "--penalty", "r1"], "logistic_r1"),
    ("progan", ["--loss", "hinge"], "hinge+none"),                     # no --penalty beside a plain loss: none
    ("progan", ["--loss", "hinge", "--penalty", "r1"], "hinge+r1"),
    ("stylegan_lite", ["--loss", "lsgan", "--penalty", "dragan"], "lsgan+dragan"),
    ("progan", ["--loss", "wgan", "--penalty", "dragan"], "wgan+dragan"),
    ("progan", ["--loss", "wgan", "--spectral-norm"], "wgan+none"),
    ("stylegan_lite", ["--loss", "logistic", "--penalty", "wgan_gp"], "logistic+wgan_gp"),
])
def test_the_dry_run_prints_the_loss_and_penalty_the_run_trains_with(capsys, family, flags, objective):
    """``train.py --dry-run`` reports the objective the step uses (ADVERSARIAL+PENALTY, or the recipe's name
    for wgan+wgan_gp and logistic+r1), resolved from --loss, --penalty and the family; the raw --loss flag
    (empty for the family's default) stays under "train"."""
    import json

    import train

    assert train.main(["--family", family, "--preset", "tiny", *flags, "--dry-run", "--no-estimate-memory"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    loss_flag = flags[flags.index("--loss") + 1] if "--loss" in flags else ""
    assert resolved["loss"] == objective and resolved["train"]["loss"] == loss_flag


@pytest.mark.parametrize("family", ["progan", "stylegan_lite"])
@pytest.mark.parametrize("preset", ["demo-64", "wide-64"])
def test_the_64_px_recipes_train_both_families_with_wgan_gp(capsys, family, preset):
    """docs/recipes.md: both demo-64 recipes and the second campaign's wide-64 keep WGAN-GP (StyleGAN-lite's
    own default, logistic_r1, collapsed there), so the dry run resolves wgan_gp with no --loss given."""
    import json

    import train

    assert train.main(["--family", family, "--preset", preset, "--dry-run", "--no-estimate-memory"]) == 0
    assert json.loads(capsys.readouterr().out)["loss"] == "wgan_gp"


# --- channels_last ------------------------------------------------------------------------------------

@pytest.mark.parametrize("channels_last", [True, False])
def test_channels_last_lays_out_both_models_weights_and_the_reals(tmp_path, channels_last):
    """--channels-last: every conv weight of G and D with a spatial kernel and more than one input channel,
    and each minibatch of reals, is stored NHWC (channels_last-contiguous, which a default NCHW tensor of
    that shape is not); without it they are all NCHW."""
    trainer = tiny_trainer(tmp_path, channels_last=channels_last)
    for name, model in (("G", trainer.generator), ("D", trainer.discriminator)):
        weights = [p for p in model.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[2] > 1]
        assert weights, name
        for p in weights:
            assert p.is_contiguous(memory_format=torch.channels_last) == channels_last, name
    phase = trainer.schedule.phase(0)
    (reals,), _ = trainer._next_minibatch(phase)
    assert reals.is_contiguous(memory_format=torch.channels_last) == channels_last


# --- spectral norm and --compile failures, through the Trainer -------------------------------------------

def test_spectral_norm_option_normalizes_every_layer_of_the_trainers_discriminator_only(tmp_path):
    """``--spectral-norm`` reaches the discriminator the Trainer trains: every equalized conv/linear layer
    of D carries a spectral norm, none of G's does; without the option none of D's does."""
    from progan.layers import EqualizedConv2d, EqualizedLinear

    def layers(module):
        return [m for m in module.modules() if isinstance(m, (EqualizedConv2d, EqualizedLinear))]

    trainer = tiny_trainer(tmp_path / "sn", loss="hinge", penalty="none", spectral_norm=True)
    assert len(layers(trainer.discriminator)) > 5
    assert all(layer.spectral_norm is not None for layer in layers(trainer.discriminator))
    assert all(getattr(layer, "spectral_norm", None) is None for layer in layers(trainer.generator))
    plain = tiny_trainer(tmp_path / "plain", loss="hinge", penalty="none")
    assert all(layer.spectral_norm is None for layer in layers(plain.discriminator))


class _DynamoFailure(torch._dynamo.exc.TorchDynamoException):
    pass


@pytest.mark.parametrize("compiled, raised, expected", [
    (True, _DynamoFailure("backend failed\nlong trace"), "CompileError"),   # compiler machinery: translated
    (True, ValueError("a data problem"), "ValueError"),                     # anything else passes through
    (False, _DynamoFailure("backend failed"), "_DynamoFailure"),            # not compiled: never translated
])
def test_a_compiled_step_that_fails_in_the_compiler_is_one_line_that_names_the_way_out(
        tmp_path, monkeypatch, restore_signals, compiled, raised, expected):
    """A training step failing inside torch.compile's machinery becomes train.py's one-line CompileError
    (its first line, and "rerun without --compile"), chained to the original; other failures, and any
    failure of an eager run, come out unchanged."""
    from progan.training import iteration

    trainer = tiny_trainer(tmp_path)
    trainer.compiled = compiled

    def failing(*args, **kwargs):
        raise raised

    monkeypatch.setattr(iteration, "train_iteration", failing)
    with pytest.raises(Exception) as info:
        trainer.train()
    assert type(info.value).__name__ == expected
    if expected == "CompileError":
        assert str(info.value) == ("--compile: the compiled training step failed: _DynamoFailure: backend failed; "
                                   "rerun without --compile to train eagerly")
        assert info.value.__cause__ is raised
    else:
        assert info.value is raised
