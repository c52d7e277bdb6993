"""Memorization check (progan.metrics.nearest, evaluate.py --nearest, and the app's reader of its cache,
app.nearest_view) with a cheap stand-in feature network."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import evaluate
from app.nearest_view import nearest_index
from progan.metrics.features import compute_features, latents_for_indices
from progan.metrics.nearest import check_generator, memorization, nearest_neighbours, pairs_figure
from metric_utils import StandInFeatures

RES, NUM_REAL = 16, 48


def _training_images(n: int = NUM_REAL, seed: int = 0) -> torch.Tensor:
    """uint8 [n, 3, 16, 16]: smooth random colour fields, each image distinct (emoji-like flat regions)."""
    rng = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 3, 3, generator=rng)
    return (F.interpolate(low, size=RES, mode="bilinear", align_corners=True) * 255).round().to(torch.uint8)


class _Config:
    latent_dim, resolution, family = 8, RES, "progan"


def _index_of(z: torch.Tensor) -> torch.Tensor:
    return (z[:, 0].abs() * 1e4).long() % NUM_REAL


class Verbatim(nn.Module):
    """A 'generator' that returns training images verbatim, picked by its latent."""

    def __init__(self, reals: torch.Tensor) -> None:
        super().__init__()
        self.config = _Config()
        self.register_buffer("reals", reals.float() / 127.5 - 1)           # exact inverse of images_to_uint8
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.reals[_index_of(z)]


class Noise(Verbatim):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        rng = torch.Generator().manual_seed(int(_index_of(z)[0]))
        return torch.rand(z.shape[0], 3, RES, RES, generator=rng) * 2 - 1


def test_nearest_neighbours_match_brute_force():
    rng = torch.Generator().manual_seed(0)
    q, r = torch.randn(30, 5, generator=rng), torch.randn(40, 5, generator=rng)
    dist, index = nearest_neighbours(q, r, batch_size=7)
    full = np.linalg.norm(q.numpy()[:, None] - r.numpy()[None], axis=2)
    np.testing.assert_array_equal(index.numpy(), full.argmin(1))
    np.testing.assert_allclose(dist.numpy(), full.min(1), rtol=1e-6)
    self_dist, self_index = nearest_neighbours(r, r, exclude_self=True, batch_size=7)
    np.fill_diagonal(full_rr := np.linalg.norm(r.numpy()[:, None] - r.numpy()[None], axis=2), np.inf)
    np.testing.assert_array_equal(self_index.numpy(), full_rr.argmin(1))
    assert torch.all(self_index != torch.arange(40)) and torch.all(self_dist > 0)
    result = memorization(q, r)
    assert result.threshold == pytest.approx(float(np.median(full_rr.min(1))))
    assert result.fraction_below == pytest.approx(float((full.min(1) < result.threshold).mean()))
    summary = result.summary()                                            # 30 samples: an even count
    assert summary["nearest_median_distance"] == pytest.approx(float(np.median(full.min(1))))
    assert summary["nearest_min_distance"] == pytest.approx(float(full.min()))
    assert (summary["num_generated"], summary["num_real"]) == (30, 40)


def test_nearest_neighbours_at_their_smallest_sets():
    """Two rows (0, 0) and (3, 4), each other's neighbour at 5, are enough to exclude self; one is not. One
    reference row is enough to search: (0, 0) and (1, 0) are 5 and sqrt(20) from (3, 4). No rows are not."""
    two = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    dist, index = nearest_neighbours(two, two, exclude_self=True)
    assert dist.tolist() == [5.0, 5.0] and index.tolist() == [1, 0]
    with pytest.raises(ValueError, match=r"^exclude_self needs the same \[N, D\] set twice, with at least 2 rows$"):
        nearest_neighbours(two[:1], two[:1], exclude_self=True)
    dist, index = nearest_neighbours(torch.tensor([[0.0, 0.0], [1.0, 0.0]]), two[1:])
    assert dist.tolist() == pytest.approx([5.0, 20 ** 0.5], rel=1e-12) and index.tolist() == [0, 0]
    with pytest.raises(ValueError, match=r"^no reference features to search$"):
        nearest_neighbours(two, two[:0])


def test_memorization_of_two_reals_counts_samples_strictly_below_the_threshold():
    """Reals at 0 and 2 on a line: each other's neighbour at 2, so the threshold (median) is 2. Samples at 4, 0.5
    and 1 lie 2, 0.5 and 1 from a real: the one exactly at the threshold is not below it (2 of 3)."""
    result = memorization(torch.tensor([[4.0], [0.5], [1.0]]), torch.tensor([[0.0], [2.0]]))
    assert result.threshold == 2.0 and result.real_distances.tolist() == [2.0, 2.0]
    assert result.distances.tolist() == [2.0, 0.5, 1.0] and result.indices.tolist() == [1, 0, 0]
    assert result.fraction_below == pytest.approx(2 / 3, rel=1e-12)
    with pytest.raises(ValueError, match=r"^need at least 2 real images for real-to-real distances, got 1$"):
        memorization(torch.tensor([[1.0]]), torch.tensor([[0.0]]))


def test_check_generator_takes_one_sample_and_zero_pairs_and_refuses_less():
    reals = _training_images()
    network = StandInFeatures()
    real_features = compute_features(torch.utils.data.TensorDataset(reals), network)
    result, closest = check_generator(Verbatim(reals), network, real_features, num=1, pairs=0)
    assert closest == {} and result.distances.shape == (1,)
    assert int(result.indices[0]) == int(_index_of(latents_for_indices([0], 8, seed=0))[0])  # its own original
    assert list(check_generator(Verbatim(reals), network, real_features, num=1, pairs=1)[1]) == [0]
    for num, pairs in ((0, 0), (1, -1)):
        with pytest.raises(ValueError, match=rf"^need num >= 1 and pairs >= 0; got num={num}, pairs={pairs}$"):
            check_generator(Verbatim(reals), network, real_features, num=num, pairs=pairs)


def test_check_generator_progress_bar_counts_the_samples_and_is_off_without_progress(capsys):
    """With ``progress`` the "nearest" bar counts the 5 samples as they stream ("5/5"); without, nothing."""
    reals = _training_images()
    network = StandInFeatures()
    real_features = compute_features(torch.utils.data.TensorDataset(reals), network)
    capsys.readouterr()
    check_generator(Verbatim(reals), network, real_features, num=5, pairs=0, batch_size=2, progress=True)
    err = capsys.readouterr().err
    assert "nearest:" in err and "5/5" in err, err
    check_generator(Verbatim(reals), network, real_features, num=5, pairs=0, batch_size=2)
    assert capsys.readouterr().err == ""

def test_verbatim_copies_score_near_one_with_the_right_neighbours():
    reals = _training_images()
    network = StandInFeatures()
    real_features = compute_features(torch.utils.data.TensorDataset(reals), network)
    result, closest = check_generator(Verbatim(reals), network, real_features, num=40, pairs=5, batch_size=16)
    expected = _index_of(latents_for_indices(range(40), 8, seed=0))
    assert result.fraction_below == pytest.approx(1.0)
    assert torch.equal(result.indices, expected)                          # each copy finds its own original
    assert float(result.distances.max()) < 1e-3
    assert len(closest) == 5
    for i, image in closest.items():                                      # kept pixels are the samples'
        np.testing.assert_array_equal(image, reals[int(expected[i])].permute(1, 2, 0).numpy())


class Shifted(Verbatim):
    """Training images shifted in brightness by an amount each latent sets: every sample at its own distance
    from the training set (verbatim copies all sit at distance 0, so any k of them are "the closest k")."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (self.reals[_index_of(z)] + 0.3 * z[:, 1, None, None, None].abs().clamp(max=2.0)).clamp(-1, 1)


