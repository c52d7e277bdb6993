"""The range of each single training option (``TrainConfig.__post_init__``): a value just outside is a
one-line error that names the flag and the value, through ``TrainConfig`` and through ``train.py``
(exit 2, nothing else printed); the value on the boundary is accepted. The combinations of options
are in ``test_stabilization.py``, ``test_finetune.py`` and ``test_augment_training.py``."""
from __future__ import annotations

import re

import pytest

import train
from progan.training.options import TrainConfig, parse_batch_sizes

STYLEGAN = {"family": "stylegan_lite"}  # StyleGAN-lite's default loss (logistic + R1) allows ADA

# (options, message); each message names the flag and, where the check has one, the value given
OUTSIDE = [
    (dict(mixing_prob=-0.01), r"--mixing-prob must be in \[0, 1\], got -0.01"),
    (dict(mixing_prob=1.01), r"--mixing-prob must be in \[0, 1\], got 1.01"),
    (dict(ada_target=-0.01), r"--ada-target must be in \[0, 1\], got -0.01"),
    (dict(ada_target=1.01), r"--ada-target must be in \[0, 1\], got 1.01"),
    (dict(ada_kimg=0.0), "--ada-kimg must be > 0, got 0.0"),
    (dict(ada_interval=0), "--ada-interval must be >= 1, got 0"),
    (dict(STYLEGAN, r1_every=0), "--r1-every must be >= 1, got 0"),
    (dict(gp_every=0), "--gp-every must be >= 1, got 0"),
    (dict(monitor_num=1), "--monitor-num must be 0 \\(off\\) or >= 2, got 1"),
    (dict(monitor_num=-2), "--monitor-num must be 0 \\(off\\) or >= 2, got -2"),
    (dict(holdout=-1), "--holdout must be >= 0, got -1"),
    (dict(eval_num=1), "--eval-num must be >= 2, got 1"),
    (dict(fade_kimg=-0.5), "--fade-kimg, --workers and --eval-kimg must be >= 0"),
    (dict(workers=-1), "--fade-kimg, --workers and --eval-kimg must be >= 0"),
    (dict(eval_kimg=-1.0), "--fade-kimg, --workers and --eval-kimg must be >= 0"),
    (dict(instance_noise_kimg=0.0), "--instance-noise-kimg > 0"),
    (dict(blur_padding="zero"), "--blur-padding sets StyleGAN-lite's blur; ProGAN's generator has none"),
    *((dict(**{name: 0}), f"--{name.replace('_', '-')} must be > 0, got 0")
      for name in ("kimg", "batch_size", "g_lr", "d_lr", "grad_accum", "checkpoint_kimg", "sample_kimg",
                   "sample_count", "log_every", "keep_checkpoints", "stable_kimg", "ema_half_life_kimg",
                   "sync_every", "dist_timeout")),
]

# the boundary of each range above, accepted (with ADA where the option only matters with it)
BOUNDARY = [dict(mixing_prob=0.0), dict(mixing_prob=1.0), dict(STYLEGAN, augment="ada", ada_target=0.0),
            dict(STYLEGAN, augment="ada", ada_target=1.0), dict(STYLEGAN, augment="ada", ada_interval=1),
            dict(monitor_num=0), dict(monitor_num=2), dict(holdout=0), dict(eval_num=2), dict(fade_kimg=0.0),
            dict(workers=0), dict(eval_kimg=0.0), dict(STYLEGAN, blur_padding="zero")]


def _flags(options: dict) -> list[str]:
    return [item for k, v in options.items() for item in (f"--{k.replace('_', '-')}", str(v))]


@pytest.mark.parametrize("options,message", OUTSIDE, ids=[" ".join(_flags(o)) for o, _ in OUTSIDE])
def test_a_value_outside_an_options_range_is_a_one_line_error(options, message, capsys):
    with pytest.raises(ValueError, match=message) as info:
        TrainConfig(**options)
    assert "\n" not in str(info.value)
    assert train.main([*_flags(options), "--dry-run", "--no-estimate-memory"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error: ") and captured.err.count("\n") == 1
    assert re.search(message, captured.err)  # argparse gives floats as floats: "got 0.0"


@pytest.mark.parametrize("options", BOUNDARY, ids=[" ".join(_flags(o)) for o in BOUNDARY])
def test_the_boundary_of_an_options_range_is_accepted(options):
    config = TrainConfig(**options)
    assert all(getattr(config, name) == value for name, value in options.items())


# --batch-sizes RES:BATCH: RES a power of two from 4 (ProGAN's first stage), BATCH at least 1
BATCH_SIZES_ACCEPTED = [("4:64,8:32", {4: 64, 8: 32}), ("4:1", {4: 1}), (" 8:1 , 1024:2,", {8: 1, 1024: 2})]
BATCH_SIZES_REFUSED = ["2:64", "1:8", "0:8", "3:8", "12:8", "4:0", "8:-1", "4:64,2:8"]


@pytest.mark.parametrize("spec,by_resolution", BATCH_SIZES_ACCEPTED, ids=[s for s, _ in BATCH_SIZES_ACCEPTED])
def test_batch_sizes_accept_the_4_px_stage_and_a_batch_of_one(spec, by_resolution, capsys):
    """The lowest stage (4 px) and the smallest batch (1) are valid entries, through TrainConfig and train.py."""
    assert parse_batch_sizes(spec) == by_resolution
    assert TrainConfig(batch_sizes=spec).batch_sizes == spec
    assert train.main(["--batch-sizes", spec, "--dry-run", "--no-estimate-memory"]) == 0
    assert '"batch_sizes": ' + repr(spec).replace("'", '"') in capsys.readouterr().out


@pytest.mark.parametrize("spec", BATCH_SIZES_REFUSED)
def test_batch_sizes_refuse_a_stage_below_4_px_or_off_the_powers_of_two_and_a_batch_below_one(spec, capsys):
    bad = spec.split(",")[-1]
    with pytest.raises(ValueError, match=f"^--batch-sizes: bad entry '{bad}'$"):
        TrainConfig(batch_sizes=spec)
    assert train.main(["--batch-sizes", spec, "--dry-run", "--no-estimate-memory"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == f"error: --batch-sizes: bad entry '{bad}'\n"
