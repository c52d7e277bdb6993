"""Training: exact resume after SIGKILL, clean SIGTERM stop, stop-gradients, NaN guard, schedule, EMA."""
import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from families import FAMILIES
from progan.training.checkpoint import latest_checkpoint, list_checkpoints
from progan.training.ema import ema_beta
from progan.hub.export import read_pretrained
from progan.training.schedule import GrowthSchedule
from progan.training.step import StepContext, discriminator_step, generator_step

from train_utils import ROOT, assert_states_equal, load_state, make_image_folder, run_train, train_args, train_env


# --- unit level -----------------------------------------------------------------------------------

def test_schedule_fades_then_stabilizes_each_resolution():
    s = GrowthSchedule(num_stages=3, fade_kimg=1, stable_kimg=2, batch_sizes=(16, 8))
    assert (s.phase(0).stage, s.phase(1999).stage) == (0, 0)
    assert s.phase(2000).stage == 1 and s.phase(2000).alpha == 0.0
    assert s.phase(2500).alpha == pytest.approx(0.5)
    assert s.phase(3000).alpha == 1.0 and s.phase(4999).stage == 1
    assert s.phase(5000).stage == 2 and s.phase(10**9).stage == 2 and s.phase(10**9).alpha == 1.0
    assert s.phase(0).batch_size == 16 and s.phase(5000).batch_size == 8
    fixed = GrowthSchedule(num_stages=3, progressive=False)
    assert fixed.phase(0).stage == 2 and fixed.phase(0).alpha == 1.0


def test_schedule_accepts_its_bounds_and_refuses_just_past_them():
    # fade_kimg 0 is a hard switch (alpha 1 at once), stable_kimg must be positive, every batch >= 1
    hard = GrowthSchedule(num_stages=2, fade_kimg=0, stable_kimg=1)
    assert hard.phase(999).stage == 0 and hard.phase(1000).stage == 1 and hard.phase(1000).alpha == 1.0
    assert GrowthSchedule(num_stages=2, batch_sizes=(1,)).phase(0).batch_size == 1
    assert GrowthSchedule(num_stages=2, stable_kimg=0.001).phase(1).stage == 1
    for bad in (dict(fade_kimg=-0.001), dict(stable_kimg=0), dict(stable_kimg=-1), dict(batch_sizes=()),
                dict(batch_sizes=(16, 0)), dict(batch_sizes=(0, 16))):
        with pytest.raises(ValueError):
            GrowthSchedule(num_stages=3, **bad)
    # stage n starts its fade-in after the first stable period and n-1 fade+stable periods
    s = GrowthSchedule(num_stages=4, fade_kimg=3, stable_kimg=5)
    assert [s.stage_start_kimg(k) for k in range(4)] == [0.0, 5.0, 13.0, 21.0]
    assert [s.phase(int(s.stage_start_kimg(k) * 1000)).stage for k in range(4)] == [0, 1, 2, 3]
    assert GrowthSchedule(num_stages=4, progressive=False).stage_start_kimg(3) == 0.0

def test_ema_half_life_and_rampup():
    assert ema_beta(100, half_life_images=100, images_seen=10**9) == pytest.approx(0.5)
    assert ema_beta(10, half_life_images=1000, images_seen=10**9) ** 100 == pytest.approx(0.5)
    # early on the half-life is capped by images_seen * rampup, so the average forgets the init fast
    assert ema_beta(10, half_life_images=1000, images_seen=200, rampup=0.05) == pytest.approx(0.5)
    # --ema-rampup 0 turns the cap off (like None): the full half-life from the first step, not a copy
    for off in (0, 0.0, None):
        assert ema_beta(32, half_life_images=10_000, images_seen=64, rampup=off) == pytest.approx(0.5 ** (32 / 10_000))