def test_the_kept_pairs_are_the_samples_nearest_a_training_image_across_batches():
    """``check_generator`` keeps the pixels of the ``pairs`` samples nearest to a training image, picked
    across batches; the reference ranks every sample's distance by brute force (numpy) on the features
    of the same samples."""
    from progan.images import images_to_uint8

    reals = _training_images()
    network = StandInFeatures()
    real_features = compute_features(torch.utils.data.TensorDataset(reals), network)
    generator = Shifted(reals)
    with torch.no_grad():
        samples = images_to_uint8(generator(latents_for_indices(range(40), 8, seed=0)))
    full = np.linalg.norm(network(samples).numpy()[:, None] - real_features.numpy()[None], axis=2).min(1)
    ranked = np.sort(full)
    assert ranked[4] < ranked[5] - 1e-4                                   # "the closest 5" is one set
    expected = np.argsort(full)[:5].tolist()
    assert max(expected) >= 16 and set(expected) != set(range(5))        # found past the first batch
    result, closest = check_generator(generator, network, real_features, num=40, pairs=5, batch_size=16)
    assert sorted(result.closest(5)) == sorted(expected)
    assert sorted(closest) == sorted(expected)
    for i, image in closest.items():
        np.testing.assert_array_equal(image, samples[i].permute(1, 2, 0).numpy())


