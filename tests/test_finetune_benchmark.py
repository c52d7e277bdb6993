"""scripts/finetune_benchmark.py's evaluation of an arm, with the data, Inception and FID stubbed: the
values a user passes (--eval-num, --out) reach it, the model goes to the accelerator's device, the samples
figure has one row per source, and stdout carries only the table."""
from __future__ import annotations

import json

import numpy as np
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