@pytest.mark.parametrize("loss", ["wgan_gp", "logistic_r1"])
def test_steps_only_touch_their_own_network(family, loss):
    torch.manual_seed(0)
    config = family.presets["tiny"]
    g, d = family.generator_cls(config), family.discriminator_cls(config)
    ctx = StepContext(generator=g, discriminator=d, loss=loss, stage=2, alpha=0.5, latent_dim=config.latent_dim,
                      device=torch.device("cpu"), autocast=torch.autocast("cpu", enabled=False).__class__ and
                      (lambda: torch.autocast("cpu", enabled=False)), backward=lambda l: l.backward(),
                      mixing_prob=0.9 if family.name == "stylegan_lite" else 0.0)
    reals = [torch.rand(4, 3, 16, 16) * 2 - 1]
    terms = discriminator_step(ctx, reals)
    assert all(p.grad is None for p in g.parameters())                 # D step: nothing reaches G
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in d.parameters())
    assert all(p.requires_grad for p in g.parameters())                # G unfrozen afterwards
    d.zero_grad(set_to_none=True)
    g_terms = generator_step(ctx, 4, 1)
    assert all(p.grad is None for p in d.parameters())                 # G step: nothing reaches D
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters())
    assert torch.isfinite(terms["d_loss"]) and torch.isfinite(g_terms["g_loss"])


def test_nan_loss_stops_without_poisoning_checkpoints(tmp_path, monkeypatch):
    from accelerate import Accelerator

    import progan.training.step as train_step
    from data_prep import open_dataset
    from progan.training.options import TrainConfig
    from progan.training.trainer import Trainer, TrainingDiverged

    data = make_image_folder(tmp_path / "data")
    config = TrainConfig(family="progan", preset="tiny", data=str(data), out=str(tmp_path / "run"), kimg=0.2,
                         batch_size=4, fade_kimg=0.04, stable_kimg=0.04, checkpoint_kimg=0.02, workers=0)
    calls = {"n": 0}
    real_loss = train_step.generator_loss

    def poisoned(name, scores):
        calls["n"] += 1
        loss = real_loss(name, scores)
        return loss * float("nan") if calls["n"] > 7 else loss

    monkeypatch.setattr(train_step, "generator_loss", poisoned)
    trainer = Trainer(config, FAMILIES["progan"], lambda r: open_dataset(str(data), r),
                      accelerator=Accelerator(cpu=True))
    with pytest.raises(TrainingDiverged, match="non-finite loss at 0.028 kimg"):
        trainer.train()
    kimgs = [p.name for p in list_checkpoints(tmp_path / "run" / "checkpoints")]
    assert kimgs == ["ckpt-000000.020"]  # the one before the NaN; nothing written at or after it
    assert not (tmp_path / "run" / "export").exists()


# --- end to end: real processes -------------------------------------------------------------------

