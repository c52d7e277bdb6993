"""``--blur-padding``: StyleGAN-lite's blur padding as a training option, recorded in checkpoints, exports and
the model card; a resume keeps it (the layer itself: tests/test_layers.py; exports: tests/test_export.py;
the card: tests/test_model_card.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from families import FAMILIES, load_generator
from progan.training.options import TrainConfig, model_overrides
from train_utils import make_image_folder


def test_the_option_is_stylegan_lites_and_empty_keeps_the_preset():
    assert TrainConfig(family="stylegan_lite").blur_padding == "" and model_overrides(TrainConfig()) == {}
    assert model_overrides(TrainConfig(family="stylegan_lite", blur_padding="zero")) == {"blur_padding": "zero"}
    # new models keep replicate until a preset opts in (a recipe comparison runs on these presets)
    assert {p.blur_padding for p in FAMILIES["stylegan_lite"].presets.values()} == {"replicate"}
    with pytest.raises(ValueError, match="ProGAN's generator has none"):
        TrainConfig(family="progan", blur_padding="zero")
    with pytest.raises(ValueError, match="--blur-padding must be replicate or zero"):
        TrainConfig(family="stylegan_lite", blur_padding="reflect")


def test_the_three_lists_of_paddings_agree():
    from progan.layers import Blur
    from progan.training.options import BLUR_PADDINGS as FLAG_VALUES
    from stylegan_lite.config import BLUR_PADDINGS

    assert Blur.PADDINGS == BLUR_PADDINGS == FLAG_VALUES[1:] and FLAG_VALUES[0] == ""


def test_dry_run_shows_the_padding(capsys):
    import train

    assert train.main(["--family", "stylegan_lite", "--preset", "tiny", "--blur-padding", "zero", "--dry-run",
                       "--no-estimate-memory"]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["blur_padding"] == "zero"


def _train(tmp_path: Path, out: str, kimg: float, **options):
    from accelerate import Accelerator

    from data_prep import open_dataset
    from progan.training.trainer import Trainer

    data = tmp_path / "data"
    if not data.exists():
        make_image_folder(data)
    config = TrainConfig(family="stylegan_lite", preset="tiny", data=str(data), out=str(tmp_path / out), kimg=kimg,
                         batch_size=4, progressive=False, checkpoint_kimg=0.02, sample_kimg=1, workers=0,
                         monitor_num=0, **options)
    trainer = Trainer(config, FAMILIES["stylegan_lite"], lambda r: open_dataset(str(data), r),
                      accelerator=Accelerator(cpu=True))
    return trainer, trainer.train()


def test_a_run_records_its_padding_and_a_resume_keeps_it(tmp_path):
    from progan.layers import Blur
    from progan.training.checkpoint import latest_checkpoint

    trainer, export = _train(tmp_path, "zero", 0.02, blur_padding="zero")
    assert {m.padding for m in trainer.generator.modules() if isinstance(m, Blur)} == {"zero"}
    assert load_generator(export).config.blur_padding == "zero"
    assert json.loads((export / "config.json").read_text())["config"]["blur_padding"] == "zero"
    checkpoint = latest_checkpoint(tmp_path / "zero" / "checkpoints")
    state = torch.load(checkpoint / "state.pt", map_location="cpu", weights_only=True)
    assert json.loads(state["model_config"])["blur_padding"] == "zero"
    # the same command resumes; a resume without the flag would blur otherwise: refused in one line
    _train(tmp_path, "zero", 0.04, blur_padding="zero")
    with pytest.raises(ValueError, match=r"was trained with --blur-padding zero, this run would use replicate: "
                                         r"pass --blur-padding zero to resume it"):
        _train(tmp_path, "zero", 0.06)

    # a checkpoint from before the option has no model_config: it blurred with replicate
    _train(tmp_path, "old", 0.02)
    checkpoint = latest_checkpoint(tmp_path / "old" / "checkpoints")
    state = torch.load(checkpoint / "state.pt", map_location="cpu", weights_only=True)
    del state["model_config"]
    torch.save(state, checkpoint / "state.pt")
    with pytest.raises(ValueError, match="was trained with --blur-padding replicate, this run would use zero"):
        _train(tmp_path, "old", 0.04, blur_padding="zero")
    trainer, _ = _train(tmp_path, "old", 0.04)
    assert trainer.images_seen == 40  # resumed at 20 and trained on