def test_noise_scores_near_zero():
    reals = _training_images()
    network = StandInFeatures()
    real_features = compute_features(torch.utils.data.TensorDataset(reals), network)
    result, _ = check_generator(Noise(reals), network, real_features, num=40, pairs=3, batch_size=1)
    assert result.fraction_below <= 0.05
    # held-out reals from the same distribution sit near the 50% the median threshold implies
    held_out = compute_features(torch.utils.data.TensorDataset(_training_images(200, seed=1)), network)
    assert 0.2 < memorization(held_out, real_features).fraction_below < 0.8


def test_pairs_figure_layout():
    for side, cell in ((2, 96), (5, 100), (128, 128)):  # the default cell: the side's smallest multiple >= 96
        small = np.zeros((side, side, 3), np.uint8)
        assert pairs_figure([(small, small, "a")]).size == (2 * cell + 2, cell + 16)
    image = np.zeros((16, 16, 3), np.uint8)
    figure = pairs_figure([(image, image, "a")] * 5, columns=4)
    assert figure.size == (4 * (2 * 96 + 2 + 6) - 6, 2 * (96 + 16 + 6) - 6)
    with pytest.raises(ValueError):
        pairs_figure([])


@pytest.fixture
def cli_reals(tmp_path, monkeypatch) -> tuple:
    """``(folder, network)`` for evaluate.py's --nearest: 12 training images as PNGs, and the stand-in
    feature network it loads (counting its calls) instead of Inception."""
    folder = tmp_path / "reals"
    folder.mkdir()
    for i, image in enumerate(_training_images(12)):
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{i:02d}.png")
    network = StandInFeatures()
    monkeypatch.setattr("progan.metrics.inception.load_feature_network", lambda *a, **k: network)
    return folder, network


def test_evaluate_nearest_cli(weights, cli_reals, tmp_path, capsys):
    folder, network = cli_reals
    args = ["--weights", str(weights["progan"]), "--data", str(folder), "--nearest", "--num", "10", "--pairs", "3",
            "--figure", str(tmp_path / "pairs.png"), "--out", str(tmp_path / "n.json"), "--batch", "4"]
    assert evaluate.main(args) == 0
    summary = json.loads((tmp_path / "n.json").read_text())
    assert summary["num_generated"] == 10 and summary["num_real"] == 12
    assert 0.0 <= summary["nearest_fraction_below"] <= 1.0
    with Image.open(tmp_path / "pairs.png") as figure:
        assert figure.size == (3 * (2 * 96 + 2 + 6) - 6, 96 + 16)
    calls = network.calls
    assert evaluate.main(args) == 0
    assert network.calls - calls == 3                                     # reals from the cache: 10 samples / 4
    capsys.readouterr()
    assert evaluate.main(args[:-2] + ["--batch", "4", "--pairs", "0"]) == 2
    assert "--pairs must be >= 1" in capsys.readouterr().err
    assert evaluate.main(args + ["--num-real", "5"]) == 2
    assert "drop --num-real" in capsys.readouterr().err


