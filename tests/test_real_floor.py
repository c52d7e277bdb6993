"""The metric floor holds out a random subset, so a dataset stored in content order still floors near 0."""
from __future__ import annotations

import pytest
import torch

from metric_utils import StandInFeatures
from progan.metrics.features import compute_features, compute_metrics
from progan.metrics.floor import held_out_split, real_floor


def _sorted_by_colour(num: int = 240) -> torch.Tensor:
    """uint8 [num, 3, 8, 8]: the first half red-ish, the second half blue-ish (stored in content order)."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 96, (num, 3, 8, 8), generator=g)
    images[: num // 2, 0] += 150  # red
    images[num // 2:, 2] += 150   # blue
    return images.to(torch.uint8)


def test_the_split_is_a_seeded_random_partition():
    reference, held_out = held_out_split(100, 30, seed=3)
    assert len(held_out) == 30 and len(reference) == 70
    assert sorted(torch.cat([reference, held_out]).tolist()) == list(range(100))
    again, other = held_out_split(100, 30, seed=3)[1], held_out_split(100, 30, seed=4)[1]
    assert torch.equal(held_out, again) and not torch.equal(held_out, other)
    assert held_out.tolist() != list(range(70, 100))  # not the tail
    with pytest.raises(ValueError, match="at least 2 images on each side"):
        held_out_split(10, 9, seed=0)


def test_a_dataset_in_content_order_floors_near_zero_kid_where_the_last_n_split_does_not():
    features = compute_features(iter(_sorted_by_colour().split(32)), StandInFeatures())  # [240, 16]
    held = 60
    # the old split: the last 60 images (all blue) against the first 180 (120 red, 60 blue)
    tail = compute_metrics(features[:-held], features[-held:], kid_subset_size=held)
    assert tail["kid"] > 0.05 and tail["recall"] < 0.5  # the difference in content, not the sample size
    for seed in (0, 1):
        floor = real_floor(features, num_held_out=held, seed=seed)
        # KID is unbiased: same distribution -> 0 up to sampling noise, far below the tail split's value
        assert abs(floor["kid"]) < 0.03 * tail["kid"], (seed, floor["kid"], tail)
        assert floor["fid"] < 0.03 * tail["fid"], (seed, floor["fid"], tail)
        assert floor["precision"] > 0.8 and floor["recall"] > 0.8


def _floor_script_on_random_images(tmp_path, monkeypatch, *, count, seed, name):
    """scripts/real_floor.py imported, and a prepared dataset of `count` random 8x8 images, scored by the
    stand-in feature network with its own statistics cache."""
    import sys
    from pathlib import Path

    import numpy as np
    from PIL import Image

    import data_prep
    import progan.metrics.inception

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import real_floor as script

    source = tmp_path / "src"
    source.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(source / name.format(i))
    data = data_prep.prepare(source, tmp_path / "data", resolution=8, workers=1, progress=False)
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(progan.metrics.inception, "load_feature_network", lambda *a, **k: StandInFeatures())
    return script, data


def test_real_floor_script_reports_the_mean_over_its_seeds(tmp_path, monkeypatch, capsys):
    """scripts/real_floor.py: each seed's row is `real_floor` of that seed's split on the dataset's features,
    the top-level numbers (what the model card reads) are the mean over the seeds, not one seed's row, and
    the counts are those of the split."""
    import json

    import data_prep

    script, data = _floor_script_on_random_images(tmp_path, monkeypatch, count=16, seed=0, name="{:02d}.png")
    out = tmp_path / "floor.json"
    assert script.main(["--resolution", "8", "--data", str(data), "--held-out", "5", "--seeds", "0", "3",
                        "--out", str(out)]) == 0
    summary = json.loads(out.read_text())
    features = compute_features(data_prep.open_dataset(data, 8), StandInFeatures())
    rows = [real_floor(features, num_held_out=5, seed=seed) for seed in (0, 3)]
    assert [row["seed"] for row in summary["per_seed"]] == [0, 3]
    assert (summary["num_held_out"], summary["num_reference"], summary["resolution"]) == (5, 11, 8)
    for key in ("fid", "kid", "precision", "recall"):
        for got, row in zip(summary["per_seed"], rows):
            assert got[key] == pytest.approx(row[key], rel=1e-6, abs=1e-9), key
        assert summary[key] == pytest.approx((rows[0][key] + rows[1][key]) / 2, rel=1e-6, abs=1e-9), key
    assert rows[0]["fid"] != pytest.approx(rows[1]["fid"], rel=1e-3)       # the seeds' splits differ


def test_the_floor_is_the_metrics_of_its_split_with_kid_subsets_of_its_seed():
    """``real_floor`` with seed s: the metrics of held_out_split(seed=s)'s held-out rows against the others,
    KID's random subsets of the 180 reference rows drawn with seed s too (seed 0's subsets give another KID)."""
    features = compute_features(iter(_sorted_by_colour().split(32)), StandInFeatures())  # [240, 16]
    for seed in (1, 2):
        reference, held = held_out_split(240, 60, seed=seed)
        expected = compute_metrics(features[reference], features[held], seed=seed, kid_subset_size=60)
        got = real_floor(features, num_held_out=60, seed=seed)
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
        other = compute_metrics(features[reference], features[held], metrics=("kid",), seed=0, kid_subset_size=60)
        assert other["kid"] != pytest.approx(expected["kid"], rel=1e-6, abs=1e-12)


def test_the_held_out_count_leaves_at_least_two_images_on_each_side():
    """Of 6 images, 2 and 4 held out are the extremes (2 left on the other side); 1 and 5 are refused."""
    for held in (2, 4):
        reference, held_out = held_out_split(6, held, seed=0)
        assert (len(held_out), len(reference)) == (held, 6 - held)
        assert sorted(torch.cat([reference, held_out]).tolist()) == list(range(6))
    for held in (1, 5):
        with pytest.raises(ValueError, match=rf"^the held-out count must leave at least 2 images on each side: "
                                             rf"{held} of 6$"):
            held_out_split(6, held, seed=0)


def test_kid_subsets_of_the_floor_are_the_smallest_of_the_size_asked_and_both_sides():
    """4 held out of 10 with kid_subset_size 2: subsets of 2 rows (the size asked, below both sides); asked for
    1000, subsets of 4 (the held-out side). Each equals KID of the split at that subset size, and they differ."""
    features = torch.randn(10, 4, generator=torch.Generator().manual_seed(0))
    reference, held = held_out_split(10, 4, seed=5)
    kid = {size: compute_metrics(features[reference], features[held], metrics=("kid",), seed=5,
                                 kid_subset_size=size)["kid"] for size in (2, 4)}
    assert kid[2] != pytest.approx(kid[4], rel=1e-6)
    assert real_floor(features, num_held_out=4, seed=5, kid_subset_size=2)["kid"] == pytest.approx(kid[2], rel=1e-12)
    assert real_floor(features, num_held_out=4, seed=5)["kid"] == pytest.approx(kid[4], rel=1e-12)


def test_the_script_scores_4_and_n_minus_4_held_out_and_refuses_3_and_n_minus_3(tmp_path, monkeypatch, capsys):
    """scripts/real_floor.py on 9 images: precision/recall need k + 1 = 4 rows on each side (3 nearest
    neighbours besides the row itself), so --held-out 4 and 5 are scored (exit 0) and 3 and 6 are the
    one-line error (exit 2), not a ValueError traceback from the metric (the old bound of 2 let 2 and 3 crash)."""
    script, data = _floor_script_on_random_images(tmp_path, monkeypatch, count=9, seed=1, name="{}.png")
    for held_out, code in ((3, 2), (4, 0), (5, 0), (6, 2)):
        args = ["--resolution", "8", "--data", str(data), "--held-out", str(held_out), "--seeds", "0",
                "--out", str(tmp_path / f"floor{held_out}.json")]
        assert script.main(args) == code, held_out
        assert ("--held-out must leave at least 4" in capsys.readouterr().err) == (code == 2), held_out


@pytest.mark.parametrize("given", [False, True])
def test_the_script_caches_real_features_under_evaluate_pys_key(tmp_path, monkeypatch, capsys, given):
    """The real features are cached under the key evaluate.py uses for the same data, so each reuses the
    other's: for the built-in OpenMoji set (no --data) the key names "builtin-openmoji", not the folder it was
    rendered into; for --data DIR it names DIR's absolute path. The JSON's "data" is the folder either way."""
    import json

    import data_prep
    import progan.metrics.features

    script, data = _floor_script_on_random_images(tmp_path, monkeypatch, count=9, seed=2, name="{}.png")
    rendered = []
    monkeypatch.setattr(data_prep, "builtin_openmoji_for_processes",
                        lambda resolution, acc, **kw: rendered.append(resolution) or data)
    keys, real_statistics = [], progan.metrics.features.real_statistics
    monkeypatch.setattr(progan.metrics.features, "real_statistics",
                        lambda *a, dataset_key, **kw: keys.append(dataset_key) or real_statistics(
                            *a, dataset_key=dataset_key, **kw))
    monkeypatch.chdir(tmp_path)
    args = ["--resolution", "8", "--held-out", "4", "--seeds", "0"] + (["--data", "data"] if given else [])
    assert script.main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert rendered == ([] if given else [8])
    assert len(keys) == 1
    key = json.loads(keys[0])
    assert key["data"] == (str((tmp_path / "data").resolve()) if given else "builtin-openmoji")
    assert key["length"] == 9
    assert summary["data"] == ("data" if given else str(data))


def test_the_script_loads_the_feature_network_on_the_accelerators_device(tmp_path, monkeypatch):
    """On a GPU the Inception network runs there, not on the CPU it loads to by default (an Accelerator
    whose device is ``meta`` stands in for the GPU)."""
    import accelerate
    import progan.metrics.inception

    script, data = _floor_script_on_random_images(tmp_path, monkeypatch, count=8, seed=0, name="{:02d}.png")

    class Loaded(Exception):
        pass

    class MetaAccelerator(accelerate.Accelerator):
        @property
        def device(self):
            return torch.device("meta")

    def load(*args, device="cpu", **kwargs):
        raise Loaded(torch.device(device))

    monkeypatch.setattr(accelerate, "Accelerator", MetaAccelerator)
    monkeypatch.setattr(progan.metrics.inception, "load_feature_network", load)
    with pytest.raises(Loaded) as loaded:
        script.main(["--resolution", "8", "--data", str(data), "--held-out", "4", "--out", str(tmp_path / "f.json")])
    assert loaded.value.args == (torch.device("meta"),)