def _wait_for(predicate, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended early:\n{proc.stderr.read()[-3000:]}")
        time.sleep(0.005)
    raise AssertionError("timed out")


SMALL_DATA = {  # augmentation and lazy regularization as the demo-64 recipe uses them, at test scale
    "progan": {"augment": "diffaugment", "gp-every": 3, "channels-last": True},
    "stylegan_lite": {"augment": "ada", "ada-kimg": 0.05, "ada-interval": 3, "r1-every": 4, "channels-last": True,
                      "log-every": 1},
}


@pytest.mark.slow
@pytest.mark.parametrize("family_name,small_data", [("progan", False), ("stylegan_lite", False),
                                                    ("progan", True), ("stylegan_lite", True)])
def test_resume_after_sigkill_is_bit_exact(tmp_path, family_name, small_data):
    data = make_image_folder(tmp_path / "data")
    extra = SMALL_DATA[family_name] if small_data else {}
    straight = run_train(train_args(family_name, data, tmp_path / "straight", **extra))
    assert straight.returncode == 0, straight.stderr[-3000:]

    args = train_args(family_name, data, tmp_path / "killed", **extra)
    ckpts = tmp_path / "killed" / "checkpoints"
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT, env=train_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: latest_checkpoint(ckpts) is not None, 120, proc)
    proc.kill()  # SIGKILL: no handler runs, no cleanup
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / "export").exists(), "the run finished before the kill"
    assert [p.name for p in list_checkpoints(ckpts)] == ["ckpt-000000.100"]

    resumed = run_train(args)  # the same command again
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout + resumed.stderr
    final_straight = load_state(latest_checkpoint(tmp_path / "straight" / "checkpoints"))
    final_resumed = load_state(latest_checkpoint(ckpts))
    assert final_straight["images_seen"] == 200 and final_straight["step"] == 50
    # the run crossed from stage 1 into stage 2 after the resume point; everything matches bit for bit
    log = (tmp_path / "killed" / "log.jsonl").read_text()
    assert '"stage": 2' in log
    assert final_straight.pop("train_config") != final_resumed.pop("train_config")  # only --out differs
    if extra.get("augment") == "ada":  # p moved, only after every 3rd step, by 3 * 4 images / 50 at a time
        records = [r for r in map(json.loads, (tmp_path / "straight" / "log.jsonl").read_text().splitlines())
                   if "augment_p" in r]
        assert [r["step"] for r in records] == list(range(1, 51))
        ps = [0.0] + [r["augment_p"] for r in records]
        for step, (before, after) in enumerate(zip(ps, ps[1:]), start=1):
            allowed = {before} if step % 3 else {before, min(before + 0.24, 1.0), max(before - 0.24, 0.0)}
            assert any(after == pytest.approx(a) for a in allowed), (step, before, after)
        assert max(ps) > 0
    assert_states_equal(final_straight, final_resumed)
    # the rank state too: RNG and ADA's running sign sums
    rank_a, rank_b = (latest_checkpoint(root) / "rng-rank0.pt" for root in (tmp_path / "straight" / "checkpoints", ckpts))
    assert_states_equal(torch.load(rank_a, weights_only=True), torch.load(rank_b, weights_only=True))
    meta_a, tensors_a = read_pretrained(tmp_path / "straight" / "export")
    meta_b, tensors_b = read_pretrained(tmp_path / "killed" / "export")
    assert meta_a["config"] == meta_b["config"] and meta_b["summary"]["images_seen"] == 200
    assert_states_equal(tensors_a, tensors_b)


@pytest.mark.slow
def test_sigterm_saves_and_resume_continues(tmp_path):
    data = make_image_folder(tmp_path / "data")
    args = train_args("stylegan_lite", data, tmp_path / "run", kimg=2.0, **{"checkpoint-kimg": 10})
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT, env=train_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: (tmp_path / "run" / "log.jsonl").exists(), 120, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    assert "stop requested" in out + err
    ckpt = latest_checkpoint(tmp_path / "run" / "checkpoints")
    state = load_state(ckpt)
    assert 0 < state["images_seen"] < 2000 and (ckpt / "rng-rank0.pt").exists()
    stopped_at = state["images_seen"]
    resumed = run_train(train_args("stylegan_lite", data, tmp_path / "run", kimg=stopped_at / 1000 + 0.02,
                                   **{"checkpoint-kimg": 10}))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from {ckpt}" in resumed.stdout + resumed.stderr
    assert load_state(latest_checkpoint(tmp_path / "run" / "checkpoints"))["images_seen"] == stopped_at + 20


def test_bad_options_are_one_line_errors(tmp_path):
    result = run_train(["--preset", "nope", "--out", str(tmp_path)])
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "unknown progan preset 'nope'" in result.stderr
    result = run_train(["--batch-size", "0"])
    assert result.returncode == 2 and "--batch-size must be > 0" in result.stderr