def test_evaluate_nearest_cli_draws_the_samples_of_its_seed(weights, cli_reals, tmp_path, monkeypatch, capsys):
    """``evaluate.py --nearest --seed S`` checks sample i = latent i of seed S, as the metrics do: its
    summary is that of ``check_generator(seed=S)`` against the same real features, and not seed 0's."""
    from data_prep import open_dataset
    from families import load_generator

    folder, network = cli_reals
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    generator = load_generator(weights["progan"]).eval()
    real = compute_features(open_dataset(folder, 16), network, batch_size=4)
    keys = ("nearest_fraction_below", "nearest_median_distance", "nearest_min_distance")

    def cli(seed: int) -> dict:
        capsys.readouterr()
        assert evaluate.main(["--weights", str(weights["progan"]), "--data", str(folder), "--nearest", "--num", "10",
                              "--pairs", "2", "--figure", str(tmp_path / "pairs.png"), "--batch", "4",
                              "--seed", str(seed)]) == 0
        summary = json.loads(capsys.readouterr().out)
        return {k: summary[k] for k in keys}

    direct = check_generator(generator, network, real, num=10, pairs=2, batch_size=4, seed=7)[0].summary()
    seven = cli(7)
    assert seven == pytest.approx({k: direct[k] for k in keys})
    assert seven != pytest.approx(cli(0))


def test_evaluate_nearest_scores_the_truncated_samples_of_psi(cli_reals, tmp_path, monkeypatch, capsys):
    """``evaluate.py --nearest --psi 0.5`` checks the samples the summary names: StyleGAN-lite's synthesis
    receives ``w' = w_avg + psi * (w - w_avg)`` (Karras et al. 2019, appendix B) of latent i of the seed,
    built here by hand from the mapping network, with a w_avg away from zero; psi 1 gives the raw w."""
    from families import FAMILIES
    from stylegan_lite.networks import Generator, SynthesisNetwork

    folder, _ = cli_reals
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    generator = Generator(FAMILIES["stylegan_lite"].presets["tiny"]).eval()
    with torch.no_grad():
        generator.w_avg.copy_(torch.randn(generator.config.w_dim))
    generator.save_pretrained(tmp_path / "g")
    seen: list[torch.Tensor] = []
    forward = SynthesisNetwork.forward

    def recording(self, ws, **kwargs):
        seen.append(ws.detach().clone())
        return forward(self, ws, **kwargs)

    monkeypatch.setattr(SynthesisNetwork, "forward", recording)

    def cli(psi: float) -> tuple[torch.Tensor, dict]:
        seen.clear()
        capsys.readouterr()
        assert evaluate.main(["--weights", str(tmp_path / "g"), "--data", str(folder), "--nearest", "--num", "6",
                              "--pairs", "2", "--figure", str(tmp_path / "pairs.png"), "--batch", "4",
                              "--seed", "3", "--psi", str(psi)]) == 0
        return torch.cat(seen), json.loads(capsys.readouterr().out)

    with torch.no_grad():
        w = generator.map(latents_for_indices(range(6), generator.config.latent_dim, seed=3))  # [6, w_dim]
    w_avg = generator.w_avg
    half, summary = cli(0.5)
    assert summary["psi"] == 0.5 and summary["num_generated"] == 6
    expected = (w_avg + 0.5 * (w - w_avg)).unsqueeze(1).expand(-1, generator.num_ws, -1)
    torch.testing.assert_close(half, expected, rtol=1e-5, atol=1e-5)
    full, _ = cli(1.0)
    torch.testing.assert_close(full, w.unsqueeze(1).expand(-1, generator.num_ws, -1), rtol=1e-5, atol=1e-5)
    assert (half - full).abs().max() > 0.1



