"""``evaluate.py --per-class`` (``progan.metrics.per_class``): the intra-class FID/KID of Miyato & Koyama
2018 (section 5.1) of a class-conditional generator.

Expected values come from features the test computes itself (the stand-in network of ``metric_utils``)
of the dataset images it labelled and of the samples it generated with the class fixed.
"""
from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from families import FAMILIES

CLASSES = ("blue", "red")


def _conditional(family: str, seed: int = 0):
    torch.manual_seed(seed)
    config = dataclasses.replace(FAMILIES[family].presets["tiny"], class_names=CLASSES)
    return FAMILIES[family].generator_cls(config).eval()


def _labelled_dataset(tmp_path, sizes=(("blue", 5), ("red", 7), ("solo", 1))):
    import data_prep

    rng = np.random.default_rng(0)
    for name, count in sizes:
        (tmp_path / "src" / name).mkdir(parents=True)
        for i in range(count):
            image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            image[..., 2 if name == "blue" else 0] = 230
            Image.fromarray(image).save(tmp_path / "src" / name / f"{i}.png")
    return data_prep.prepare(tmp_path / "src", tmp_path / "data", resolution=16, labels="folders",
                             progress=False, workers=1)


def _by_hand(generator, dataset, label: int, network, num: int, seed: int = 0, **generator_kwargs) -> dict[str, float]:
    from progan.metrics.features import compute_metrics, images_to_uint8, latents_for_indices

    reals = torch.stack([dataset[i] for i in range(len(dataset)) if dataset.labels[i] == label])
    z = latents_for_indices(range(num), generator.config.latent_dim, seed=seed)
    with torch.no_grad():
        fakes = images_to_uint8(generator(z, labels=torch.full((num,), label), **generator_kwargs))
        return compute_metrics(network(reals), network(fakes), metrics=("fid", "kid"), seed=seed,
                               kid_subset_size=min(1000, num, len(reals)))


def _evaluate_cli_per_class(tmp_path, monkeypatch, generator, *flags: str, whole_summary: bool = False):
    """``evaluate.py --per-class`` with ``flags`` on ``generator`` (saved), classes of 5 and 7 images and the
    stand-in feature network; returns the JSON's ``per_class`` and the dataset path (or the whole JSON)."""
    data = _labelled_dataset(tmp_path, sizes=(("blue", 5), ("red", 7)))
    generator.save_pretrained(tmp_path / "g")
    summary = _evaluate_cli_per_class_on(tmp_path, monkeypatch, data, *flags)
    return summary if whole_summary else (summary["per_class"], data)


def _assert_classes_scored_by_hand(per_class: dict, generator, data, seed: int = 0, **generator_kwargs) -> None:
    """Each class's FID/KID (6 samples) are the by-hand values with ``seed`` and ``generator_kwargs``, and not
    those of the defaults (seed 0, no keywords): the options visibly arrived."""
    import data_prep
    from metric_utils import StandInFeatures

    dataset, network = data_prep.open_dataset(data, 16), StandInFeatures()
    for label, name in enumerate(CLASSES):
        expected = _by_hand(generator, dataset, label, network, 6, seed=seed, **generator_kwargs)
        assert per_class[name]["fid"] == pytest.approx(expected["fid"], rel=1e-4)
        assert per_class[name]["kid"] == pytest.approx(expected["kid"], rel=1e-4, abs=1e-7)
        assert per_class[name]["fid"] != pytest.approx(_by_hand(generator, dataset, label, network, 6)["fid"],
                                                       rel=1e-3)


def test_per_class_metrics_are_each_class_against_its_own_reals(tmp_path):
    from accelerate import Accelerator

    import data_prep
    from metric_utils import StandInFeatures
    from progan.metrics.per_class import evaluate_per_class

    data = _labelled_dataset(tmp_path, sizes=(("blue", 5), ("red", 7)))
    dataset = data_prep.open_dataset(data, 16)
    generator = _conditional("progan")
    network = StandInFeatures()
    results = evaluate_per_class(generator, dataset, network, accelerator=Accelerator(cpu=True), num=6,
                                 dataset_key="k", cache_dir=None, batch_size=4)
    assert list(results) == list(CLASSES)
    for label, name in enumerate(CLASSES):
        expected = _by_hand(generator, dataset, label, network, 6)
        assert results[name]["num_real"] == (5, 7)[label]
        assert results[name]["fid"] == pytest.approx(expected["fid"], rel=1e-4)
        assert results[name]["kid"] == pytest.approx(expected["kid"], rel=1e-4, abs=1e-7)
    assert results["blue"]["fid"] != pytest.approx(results["red"]["fid"], rel=1e-3)