def test_every_option_with_fixed_values_offers_exactly_them():
    """A flag whose values form a fixed set is an argparse choice of exactly the set its validation
    accepts: ``--help`` lists it (``{no,fp16,bf16}``) and a typo is refused before any config is built."""
    import argparse

    from progan.losses import LOSSES, PENALTIES
    from progan.training.options import AUGMENT, BLUR_PADDINGS, MIXED_PRECISION, add_arguments
    from progan.training.tricks import FEATURE_MATCHING_MODES

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    choices = {a.dest: tuple(a.choices) for a in parser._actions if a.choices is not None}
    assert choices == {"loss": ("", *LOSSES), "mixed_precision": MIXED_PRECISION, "augment": AUGMENT,
                       "penalty": ("", *PENALTIES), "blur_padding": BLUR_PADDINGS,
                       "feature_matching_mode": FEATURE_MATCHING_MODES}
    assert "{no,fp16,bf16}" in parser.format_help()


def test_dry_run_prints_resolved_config():
    import json
    result = run_train(["--family", "stylegan_lite", "--preset", "tiny", "--dry-run", "--no-estimate-memory"])
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    assert resolved["loss"] == "logistic_r1" and resolved["model"]["resolution"] == 16
    assert resolved["train"]["mixing_prob"] == 0.9
    family = FAMILIES["stylegan_lite"]                     # each player's count: the numels of that network's own tensors
    for player, cls in (("generator", family.generator_cls), ("discriminator", family.discriminator_cls)):
        assert resolved["parameters"][player] == sum(p.numel() for p in cls(family.presets["tiny"]).parameters())


def test_preset_recipe_sets_defaults_and_flags_override_it():
    import json

    from progan.training.options import RECIPES

    result = run_train(["--family", "stylegan_lite", "--preset", "demo-64", "--dry-run", "--no-estimate-memory"])
    assert result.returncode == 0, result.stderr
    train = json.loads(result.stdout)["train"]
    for key, value in RECIPES[("stylegan_lite", "demo-64")].items():
        assert train[key] == value, key
    assert train["loss"] == "wgan_gp" and train["channels_last"]       # not the TrainConfig defaults
    result = run_train(["--family", "stylegan_lite", "--preset", "demo-64", "--loss", "logistic_r1", "--augment",
                        "ada", "--no-channels-last", "--dry-run", "--no-estimate-memory"])
    train = json.loads(result.stdout)["train"]
    assert (train["loss"], train["augment"], train["channels_last"]) == ("logistic_r1", "ada", False)
    assert train["batch_size"] == 32                                   # the rest of the recipe still applies
    tiny = json.loads(run_train(["--family", "stylegan_lite", "--preset", "tiny", "--dry-run",
                                 "--no-estimate-memory"]).stdout)["train"]
    assert (tiny["augment"], tiny["r1_every"], tiny["batch_size"]) == ("none", 1, 16)  # no recipe: defaults


@pytest.mark.parametrize("family", ["progan", "stylegan_lite"])
def test_wide_64_is_the_campaigns_width_and_recipe(family):
    """Issue 24 asks for at least 32 feature maps at 64 px and 64 at 32 px; the preset's recipe is
    WGAN-GP with x-flip (docs/recipes.md), and an explicit flag still wins over it."""
    config = FAMILIES[family].preset("wide-64")
    narrow = FAMILIES[family].preset("demo-64")
    assert config.resolution == 64 and config.channels(64) >= 32 and config.channels(32) >= 64
    assert all(config.channels(r) >= narrow.channels(r) for r in config.resolutions)  # wider everywhere
    resolved = json.loads(run_train(["--family", family, "--preset", "wide-64", "--dry-run",
                                     "--no-estimate-memory"]).stdout)
    train = resolved["train"]
    assert (resolved["loss"], train["xflip"], train["eval_kimg"], train["batch_size"]) == ("wgan_gp", True, 40.0, 32)
    train = json.loads(run_train(["--family", family, "--preset", "wide-64", "--no-xflip", "--dry-run",
                                  "--no-estimate-memory"]).stdout)["train"]
    assert train["xflip"] is False


