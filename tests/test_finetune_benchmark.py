"""scripts/finetune_benchmark.py's evaluation of an arm, with the data, Inception and FID stubbed: the
values a user passes (--eval-num, --out) reach it, the model goes to the accelerator's device, the samples
figure has one row per source, and stdout carries only the table; and the Freeze-D arm's train.py command
with the default --freeze-d."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from script_utils import load_script


def test_the_pretrained_arm_is_scored_with_the_given_count_and_drawn_beside_the_reals(weights, tmp_path, monkeypatch,
                                                                                        capsys):
    import accelerate
    import data_prep
    import families
    import progan.metrics.evaluation
    import progan.metrics.inception
    from metric_utils import StandInFeatures

    script = load_script("finetune_benchmark")
    reals = [np.full((3, 16, 16), 15 * i, dtype=np.uint8) for i in range(16)]
    loaded, scored, original_load = [], [], families.load_generator

    class OnMeta:
        def __init__(self, *args, **kwargs):
            self.device = torch.device("meta")

    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(script, "flags_dataset", lambda out: out / "flags-64")
    monkeypatch.setattr(data_prep, "open_dataset", lambda data, resolution: reals)
    monkeypatch.setattr(accelerate, "Accelerator", OnMeta)
    monkeypatch.setattr(progan.metrics.inception, "load_feature_network", lambda *a, **k: StandInFeatures())
    monkeypatch.setattr(progan.metrics.evaluation, "dataset_key", lambda *a, **k: "key")
    monkeypatch.setattr(progan.metrics.evaluation, "evaluate_generator",
                        lambda *a, **k: scored.append(k) or {"fid": 12.0, "kid": 0.003})
    monkeypatch.setattr(families, "load_generator",
                        lambda path, **k: loaded.append(k) or original_load(path, progress=False))
    out = tmp_path / "bench"
    assert script.main(["--arms", "pretrained", "--pretrained", str(weights["stylegan_lite"]), "--eval-num", "37",
                        "--out", str(out)]) == 0
    assert len(scored) == 1 and scored[0]["num"] == 37 and type(scored[0]["num"]) is int
    assert json.loads((out / "results.json").read_text())["eval_num"] == 37
    assert [k.get("device") for k in loaded] == [torch.device("meta")]
    # 8 reals then the arm's 8 seeds, 16 px cells, 2 px gaps: 8 columns, 2 rows
    assert Image.open(out / "samples.png").size == (8 * 16 + 7 * 2, 2 * 16 + 2)
    captured = capsys.readouterr()
    assert captured.out.startswith("| arm | kimg | FID |") and "FID 12.0" not in captured.out
    assert "pretrained: FID 12.0, KID 3.0e-3" in captured.err


def test_the_freeze_d_arm_freezes_two_d_blocks_by_default(tmp_path, monkeypatch):
    """The README's table row "fine-tuned, `--freeze-d 2`" comes from `finetune_benchmark.py --kimg 20` with no
    --freeze-d (docs/finetune/results.json records freeze_d 2): without the option the finetune+freezeD arm
    runs train.py with `--freeze-d 2`, `--init-from` the given weights. train.py is not run: the stand-in
    records the command and fails, which the script reports as the arm's error."""
    import subprocess

    import accelerate
    import data_prep
    import progan.metrics.inception
    from metric_utils import StandInFeatures

    script = load_script("finetune_benchmark")
    commands = []

    class OnCpu:
        def __init__(self, *args, **kwargs):
            self.device = torch.device("cpu")

    monkeypatch.setattr(script, "flags_dataset", lambda out: out / "flags-64")
    monkeypatch.setattr(data_prep, "open_dataset", lambda data, resolution: [np.zeros((3, 4, 4), np.uint8)] * 8)
    monkeypatch.setattr(accelerate, "Accelerator", OnCpu)
    monkeypatch.setattr(progan.metrics.inception, "load_feature_network", lambda *a, **k: StandInFeatures())
    monkeypatch.setattr(subprocess, "run", lambda command, **k: commands.append(command) or
                        subprocess.CompletedProcess(command, 3))
    source = tmp_path / "checkpoint"
    with pytest.raises(SystemExit, match="arm 'finetune\\+freezeD': train.py exited with 3"):
        script.main(["--arms", "finetune+freezeD", "--weights", str(source), "--out", str(tmp_path / "bench")])
    [command] = commands
    flags = command[2:]  # after the interpreter and train.py
    assert flags[flags.index("--freeze-d") + 1] == "2" and flags.count("--freeze-d") == 1
    assert flags[flags.index("--init-from") + 1] == str(source)
