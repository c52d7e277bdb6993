"""Options of the evaluation reach the layer below (``progan/metrics/evaluation.py``).

The periodic evaluator's seed and the KID subset size are passed on, not re-derived: a run evaluated
with ``seed=5`` draws seed 5's latents, and KID's subsets never ask for more reals than were scored.
The layers below are replaced by recorders, so what arrives is checked directly. A ``--num-real`` above the
dataset's size is recorded as the dataset's size, the number of reals actually scored. A conditional generator's
classes are drawn with the evaluation's seed. Precision/recall's distances run on the accelerator's device."""
from __future__ import annotations

import math
from types import SimpleNamespace

import torch
from accelerate import Accelerator

import progan.metrics.evaluation as evaluation


def test_the_periodic_evaluator_passes_its_seed_stage_and_alpha_on(monkeypatch):
    seen = {}
    monkeypatch.setattr(evaluation, "evaluate_generator", lambda *a, **kw: seen.update(kw) or {"fid": 1.0})
    acc = Accelerator(cpu=True)
    evaluator = evaluation.PeriodicEvaluator(acc, num=12, data_label="", network=object(), batch_size=3, seed=5)
    evaluator(object(), [torch.zeros(3, 4, 4)] * 4, stage=2, alpha=0.25)
    assert seen["seed"] == 5 and seen["num"] == 12 and seen["batch_size"] == 3
    assert seen["generator_kwargs"] == {"stage": 2, "alpha": 0.25}


def test_kid_subsets_are_capped_by_the_number_of_reals_scored(monkeypatch):
    """10 generated against a 5-image dataset: KID's subset size is 5 (min of 1000, 10 and 5)."""
    seen = {}
    real = SimpleNamespace(features=torch.randn(5, 4), mu=None, sigma=None)
    monkeypatch.setattr(evaluation, "distributed_real_statistics", lambda *a, **kw: real)
    monkeypatch.setattr(evaluation, "generated_features", lambda *a, num, **kw: torch.randn(num, 4))
    monkeypatch.setattr(evaluation, "compute_metrics", lambda *a, **kw: seen.update(kw) or {})
    generator = SimpleNamespace(config=SimpleNamespace(image_channels=3, num_classes=0))
    dataset = [torch.zeros(3, 4, 4, dtype=torch.uint8)] * 5
    evaluation.evaluate_generator(generator, dataset, lambda x: x, accelerator=Accelerator(cpu=True), num=10,
                                  dataset_key="k")
    assert seen["kid_subset_size"] == 5
    evaluation.evaluate_generator(generator, dataset, lambda x: x, accelerator=Accelerator(cpu=True), num=10,
                                  dataset_key="k", num_real=3)
    assert seen["kid_subset_size"] == 3


def test_precision_recall_distances_run_on_the_accelerators_device(monkeypatch):
    """The k-NN distance batches of precision/recall (50k x 50k at full size) run where the evaluation runs,
    not on the CPU by default: the accelerator's device reaches compute_metrics. A stand-in accelerator
    on the meta device tells it apart from compute_metrics' default (None: the features' own device)."""
    seen = {}
    real = SimpleNamespace(features=torch.randn(5, 4), mu=None, sigma=None)
    monkeypatch.setattr(evaluation, "distributed_real_statistics", lambda *a, **kw: real)
    monkeypatch.setattr(evaluation, "generated_features", lambda *a, num, **kw: torch.randn(num, 4))
    monkeypatch.setattr(evaluation, "gather_in_order", lambda acc, local, num: local)
    monkeypatch.setattr(evaluation, "compute_metrics", lambda *a, **kw: seen.update(kw) or {})
    accelerator = SimpleNamespace(device=torch.device("meta"), is_main_process=True, num_processes=1,
                                  process_index=0)
    generator = SimpleNamespace(config=SimpleNamespace(image_channels=3, num_classes=0))
    dataset = [torch.zeros(3, 4, 4, dtype=torch.uint8)] * 5
    evaluation.evaluate_generator(generator, dataset, lambda x: x, accelerator=accelerator, num=10,
                                  dataset_key="k", metrics=("fid", "pr"))
    assert seen["device"] == torch.device("meta") and seen["metrics"] == ("fid", "pr")