def test_batch_sizes_accept_one_image_and_4_px_and_refuse_zero_and_2_px():
    """--batch-sizes bounds on both sides: a batch of 1 and the 4 px stage are valid entries; 0 images
    and a 2 px stage (below ProGAN's first, 4x4) are refused."""
    from progan.training.options import parse_batch_sizes

    assert parse_batch_sizes("4:1,8:1") == {4: 1, 8: 1}
    for bad in ("8:0", "2:1"):
        with pytest.raises(ValueError, match=f"bad entry '{bad}'"):
            parse_batch_sizes(bad)


def test_batch_sizes_option_sets_the_batch_of_each_resolution(tmp_path):
    """--batch-sizes '8:2' trains the 8x8 stage with batches of 2 and every other stage with --batch-size;
    malformed entries are one-line errors naming the entry."""
    from accelerate import Accelerator

    from data_prep import open_dataset
    from progan.training.options import TrainConfig, parse_batch_sizes
    from progan.training.trainer import Trainer

    assert parse_batch_sizes("") == {}
    assert parse_batch_sizes(" 4:64, 16:8 ,") == {4: 64, 16: 8}
    for bad, message in (("4-64", "must look like RES:BATCH, got '4-64'"), ("4:6:4", "RES:BATCH"),
                         ("12:8", "bad entry '12:8'"), ("2:8", "bad entry"), ("8:0", "bad entry '8:0'")):
        with pytest.raises(ValueError, match=message):
            parse_batch_sizes(bad)
    data = make_image_folder(tmp_path / "data", count=8)
    config = TrainConfig(family="progan", preset="tiny", data=str(data), out=str(tmp_path / "run"), batch_size=4,
                         batch_sizes="8:2,16:3", workers=0)
    trainer = Trainer(config, FAMILIES["progan"], lambda r: open_dataset(str(data), r), accelerator=Accelerator(cpu=True))
    assert trainer.model_config.resolutions == (4, 8, 16)
    assert [trainer.schedule.batch_size(stage) for stage in range(3)] == [4, 2, 3]


def test_style_mixing_crossover_is_uniform_over_every_active_style_layer_of_the_stage():
    """StyleGAN section 3.1 (reference implementation): the crossover k is drawn uniformly from 1..L-1, L the
    style layers the synthesis reads at the current stage, so the second latent can reach every active layer
    above the first, the top one included. L is measured on a 64 px generator (5 stages): the layers whose w
    changes the image (a prefix, two per resolution); then the step's draws at mixing_prob 1 over 300
    minibatches must give exactly {1, ..., L-1} at every stage."""
    import contextlib
    import dataclasses

    from torch import nn

    from progan.training.step import _generate

    family = FAMILIES["stylegan_lite"]
    config = dataclasses.replace(family.presets["tiny"], resolution=64)
    torch.manual_seed(0)
    generator = family.generator_cls(config).eval()

    class Recorder(nn.Module):  # what the step hands G; returns z
        def forward(self, z, **kwargs):
            seen.append(kwargs.get("crossover"))
            return z

    for stage in range(config.num_stages):
        ws = torch.randn(2, generator.num_ws, config.w_dim)
        with torch.no_grad():
            base = generator.synthesis(ws, stage=stage, noise_mode="const")
            reads = []  # the layers whose w moves the image
            for k in range(generator.num_ws):
                moved = ws.clone()
                moved[:, k] += 1.0
                if not torch.equal(generator.synthesis(moved, stage=stage, noise_mode="const"), base):
                    reads.append(k)
        active = len(reads)
        assert reads == list(range(active)) and active == 2 * (stage + 1)  # the first L layers, two per resolution
        seen: list = []
        ctx = StepContext(generator=Recorder(), discriminator=nn.Identity(), loss="wgan_gp", stage=stage, alpha=1.0,
                          latent_dim=config.latent_dim, device=torch.device("cpu"), autocast=contextlib.nullcontext,
                          backward=lambda t: t.backward(), mixing_prob=1.0)
        torch.manual_seed(stage)
        for _ in range(300):
            _generate(ctx, 2, training_w_avg=False)
        assert set(seen) == set(range(1, active)), stage  # never 0 (no mixing) nor L (nothing mixed in)
