"""Options the trainer itself applies, each given a value other than its default and checked by its effect
against a value built by hand: the EMA half-life and ramp-up (one real step), ADA's target, interval and
speed (the trainer's own adjustment), the sample grid's count, seed and pixels, the evaluator it builds for
--eval-kimg (seed, count, network, cache), the run clock, --batch-sizes and --channels-last; the loss the
dry run reports for each family's default, each --loss/--penalty pair and each 64 px preset's recipe."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from families import FAMILIES
from progan.training.augment import AdaptiveController
from progan.training.progress import RunClock
from progan.training.samples import save_sample_grid
from train_utils import make_image_folder


def _trainer(tmp_path, family: str = "progan", **options):
    from accelerate import Accelerator

    from data_prep import open_dataset
    from progan.training.options import TrainConfig
    from progan.training.trainer import Trainer

    data = make_image_folder(tmp_path / "data", count=8)
    config = TrainConfig(family=family, preset="tiny", data=str(data), out=str(tmp_path / "run"), batch_size=4,
                         workers=0, monitor_num=0, **options)
    return Trainer(config, FAMILIES[family], lambda r: open_dataset(str(data), r), accelerator=Accelerator(cpu=True))


# --- EMA ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("options,half_life_images", [
    (dict(ema_half_life_kimg=0.008, ema_rampup=0.0), 8.0),   # no ramp-up: the half-life as given, in images
    (dict(ema_rampup=0.5), 2.0),                              # ramp-up caps 10 kimg at 4 images seen * 0.5
    (dict(), 0.2),                                            # the defaults: 4 * 0.05
])
def test_the_trainers_ema_step_uses_its_half_life_and_rampup(tmp_path, options, half_life_images):
    """After the first step (4 images) G_ema = beta * G_before + (1 - beta) * G_after with
    beta = 0.5 ** (4 / half-life in images), the half-life min(--ema-half-life-kimg * 1000, 4 * --ema-rampup)."""
    trainer = _trainer(tmp_path, **options)
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
    trainer = _trainer(tmp_path, "stylegan_lite", augment="ada", ada_target=0.9, ada_interval=3, ada_kimg=0.1)
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
    trainer = _trainer(tmp_path, "stylegan_lite", augment="ada")
    trainer.ada.p = trainer.augment.p = 0.5
    p = 0.5
    for step, sign in enumerate((1.0, 0.5, 0.6, 0.5) * 2):  # each interval: r_t = 2.6 / 4 = 0.65
        trainer.step = step
        trainer._adapt(torch.tensor(sign), 4)
        if step % 4 == 3:
            p += 16 / 500_000
        assert trainer.ada.p == trainer.augment.p == pytest.approx(p, rel=0, abs=1e-12), step
    assert p > 0.5


# --- sample grids ------------------------------------------------------------------------------------

def _by_hand(generator, z: torch.Tensor, *, stage: int, alpha: float, full: int, columns: int) -> torch.Tensor:
    """Each latent alone through G (const noise), nearest-upsampled by repetition, NVIDIA's uint8
    conversion (x * 127.5 + 128, truncated), tiled row-major on a black canvas: [H, W, 3]."""
    tiles = []
    with torch.no_grad():
        for i in range(len(z)):
            kwargs = {"noise_mode": "const"} if hasattr(generator, "synthesis") else {}
            image = generator(z[i:i + 1], stage=stage, alpha=alpha, **kwargs)[0]
            factor = full // image.shape[-1]
            image = image.repeat_interleave(factor, dim=1).repeat_interleave(factor, dim=2)
            tiles.append((image * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(1, 2, 0))
    rows = math.ceil(len(z) / columns)
    canvas = torch.zeros(rows * full, columns * full, 3, dtype=torch.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        canvas[r * full:(r + 1) * full, c * full:(c + 1) * full] = tile
    return canvas


@pytest.mark.parametrize("family_name", ["progan", "stylegan_lite"])
def test_a_sample_grid_in_small_batches_at_an_early_stage_is_each_latent_by_hand(tmp_path, family_name):
    """5 latents in batches of 2 at the 8 px stage mid fade-in, shown at 16 px: every tile is its own
    latent's image (not another batch's), upsampled by pixel repetition, StyleGAN-lite's with its fixed
    noise maps (the same grid at every sample step); 3 columns, 2 rows."""
    family = FAMILIES[family_name]
    torch.manual_seed(0)
    generator = family.generator_cls(family.preset("tiny")).eval()
    with torch.no_grad():  # noise strengths start at 0; a trained generator's are not, so the grid's noise shows
        for name, p in generator.named_parameters():
            if name.endswith("noise.weight"):
                p.fill_(0.3)
    z = torch.randn(5, family.preset("tiny").latent_dim)
    path = tmp_path / "grid.png"
    assert save_sample_grid(generator, z, path, stage=1, alpha=0.25, full_resolution=16, batch_size=2)
    grid = torch.from_numpy(np.asarray(Image.open(path)).copy())
    assert grid.shape == (32, 48, 3)
    expected = _by_hand(generator, z, stage=1, alpha=0.25, full=16, columns=3)
    assert (grid.int() - expected.int()).abs().max() <= 1  # batched and one-by-one convolutions may round apart


def test_the_trainers_grid_has_sample_count_latents_of_its_seed(tmp_path):
    """--sample-count 5 --seed 3: the grid's latents are the first 5 normal draws of a generator seeded
    with 3, and the grid written before the first step shows exactly those 5 through G_ema."""
    trainer = _trainer(tmp_path, "stylegan_lite", sample_count=5, seed=3)
    latent_dim = trainer.model_config.latent_dim
    torch.testing.assert_close(trainer.sample_z, torch.randn(5, latent_dim, generator=torch.Generator().manual_seed(3)),
                               rtol=0, atol=0)
    trainer.out.mkdir(parents=True)
    phase = trainer.schedule.phase(0)
    trainer._samples(phase)
    (path,) = (trainer.out / "samples").glob("grid-*.png")
    grid = torch.from_numpy(np.asarray(Image.open(path)).copy())
    expected = _by_hand(trainer.generator_ema, trainer.sample_z, stage=phase.stage, alpha=phase.alpha, full=16,
                        columns=3)
    assert grid.shape == expected.shape == (32, 48, 3)
    assert (grid.int() - expected.int()).abs().max() <= 1


def test_the_trainers_own_evaluator_scores_latents_of_the_runs_seed(tmp_path, monkeypatch):
    """--eval-kimg with no evaluator handed in: the trainer builds one from the run's options. --seed 3
    --eval-num 6 --eval-network F: an evaluation at stage 1, alpha 0.5 feeds G_ema latents 0..5 *of seed 3*
    (``latents_for_indices``, not seed 0's) at that stage and alpha, loads the network from F and caches the
    real statistics under the cache root's fid-stats; --seed 0 draws seed 0's."""
    from metric_utils import StandInFeatures
    from progan.metrics.features import latents_for_indices
    from progan.training.schedule import Phase

    loaded = []
    monkeypatch.setattr("progan.metrics.inception.load_feature_network",
                        lambda path=None, **kwargs: loaded.append(path) or StandInFeatures())
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    network_file = str(tmp_path / "inception.pt")
    drawn = {}
    for seed in (3, 0):
        trainer = _trainer(tmp_path / f"seed{seed}", seed=seed, eval_kimg=0.1, eval_num=6, eval_network=network_file)
        seen = []
        trainer.generator_ema.register_forward_pre_hook(
            lambda module, args, kwargs: seen.append((args[0].detach().clone(), dict(kwargs))), with_kwargs=True)
        trainer.out.mkdir(parents=True)                  # what train() does first
        trainer._evaluate(Phase(1, 0.5, 4), 0.0)
        latent_dim = trainer.model_config.latent_dim
        drawn[seed] = torch.cat([z for z, _ in seen])
        torch.testing.assert_close(drawn[seed], latents_for_indices(range(6), latent_dim, seed=seed), rtol=0, atol=0)
        assert all(kwargs == {"stage": 1, "alpha": 0.5} for _, kwargs in seen), seen[0][1]
    assert not torch.allclose(drawn[3], drawn[0])
    assert loaded == [network_file, network_file]
    assert list((tmp_path / "cache" / "fid-stats").glob("real-*.safetensors"))


# --- the run clock ---------------------------------------------------------------------------------

class _FakeTime:
    def __init__(self) -> None:
        self.wall, self.cpu = 1000.0, 50.0

    def time(self) -> float:
        return self.wall

    def process_time(self) -> float:
        return self.cpu

    def advance(self, wall: float, cpu: float) -> None:
        self.wall += wall
        self.cpu += cpu


def test_a_clock_loaded_while_running_counts_on_from_the_loaded_sums(monkeypatch):
    """Loaded while running (a resume after ``start``), the clock counts from the loaded sums at the
    moment of loading, not from its own start: time before the load is not added on top of them."""
    import progan.training.progress as progress

    fake = _FakeTime()
    monkeypatch.setattr(progress, "time", fake)
    clock = RunClock()
    clock.start()
    fake.advance(30.0, 3.0)                                         # before the load: replaced by the loaded sums
    clock.load_state_dict({"wall_seconds": 500.0, "cpu_seconds": 70.0})
    assert clock.read() == (500.0, 70.0)
    fake.advance(10.0, 2.0)
    assert clock.read() == (510.0, 72.0)
    clock.stop()
    fake.advance(99.0, 9.0)                                         # stopped: nothing counts
    assert clock.read() == (510.0, 72.0) and clock.state_dict() == {"wall_seconds": 510.0, "cpu_seconds": 72.0}
    stopped = RunClock()                                            # loaded while stopped: stays stopped
    stopped.load_state_dict({"wall_seconds": 5.0, "cpu_seconds": 1.0})
    fake.advance(7.0, 7.0)
    assert stopped.read() == (5.0, 1.0)


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
    first = _trainer(tmp_path)
    fresh = {k: v.clone() for k, v in first.generator.state_dict().items()}
    with torch.no_grad():
        for p in first.generator.parameters():
            p.add_(1.0)
    first.images_seen, first.step = 400, 100
    first.save()
    resumed = _trainer(tmp_path)
    assert resumed.try_resume() is not None and (resumed.images_seen, resumed.step) == (400, 100)
    assert torch.equal(next(resumed.generator.parameters()), next(first.generator.parameters()))
    again = _trainer(tmp_path, resume=False)
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

    trainer = _trainer(tmp_path, grad_accum=accum, kimg=0.048, fade_kimg=0.016, stable_kimg=0.016, log_every=1,
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
    trainer = _trainer(tmp_path, "stylegan_lite", augment="ada", ada_interval=1, ada_kimg=0.1, grad_accum=2,
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
    listed = _trainer(tmp_path / "a", batch_sizes="4:3,8:16")
    assert listed.model_config.resolutions == (4, 8, 16)
    assert [listed.schedule.batch_size(stage) for stage in range(3)] == [3, 16, 4]
    last = _trainer(tmp_path / "b", batch_sizes="16:8")
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
    trainer = _trainer(tmp_path, channels_last=channels_last)
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

    trainer = _trainer(tmp_path / "sn", loss="hinge", penalty="none", spectral_norm=True)
    assert len(layers(trainer.discriminator)) > 5
    assert all(layer.spectral_norm is not None for layer in layers(trainer.discriminator))
    assert all(getattr(layer, "spectral_norm", None) is None for layer in layers(trainer.generator))
    plain = _trainer(tmp_path / "plain", loss="hinge", penalty="none")
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

    trainer = _trainer(tmp_path)
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