def test_evaluate_nearest_figure_draws_each_sample_and_its_training_image_upright(weights, cli_reals, tmp_path,
                                                                                  monkeypatch):
    """Pair k of ``--figure`` (one row of 3 pairs of 16 px images drawn 6x: 96 px cells, 2 px apart, pairs 6 px
    apart) shows sample i of seed 0 on the left and training image j, as its PNG holds it, on the right, for the
    i and j its label names: pixel (y, x) of each cell is pixel (y // 6, x // 6) of the image, not (x, y)."""
    import re

    import progan.metrics.nearest as nearest
    from families import load_generator
    from progan.images import images_to_uint8

    folder, _ = cli_reals
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    labels: list[str] = []
    drawn = nearest.pairs_figure

    def recording(pairs, **kwargs):
        labels.extend(label for _, _, label in pairs)
        return drawn(pairs, **kwargs)

    monkeypatch.setattr(nearest, "pairs_figure", recording)
    assert evaluate.main(["--weights", str(weights["progan"]), "--data", str(folder), "--nearest", "--num", "10",
                          "--pairs", "3", "--figure", str(tmp_path / "pairs.png"), "--batch", "4"]) == 0
    generator = load_generator(weights["progan"]).eval()
    with Image.open(tmp_path / "pairs.png") as saved:
        figure = np.asarray(saved.convert("RGB"))
    assert len(labels) == 3
    for k, label in enumerate(labels):
        i, j = map(int, re.match(r"#(\d+) -> real (\d+): ", label).groups())
        with torch.no_grad():
            sample = images_to_uint8(generator(latents_for_indices([i], generator.config.latent_dim, seed=0)))
        with Image.open(folder / f"{j:02d}.png") as png:
            real = np.asarray(png.convert("RGB"))
        x = k * (2 * 96 + 2 + 6)
        for left, image in ((x, sample[0].permute(1, 2, 0).numpy()), (x + 96 + 2, real)):
            np.testing.assert_array_equal(figure[:96, left:left + 96], image.repeat(6, axis=0).repeat(6, axis=1))


class _Copier(nn.Module):
    """A 'generator' whose sample i (latent i of seed 0) is training image 11 - i verbatim: never the training
    image of the sample's own index, so a pairing by position is told apart from the nearest one."""

    def __init__(self, reals: torch.Tensor, num: int) -> None:
        super().__init__()
        self.config = _Config()
        self.register_buffer("reals", reals.float() / 127.5 - 1)           # exact inverse of images_to_uint8
        self.register_buffer("latents", latents_for_indices(range(num), _Config.latent_dim, seed=0))
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        sample = torch.cdist(z, self.latents).argmin(dim=1)                 # which latent i each row is
        return self.reals[len(self.reals) - 1 - sample]


def test_evaluate_nearest_figure_pairs_each_sample_with_the_training_image_it_copies(cli_reals, tmp_path,
                                                                                     monkeypatch):
    """A generator that copies training image 11 - i as its sample i: every pair of ``--figure`` is that sample
    beside training image 11 - i (its nearest, at feature distance 0), the label names ``real 11 - i`` at 0.0,
    and both cells of every pair hold the same pixels. The expected image comes from the copier's construction,
    not from the search; a pairing of sample i with training image i would show two different images."""
    import re

    import progan.metrics.nearest as nearest

    folder, _ = cli_reals
    reals = _training_images(12)                                            # the PNGs of cli_reals, 00..11
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("families.load_generator", lambda *a, **k: _Copier(reals, 10))
    drawn: list[tuple] = []
    figure = nearest.pairs_figure

    def recording(pairs, **kwargs):
        drawn.extend(pairs)
        return figure(pairs, **kwargs)

    monkeypatch.setattr(nearest, "pairs_figure", recording)
    assert evaluate.main(["--weights", "unused", "--data", str(folder), "--nearest", "--num", "10",
                          "--pairs", "10", "--figure", str(tmp_path / "pairs.png"), "--batch", "4"]) == 0
    assert len(drawn) == 10
    seen = set()
    for fake, real, label in drawn:
        i, j, distance = re.match(r"#(\d+) -> real (\d+): (\S+)$", label).groups()
        i, j = int(i), int(j)
        seen.add(i)
        assert (j, float(distance)) == (11 - i, 0.0), label
        np.testing.assert_array_equal(fake, reals[11 - i].permute(1, 2, 0).numpy())
        np.testing.assert_array_equal(real, fake)
    assert seen == set(range(10))