def test_the_evaluate_cli_passes_its_options_on_and_its_json_records_them(weights, tmp_path, monkeypatch, capsys):
    """``evaluate.py --num 6 --num-real 4 --batch 3 --seed 2 --metrics fid,kid`` (none at its default): the
    layer below receives each value, and the JSON names the counts as given (6 generated, 4 real: two different
    numbers), the seed, the resolution and family of the weights, and the scores it returned."""
    import json

    import evaluate
    from metric_utils import StandInFeatures
    from train_utils import make_image_folder

    data = make_image_folder(tmp_path / "data", count=8)
    monkeypatch.setattr("progan.metrics.inception.load_feature_network", lambda *a, **k: StandInFeatures())
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    seen = {}
    monkeypatch.setattr(evaluation, "evaluate_generator",
                        lambda *a, **kw: seen.update(kw) or {"fid": 12.5, "kid": 0.25})
    out = tmp_path / "m.json"
    assert evaluate.main(["--weights", str(weights["progan"]), "--data", str(data), "--num", "6", "--num-real", "4",
                          "--batch", "3", "--seed", "2", "--metrics", "fid,kid", "--out", str(out)]) == 0
    assert (seen["num"], seen["num_real"], seen["batch_size"], seen["seed"]) == (6, 4, 3, 2)
    assert tuple(seen["metrics"]) == ("fid", "kid") and seen["generator_kwargs"] == {}
    summary = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == summary
    assert (summary["num_generated"], summary["num_real"], summary["seed"]) == (6, 4, 2)
    assert (summary["family"], summary["resolution"], summary["psi"]) == ("progan", 16, 1.0)
    assert (summary["fid"], summary["kid"]) == (12.5, 0.25)


def test_evaluate_cli_num_real_above_the_dataset_size_scores_and_records_the_dataset_size(weights, tmp_path,
                                                                                         monkeypatch, capsys):
    """``--num-real 100`` on an 8-image dataset: all 8 reals are scored (the real statistics are asked for 8)
    and the JSON's num_real says 8, the number behind the scores, not the 100 asked for."""
    import json

    import evaluate
    from metric_utils import StandInFeatures
    from train_utils import make_image_folder

    data = make_image_folder(tmp_path / "data", count=8)
    monkeypatch.setattr("progan.metrics.inception.load_feature_network", lambda *a, **k: StandInFeatures())
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    asked, real_statistics = [], evaluation.distributed_real_statistics
    monkeypatch.setattr(evaluation, "distributed_real_statistics",
                        lambda *a, num, **kw: asked.append(num) or real_statistics(*a, num=num, **kw))
    out = tmp_path / "m.json"
    assert evaluate.main(["--weights", str(weights["progan"]), "--data", str(data), "--num", "4", "--num-real", "100",
                          "--batch", "4", "--metrics", "fid", "--out", str(out)]) == 0
    capsys.readouterr()
    summary = json.loads(out.read_text())
    assert asked == [8] and summary["num_real"] == 8 and summary["num_generated"] == 4
    assert math.isfinite(summary["fid"])


def test_a_conditional_generators_classes_are_drawn_with_the_evaluation_seed(monkeypatch):
    """Without explicit labels, a conditional generator's 64 samples get classes drawn from the dataset's label
    distribution (3 of class 0 to 1 of class 2, none of class 1) by a generator seeded with the evaluation's
    ``seed``: seed 5 draws ``multinomial([3, 0, 1], 64, replacement)`` of ``Generator().manual_seed(5)``, the
    same on a second call, and another draw than seed 0."""
    class Labelled(list):
        labels, class_names = [0, 0, 0, 2], ("a", "b", "c")

    drawn = []
    real = SimpleNamespace(features=torch.randn(4, 4), mu=None, sigma=None)
    monkeypatch.setattr(evaluation, "distributed_real_statistics", lambda *a, **kw: real)
    monkeypatch.setattr(evaluation, "generated_features",
                        lambda *a, num, labels, **kw: drawn.append(labels) or torch.randn(num, 4))
    monkeypatch.setattr(evaluation, "compute_metrics", lambda *a, **kw: {})
    generator = SimpleNamespace(config=SimpleNamespace(image_channels=3, num_classes=3))
    dataset = Labelled([torch.zeros(3, 4, 4, dtype=torch.uint8)] * 4)
    for seed in (5, 5, 0):
        evaluation.evaluate_generator(generator, dataset, lambda x: x, accelerator=Accelerator(cpu=True), num=64,
                                      dataset_key="k", seed=seed)
    expected = torch.multinomial(torch.tensor([3.0, 0.0, 1.0]), 64, replacement=True,
                                 generator=torch.Generator().manual_seed(5))
    assert torch.equal(drawn[0], expected) and torch.equal(drawn[1], expected)
    assert set(drawn[0].tolist()) == {0, 2} and not torch.equal(drawn[2], expected)
