"""scripts/model_card.py: the generator blur line, the memorization paragraph and figure, and its refusals of
wrong inputs."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from PIL import Image

from families import FAMILIES

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import model_card  # noqa: E402


@pytest.fixture
def card_inputs(tmp_path):
    family = FAMILIES["stylegan_lite"]
    weights = tmp_path / "weights"
    family.generator_cls(family.presets["tiny"]).save_pretrained(
        weights, summary={"preset": "tiny", "images_seen": 1000, "kimg": 1.0, "steps": 31, "loss": "wgan_gp"})
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.jsonl").write_text(json.dumps({"kimg": 1.0, "img_per_s": 5.0}) + "\n")
    scores = {"fid": 100.0, "kid": 0.1, "precision": 0.5, "recall": 0.2}
    (tmp_path / "metrics.json").write_text(json.dumps({**scores, "num_generated": 10, "num_real": 10,
                                                       "resolution": 16}))
    (tmp_path / "floor.json").write_text(json.dumps({**scores, "per_seed": [{"seed": 0}], "num_held_out": 5,
                                                     "num_reference": 5, "resolution": 16}))
    figure = tmp_path / "pairs.png"
    Image.new("RGB", (8, 4), (200, 10, 30)).save(figure)
    memo = {"nearest_fraction_below": 0.0375, "nearest_threshold": 5.1, "nearest_median_distance": 13.03,
            "nearest_min_distance": 8.37, "num_generated": 800, "num_real": 4495, "psi": 1.0,
            "figure": str(figure)}
    (tmp_path / "memo.json").write_text(json.dumps(memo))
    base = [str(weights), "--metrics", str(tmp_path / "metrics.json"), "--floor", str(tmp_path / "floor.json"),
            "--run", str(run), "--title", "t", "--hours", "1", "--command", "c"]
    return tmp_path, weights, base


def test_the_card_reports_the_memorization_check_and_ships_its_figure(card_inputs):
    tmp_path, weights, base = card_inputs
    assert model_card.main(base + ["--memorization", str(tmp_path / "memo.json"),
                                   "--hardware", "a 2-core Intel Xeon VM (CPU only)"]) == 0
    card = (weights / "README.md").read_text()
    # 0.0375 of 800 samples = 30 samples = 3.8% (one decimal); the threshold, median and minimum as given
    assert "3.8% of 800 samples (psi 1) lie closer to their nearest training image" in card
    assert "all 4,495 training images" in card and "(5.10)" in card
    assert "median 13.03, smallest 8.37" in card
    assert "Wall clock: 1.0 h on a 2-core Intel Xeon VM (CPU only)" in card
    assert "![closest pairs](closest-pairs.png)" in card
    assert (weights / "closest-pairs.png").read_bytes() == (tmp_path / "pairs.png").read_bytes()


def test_the_card_without_the_check_has_no_memorization_section(card_inputs):
    _, weights, base = card_inputs
    assert model_card.main(base) == 0
    assert "Memorization" not in (weights / "README.md").read_text()
    assert not (weights / "closest-pairs.png").exists()


def test_the_figure_flag_overrides_the_json_path(card_inputs):
    tmp_path, weights, base = card_inputs
    other = tmp_path / "other.png"
    Image.new("RGB", (4, 4), (0, 255, 0)).save(other)
    assert model_card.main(base + ["--memorization", str(tmp_path / "memo.json"), "--figure", str(other)]) == 0
    assert (weights / "closest-pairs.png").read_bytes() == other.read_bytes()


def test_wrong_memorization_inputs_are_refused_before_writing(card_inputs, capsys):
    tmp_path, weights, base = card_inputs
    (weights / "README.md").unlink(missing_ok=True)
    (tmp_path / "metrics_as_memo.json").write_text((tmp_path / "metrics.json").read_text())
    assert model_card.main(base + ["--memorization", str(tmp_path / "metrics_as_memo.json")]) == 2
    assert "is not an `evaluate.py --nearest` summary" in capsys.readouterr().err
    memo = json.loads((tmp_path / "memo.json").read_text())
    (tmp_path / "memo.json").write_text(json.dumps({**memo, "figure": str(tmp_path / "gone.png")}))
    assert model_card.main(base + ["--memorization", str(tmp_path / "memo.json")]) == 2
    assert "gone.png does not exist" in capsys.readouterr().err
    assert not (weights / "README.md").exists() and not (weights / "closest-pairs.png").exists()


def test_the_card_names_the_generator_blur_padding(card_inputs):
    _, weights, base = card_inputs

    def card(config_edit) -> str:
        config = json.loads((weights / "config.json").read_text())
        config_edit(config["config"])
        (weights / "config.json").write_text(json.dumps(config))
        assert model_card.main(base) == 0
        return (weights / "README.md").read_text()

    assert "- Generator blur: [1 2 1] after each upsampling, zero padding" in card(
        lambda c: c.update(blur_padding="zero"))
    assert "- Generator blur: [1 2 1] after each upsampling, replicate padding" in card(
        lambda c: c.pop("blur_padding"))  # the bundled weights' config.json


def test_the_card_reports_the_last_logged_ada_p(card_inputs):
    """'ADA p at the end' is the p of the run's last logged step, not its first: a log whose p rises
    0.0 -> 0.3 -> 0.7 gives a card that says 0.700 (and none of the earlier values)."""
    tmp_path, weights, base = card_inputs
    rows = [{"kimg": k, "img_per_s": 5.0, "augment_p": p} for k, p in ((0.5, 0.0), (1.0, 0.3), (1.5, 0.7))]
    (tmp_path / "run" / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert model_card.main(base) == 0
    card = (weights / "README.md").read_text()
    assert "ADA p at the end 0.700" in card
    assert "ADA p at the end 0.000" not in card and "ADA p at the end 0.300" not in card


def test_every_number_comes_from_its_own_file(card_inputs):
    """The fixture's metrics and floor hold the same scores, so a card that swapped them (or precision and
    recall) would pass the tests above. Here each file has its own values, and each appears where the card
    says it comes from, formatted as written here by hand, with the title, command and hours verbatim."""
    tmp_path, weights, base = card_inputs
    (tmp_path / "metrics.json").write_text(json.dumps({"fid": 41.26, "kid": 0.03127, "precision": 0.612, "recall": 0.204,
                                                       "num_generated": 1200, "num_real": 4495, "resolution": 16}))
    (tmp_path / "floor.json").write_text(json.dumps({"fid": 7.84, "kid": 0.000412, "precision": 0.771, "recall": 0.758,
                                                     "per_seed": [{"seed": 0}, {"seed": 3}], "num_held_out": 1000,
                                                     "num_reference": 3495, "resolution": 16}))
    (tmp_path / "run" / "log.jsonl").write_text("\n".join(json.dumps(r) for r in (
        {"kimg": 1.0, "img_per_s": 5.0, "augment_p": 0.1},
        {"kimg": 40.0, "resolution": 8, "fid": 120.44},
        {"kimg": 80.0, "resolution": 16, "fid": 95.06},
        {"kimg": 81.0, "img_per_s": 5.0, "augment_p": 0.2345}, )) + "\n")
    args = list(base)
    args[args.index("--title") + 1] = "My emoji model"
    args[args.index("--hours") + 1] = "12.34"
    args[args.index("--command") + 1] = "accelerate launch train.py --preset tiny"
    assert model_card.main(args) == 0
    card = (weights / "README.md").read_text()
    assert card.startswith("# My emoji model\n")
    assert "- Command: `accelerate launch train.py --preset tiny`" in card
    assert "Wall clock: 12.3 h on" in card
    assert "- Images seen: 1,000 (1 kimg, 31 steps of 32)." in card
    assert "- Loss: wgan_gp; ADA p at the end 0.234." in card
    assert ("- FID **41.3**, KID 0.0313, precision 0.612, recall 0.204: 1,200 generated (psi 1) vs all 4,495 real "
            "images at 16 px") in card
    assert ("randomly held-out real images vs the other 3,495 (mean over split seeds 0, 3) score FID 7.8, "
            "KID 0.00041, precision 0.771, recall 0.758") in card
    assert "1,000 randomly held-out" in card
    assert "| 40 | 8 | 120.4 |\n| 80 | 16 | 95.1 |" in card


def test_the_card_names_the_fine_tuning_options_the_summary_records(card_inputs):
    """A fine-tuned model's card names its source, and --init-regrow / --freeze-d only when the summary
    says they were used: init_regrow False and freeze_d 0 add nothing, True and 2 add both."""
    _, weights, base = card_inputs

    def card(**fields) -> str:
        config = json.loads((weights / "config.json").read_text())
        config["summary"].update(fields)
        (weights / "config.json").write_text(json.dumps(config))
        assert model_card.main(base) == 0
        return next(line for line in (weights / "README.md").read_text().splitlines() if "Fine-tuned" in line)

    plain = card(init_from="weights/progan-openmoji", init_regrow=False, freeze_d=0)
    assert plain == "- Fine-tuned from `weights/progan-openmoji` (`--init-from`)."
    both = card(init_from="weights/progan-openmoji", init_regrow=True, freeze_d=2)
    assert both == "- Fine-tuned from `weights/progan-openmoji` (`--init-from`, `--init-regrow`, Freeze-D `--freeze-d 2`)."


def test_help_keeps_the_usage_example_as_written(capsys):
    """--help prints the module docstring as written (RawDescriptionHelpFormatter): the example command
    stays as written instead of being reflowed into the paragraphs around it."""
    with pytest.raises(SystemExit) as exited:
        model_card.main(["--help"])
    lines = capsys.readouterr().out.splitlines()
    example = [line for line in model_card.__doc__.splitlines() if line.startswith("    ")]
    assert exited.value.code == 0 and example                          # one long line ("\\" joins the source's)
    assert all(line in lines for line in example)