def test_evaluate_cli_per_class(tmp_path, monkeypatch, capsys):
    import evaluate
    import progan.metrics.inception
    from metric_utils import StandInFeatures

    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(progan.metrics.inception, "load_feature_network", lambda *a, **k: StandInFeatures())
    data = _labelled_dataset(tmp_path)
    classes = ("blue", "red", "solo")
    torch.manual_seed(0)
    config = dataclasses.replace(FAMILIES["progan"].presets["tiny"], class_names=classes)
    FAMILIES["progan"].generator_cls(config).save_pretrained(tmp_path / "g")
    out = tmp_path / "m.json"
    assert evaluate.main(["--weights", str(tmp_path / "g"), "--data", str(data), "--num", "6", "--metrics", "fid,kid",
                          "--per-class", "--out", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert set(summary["per_class"]) == set(classes) and "fid" in summary and "kid" in summary
    assert summary["per_class"]["solo"] == {"num_real": 1, "skipped": "fewer than 2 real images"}
    assert all(np.isfinite(summary["per_class"][c]["fid"]) for c in ("blue", "red"))
    table = capsys.readouterr().err.splitlines()
    assert [line.split()[0] for line in table[-3:]] == list(classes) and "skipped" in table[-1]
    # refusals: an unconditional generator, one line
    FAMILIES["progan"].generator_cls(FAMILIES["progan"].presets["tiny"]).save_pretrained(tmp_path / "plain")
    assert evaluate.main(["--weights", str(tmp_path / "plain"), "--data", str(data), "--num", "6",
                          "--per-class"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --per-class needs a class-conditional generator (this one has no classes)"]


def test_evaluate_cli_per_class_refuses_a_dataset_with_other_classes_or_order(tmp_path, monkeypatch, capsys):
    """Label i means class i: a dataset whose classes differ from the generator's, even only in order,
    would score each class against another's reals; one line naming both lists, exit status 2."""
    import evaluate
    import progan.metrics.inception
    from metric_utils import StandInFeatures

    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(progan.metrics.inception, "load_feature_network", lambda *a, **k: StandInFeatures())
    monkeypatch.setattr("progan.metrics.evaluation.evaluate_generator", lambda *a, **k: pytest.fail("evaluated"))
    data = _labelled_dataset(tmp_path, sizes=(("blue", 2), ("red", 2)))      # classes blue, red (label 0, 1)
    for name, classes in (("swapped", ("red", "blue")), ("more", ("blue", "red", "green"))):
        torch.manual_seed(0)
        config = dataclasses.replace(FAMILIES["progan"].presets["tiny"], class_names=classes)
        FAMILIES["progan"].generator_cls(config).save_pretrained(tmp_path / name)
        capsys.readouterr()
        assert evaluate.main(["--weights", str(tmp_path / name), "--data", str(data), "--num", "6",
                              "--per-class", "--out", str(tmp_path / "m.json")]) == 2
        assert capsys.readouterr().err.strip().splitlines() == [
            f"error: --per-class: the dataset's classes ['blue', 'red'] are not the generator's {list(classes)}"]
        assert not (tmp_path / "m.json").exists()


def test_classes_of_equal_size_keep_their_own_cached_real_statistics(tmp_path):
    """With a statistics cache, two classes with as many real images each (and the whole dataset's
    statistics cached under the same key first) still score against their own reals, cold and warm."""
    from accelerate import Accelerator

    import data_prep
    from metric_utils import StandInFeatures
    from progan.metrics.evaluation import evaluate_generator
    from progan.metrics.per_class import evaluate_per_class

    data = _labelled_dataset(tmp_path, sizes=(("blue", 5), ("red", 5)))
    dataset = data_prep.open_dataset(data, 16)
    generator = _conditional("stylegan_lite")
    network = StandInFeatures()
    accelerator = Accelerator(cpu=True)
    cache = tmp_path / "cache"
    evaluate_generator(generator, dataset, network, accelerator=accelerator, num=6, num_real=5, dataset_key="k",
                       metrics=("fid",), cache_dir=cache, batch_size=4,
                       labels=torch.zeros(6, dtype=torch.long))  # 5 of all the reals, cached under "k"
    expected = {name: _by_hand(generator, dataset, label, network, 6) for label, name in enumerate(CLASSES)}
    for _ in ("cold", "warm"):
        results = evaluate_per_class(generator, dataset, network, accelerator=accelerator, num=6, dataset_key="k",
                                     cache_dir=cache, batch_size=4)
        for name in CLASSES:
            assert results[name]["num_real"] == 5
            assert results[name]["fid"] == pytest.approx(expected[name]["fid"], rel=1e-4)
    assert expected["blue"]["fid"] != pytest.approx(expected["red"]["fid"], rel=1e-3)


def test_a_class_of_an_x_flipped_dataset_is_its_images_and_then_their_mirrors(tmp_path):
    """``class_subset`` of a dataset opened with ``xflip``: the class's images, then each one mirrored (not
    repeated, not another class's). The fixture's images are random noise, so a mirror differs from its image;
    each image's class is told from its pixels (the blue class has blue at 230, the red class red at 230)."""
    import data_prep
    from progan.metrics.per_class import class_subset

    data = _labelled_dataset(tmp_path, sizes=(("blue", 3), ("red", 4)))
    plain = [data_prep.open_dataset(data, 16)[i] for i in range(7)]
    flipped = data_prep.open_dataset(data, 16, xflip=True)
    for label, (channel, count) in enumerate(((2, 3), (0, 4))):
        originals = [x for x in plain if bool((x[channel] == 230).all())]
        assert len(originals) == count
        subset = class_subset(flipped, label)
        assert len(subset) == 2 * count and subset.num_images == count
        got = [subset[i] for i in range(len(subset))]
        for image, want in zip(got, originals + [x.flip(-1) for x in originals]):
            assert torch.equal(image, want)
        assert not any(torch.equal(x, x.flip(-1)) for x in originals)  # the mirrors are visible


def test_evaluate_cli_per_class_draws_the_samples_of_its_seed(tmp_path, monkeypatch):
    """``--seed 5 --per-class``: every class is scored on latents 0..num-1 *of seed 5* (and KID's subsets of
    seed 5), the values a by-hand computation with seed 5 gives, not seed 0's."""
    generator = _conditional("progan")
    per_class, data = _evaluate_cli_per_class(tmp_path, monkeypatch, generator, "--num", "6", "--metrics", "fid,kid",
                                              "--seed", "5")
    _assert_classes_scored_by_hand(per_class, generator, data, seed=5)


def test_evaluate_cli_per_class_scores_the_truncated_generator_it_is_given(tmp_path, monkeypatch):
    """``--psi 0.5 --per-class`` on a conditional StyleGAN-lite (w_avg set away from 0): each class's FID/KID
    are those of the truncated generator, computed by hand, not of the untruncated one; the overall
    numbers and the per-class ones then describe the same samples."""
    generator = _conditional("stylegan_lite")
    with torch.no_grad():
        generator.w_avg.copy_(torch.randn(generator.w_avg.shape, generator=torch.Generator().manual_seed(1)))
    per_class, data = _evaluate_cli_per_class(tmp_path, monkeypatch, generator, "--num", "6", "--metrics", "fid,kid",
                                              "--psi", "0.5")
    _assert_classes_scored_by_hand(per_class, generator, data, psi=0.5)


def test_num_real_above_a_class_size_takes_all_of_that_class(tmp_path):
    """``num_real=6`` with classes of 5 and 7 images (and one of 1): blue is scored against its 5 reals (all of
    them, recorded as 5), red against 6 of its 7, and the 1-image class is still skipped, not evaluated."""
    from accelerate import Accelerator

    import data_prep
    from metric_utils import StandInFeatures
    from progan.metrics.per_class import evaluate_per_class

    data = _labelled_dataset(tmp_path)
    generator = dataclasses.replace(FAMILIES["progan"].presets["tiny"], class_names=("blue", "red", "solo"))
    torch.manual_seed(0)
    generator = FAMILIES["progan"].generator_cls(generator).eval()
    network = StandInFeatures()
    results = evaluate_per_class(generator, data_prep.open_dataset(data, 16), network,
                                 accelerator=Accelerator(cpu=True), num=6, num_real=6, dataset_key="k",
                                 cache_dir=None, batch_size=4)
    assert results["blue"]["num_real"] == 5 and results["red"]["num_real"] == 6
    assert results["solo"] == {"num_real": 1, "skipped": "fewer than 2 real images"}
    assert results["blue"]["fid"] == pytest.approx(
        _by_hand(generator, data_prep.open_dataset(data, 16), 0, network, 6)["fid"], rel=1e-4)


def test_evaluate_cli_per_class_keeps_num_real_and_metrics_and_records_the_counts(tmp_path, monkeypatch):
    """``--num 6 --num-real 3 --metrics fid --per-class`` (every option away from its default): each class is
    scored against 3 of its reals (of 5 and 7) with FID alone, and the JSON records 6 generated and 3 real
    images overall (two different numbers, so one cannot stand in for the other)."""
    summary = _evaluate_cli_per_class(tmp_path, monkeypatch, _conditional("progan"), "--num", "6", "--num-real", "3",
                                      "--metrics", "fid", whole_summary=True)
    assert summary["num_generated"] == 6 and summary["num_real"] == 3
    assert "fid" in summary and "kid" not in summary and "precision" not in summary
    for name in CLASSES:
        row = summary["per_class"][name]
        assert row["num_real"] == 3 and np.isfinite(row["fid"]) and "kid" not in row, (name, row)


class _Labels:
    """Just the labels and class names of a labelled dataset (no images: nothing here reads them)."""

    def __init__(self, labels: list[int], class_names: tuple[str, ...]) -> None:
        self.labels, self.class_names = np.array(labels), class_names

    def __len__(self) -> int:
        return len(self.labels)


def test_class_indices_run_from_zero_to_one_below_the_class_count():
    from progan.metrics.per_class import class_subset

    data = _Labels([0, 2, 1, 2], ("a", "b", "c"))
    assert class_subset(data, 0).indices == [0] and class_subset(data, 2).indices == [1, 3]
    for bad in (3, -1):
        with pytest.raises(ValueError, match=rf"^class index must be in \[0, 3\), got {bad}$"):
            class_subset(data, bad)
    # the subset keeps the dataset's class names; its description (cosmetic) names its class and size
    assert class_subset(data, 2).class_names == ("a", "b", "c")
    assert class_subset(data, 2).extra_repr() == "class 2 ('c'), images=2"


def test_a_class_of_two_images_is_scored_and_a_class_of_one_is_skipped(monkeypatch):
    """Classes of 2, 1 and 3 images: classes "a" and "c" reach ``evaluate_generator`` with their 2 and 3 reals
    (2 and 2 under num_real=2), "b" is reported skipped with its 1."""
    import progan.metrics.per_class as per_class
    from types import SimpleNamespace

    calls = []
    monkeypatch.setattr(per_class, "evaluate_generator",
                        lambda generator, subset, network, **kw: calls.append((subset.label, kw["num_real"])) or
                        {"fid": float(subset.label)})
    names = ("a", "b", "c")
    data = _Labels([0, 1, 2, 0, 2, 2], names)
    generator = SimpleNamespace(config=SimpleNamespace(class_names=names))
    common = dict(accelerator=SimpleNamespace(is_main_process=True), num=4, dataset_key="k")
    out = per_class.evaluate_per_class(generator, data, None, **common)
    assert calls == [(0, 2), (2, 3)]
    assert out == {"a": {"num_real": 2, "fid": 0.0}, "b": {"num_real": 1, "skipped": "fewer than 2 real images"},
                   "c": {"num_real": 3, "fid": 2.0}}
    calls.clear()
    assert per_class.evaluate_per_class(generator, data, None, num_real=2, **common)["c"]["num_real"] == 2
    assert calls == [(0, 2), (2, 2)]


@pytest.mark.parametrize("metrics, per_class_metrics", [("pr", {"fid"}), ("kid,pr", {"kid"}),
                                                        ("fid,kid,pr", {"fid", "kid"})])
def test_evaluate_cli_per_class_scores_the_metrics_asked_besides_pr_or_fid_when_pr_is_all(
        tmp_path, monkeypatch, metrics, per_class_metrics):
    """Precision/recall is not scored per class (a class has too few reals for 3 nearest neighbours): each
    class gets the other metrics asked for, and FID when ``pr`` was the only one. The overall row keeps all
    of them; each class's FID is the by-hand value of its 6 samples against its own reals."""
    import data_prep
    from metric_utils import StandInFeatures

    generator = _conditional("progan")
    summary = _evaluate_cli_per_class(tmp_path, monkeypatch, generator, "--num", "6", "--metrics", metrics,
                                      whole_summary=True)
    assert {"precision", "recall"} <= set(summary)
    dataset = data_prep.open_dataset(summary["data"], 16)
    for label, (name, count) in enumerate(zip(CLASSES, (5, 7))):
        row = summary["per_class"][name]
        assert set(row) == {"num_real"} | per_class_metrics and row["num_real"] == count, (name, row)
        if "fid" in row:
            expected = _by_hand(generator, dataset, label, StandInFeatures(), 6)
            assert row["fid"] == pytest.approx(expected["fid"], rel=1e-4)


def _evaluate_cli_per_class_on(tmp_path, monkeypatch, data, *flags: str) -> dict:
    """``evaluate.py --per-class`` of the generator saved in ``tmp_path / "g"`` on ``data``: the JSON."""
    import evaluate
    import progan.metrics.inception
    from metric_utils import StandInFeatures

    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(progan.metrics.inception, "load_feature_network", lambda *a, **k: StandInFeatures())
    out = tmp_path / "m.json"
    assert evaluate.main(["--weights", str(tmp_path / "g"), "--data", str(data), *flags, "--per-class",
                          "--out", str(out)]) == 0
    return json.loads(out.read_text())


def test_evaluate_cli_per_class_caches_each_classs_real_statistics(tmp_path, monkeypatch):
    """``--per-class`` keeps its real statistics in the same cache as the whole-dataset score
    ($GAN_STUDIO_CACHE/fid-stats): one file for the 12 images, one for each class's 5 and 7, every one
    keyed by the dataset and recording its image count; a second run reads them and scores the same."""
    from safetensors import safe_open

    generator = _conditional("progan")
    first = _evaluate_cli_per_class(tmp_path, monkeypatch, generator, "--num", "6", whole_summary=True)
    files = sorted((tmp_path / "cache" / "fid-stats").glob("*.safetensors"))
    meta = []
    for path in files:
        with safe_open(str(path), framework="pt") as handle:
            meta.append(handle.metadata())
    assert sorted(int(m["num_images"]) for m in meta) == [5, 7, 12]
    assert len({m["dataset_key"] for m in meta}) == 3 and all(str(tmp_path / "data") in m["dataset_key"] for m in meta)
    stamps = [path.stat().st_mtime_ns for path in files]
    (tmp_path / "m.json").unlink()
    for folder in ("src", "data"):                                                   # prepared again, same key
        shutil.rmtree(tmp_path / folder)
    again = _evaluate_cli_per_class(tmp_path, monkeypatch, generator, "--num", "6", whole_summary=True)
    assert again["per_class"] == first["per_class"] and again["fid"] == first["fid"]
    assert sorted((tmp_path / "cache" / "fid-stats").glob("*.safetensors")) == files
    assert [path.stat().st_mtime_ns for path in files] == stamps                     # read, not rewritten