class _Pixels(nn.Module):
    """Features = the uint8 pixels themselves in [C, H, W] order: a transposed or channel-moved input lands
    elsewhere in feature space."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.double().flatten(1)


def test_app_nearest_view_returns_the_training_image_upright():
    """app.nearest_view.NearestIndex: an [R, R, 3] picture that is training image 2 (asymmetric random pixels,
    every channel different) finds index 2 at distance 0, and the real image comes back [R, R, 3] as stored:
    pixel (y, x) channel c is the dataset's [c, y, x]."""
    from torch.utils.data import TensorDataset

    from app.nearest_view import NearestIndex

    reals = torch.randint(0, 256, (4, 3, 5, 5), generator=torch.Generator().manual_seed(4), dtype=torch.uint8)
    network = _Pixels()
    index = NearestIndex(network, TensorDataset(reals), network(reals))
    picture = np.stack([reals[2, c].numpy() for c in range(3)], axis=-1)        # [5, 5, 3], built channel by channel
    match = index.match(picture)
    assert match.index == 2 and match.distance == 0.0 and match.num_real == 4
    assert match.real.shape == (5, 5, 3)
    for c in range(3):
        np.testing.assert_array_equal(match.real[..., c], reals[2, c].numpy())


def test_nearest_without_cached_features_names_the_command():
    with pytest.raises(ValueError, match="evaluate.py --nearest") as info:
        nearest_index(16)  # the test cache is empty: no prepared images, no features
    assert "\n" not in str(info.value)


class _HashedPixels(_Pixels):
    sha256 = "stand-in-pixels"   # the real-feature cache is keyed by the network's hash


def test_app_nearest_index_refuses_without_the_network_then_without_features_then_serves_from_the_cache(
        tmp_path, monkeypatch):
    """The built-in set prepared on the server (4 random 16 px images): without the Inception network the
    view says so in one line; with it but no cached features, it names the count, resolution and command
    and embeds nothing; once ``evaluate.py --nearest`` has cached the features, image 3 finds itself at
    distance 0, and the next request reuses the same index (loaded once per resolution)."""
    import app.nearest_view as view
    import progan.metrics.inception as inception
    from data_prep.builtin import default_cache_root
    from data_prep.dataset import open_dataset
    from data_prep.pipeline import prepare
    from progan.hub import cache_root
    from progan.metrics.evaluation import dataset_key
    from progan.metrics.features import real_statistics

    monkeypatch.setattr(view, "_INDEXES", {})
    pictures = np.random.default_rng(3).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    (tmp_path / "src").mkdir()
    for i, picture in enumerate(pictures):
        Image.fromarray(picture).save(tmp_path / "src" / f"{i}.png")
    folder = prepare(tmp_path / "src", default_cache_root() / "openmoji-16", resolution=16, pyramid=False,
                     workers=1, progress=False)

    def missing(*args, **kwargs):
        raise inception.FeatureNetworkError("no Inception weights in /cache/x\nrun: pip install ...")

    monkeypatch.setattr(inception, "load_feature_network", missing)
    with pytest.raises(ValueError) as info:
        nearest_index(16)
    assert str(info.value) == "the nearest-image view needs the Inception network: no Inception weights in /cache/x"

    class Counting(_HashedPixels):
        calls = 0

        def forward(self, images):
            Counting.calls += 1
            return super().forward(images)

    network = Counting()
    monkeypatch.setattr(inception, "load_feature_network", lambda *a, **k: network)
    with pytest.raises(ValueError, match=r"no cached Inception features of the 4 training images at 16 px") as info:
        nearest_index(16)
    assert "run once: python evaluate.py --nearest" in str(info.value) and Counting.calls == 0

    dataset = open_dataset(folder, 16)
    real_statistics(dataset, network, dataset_key=dataset_key("", dataset), cache_dir=cache_root() / "fid-stats")
    index = nearest_index(16)
    match = index.match(pictures[3])
    assert match.index == 3 and match.distance == 0.0 and match.num_real == 4
    np.testing.assert_array_equal(match.real, pictures[3])
    assert nearest_index(16) is index
