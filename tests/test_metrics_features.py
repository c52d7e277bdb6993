"""Feature extraction, the real-statistics cache and network loading, with a tiny stand-in network."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from safetensors import safe_open
from torch import nn
from torch.utils.data import TensorDataset

from progan.metrics import inception
from metric_utils import StandInFeatures
from progan.metrics.features import (
    compute_features,
    compute_metrics,
    generated_features,
    images_to_uint8,
    latents_for_indices,
    real_statistics,
)


def _image_dataset(n: int = 20, resolution: int = 8, seed: int = 0) -> TensorDataset:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, resolution, resolution), generator=gen, dtype=torch.uint8)
    return TensorDataset(images)


@dataclass(frozen=True)
class _Config:
    latent_dim: int = 6


class ToyGenerator(nn.Module):
    """z [N, 6] -> images [N, 3, 8, 8] in [-1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.config = _Config()
        torch.manual_seed(1)
        self.linear = nn.Linear(6, 3 * 8 * 8)

    def forward(self, z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
        return torch.tanh(self.linear(z * psi)).view(-1, 3, 8, 8)


# ------------------------------------------------------------------------------------ features


def test_compute_features_dataset_and_batches_agree():
    dataset, network = _image_dataset(), StandInFeatures()
    from_dataset = compute_features(dataset, network, batch_size=7)
    batches = [dataset.tensors[0][i : i + 5] for i in range(0, 20, 5)]
    from_batches = compute_features(iter(batches), network)
    assert from_dataset.shape == (20, 16) and from_dataset.dtype == torch.float32
    torch.testing.assert_close(from_dataset, from_batches)
    assert compute_features(dataset, network, num=9, batch_size=4).shape == (9, 16)
    assert compute_features(iter(batches), network, num=7).shape == (7, 16)


class _Reads(torch.utils.data.Dataset):
    """Flat uint8 images [3, 4, 4] of value i; records which indices were read."""

    def __init__(self, n: int) -> None:
        self.n, self.read = n, []

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        self.read.append(int(i))
        return torch.full((3, 4, 4), i, dtype=torch.uint8)


def _means(images: torch.Tensor) -> torch.Tensor:
    return images.float().mean(dim=(1, 2, 3)).unsqueeze(1)  # [N, 1]: the image's value


def test_compute_features_of_a_dataset_reads_only_the_first_num_images():
    """num=5 of 8 in batches of 4: images 0..4 are read (not the rest of the second batch); num above the
    length takes all 8; the features are the images' values in order."""
    for num, read in ((5, [0, 1, 2, 3, 4]), (8, list(range(8))), (20, list(range(8)))):
        data = _Reads(8)
        got = compute_features(data, _means, num=num, batch_size=4, device="cpu")
        assert sorted(data.read) == read, num
        assert got[:, 0].tolist() == [float(i) for i in read], num


def test_compute_features_stops_pulling_batches_once_num_images_are_seen():
    """A lazy iterable (generated_features passes a generator of generator outputs): num=4 with batches of 2
    pulls exactly 2 batches, num=5 pulls 3 and keeps one image of the third."""
    for num, pulls in ((4, 2), (5, 3)):
        pulled = []

        def batches():
            for k in range(5):
                pulled.append(k)
                yield torch.full((2, 3, 4, 4), k, dtype=torch.uint8)

        got = compute_features(batches(), _means, num=num, device="cpu")
        assert len(pulled) == pulls, num
        assert got[:, 0].tolist() == [float(i // 2) for i in range(num)], num


def test_real_statistics_of_exactly_two_images_and_one_is_refused():
    """Two flat images of values 10 and 30 (feature: their value): mean 20, unbiased variance
    ((10 - 20)^2 + (30 - 20)^2) / (2 - 1) = 200."""
    data = [torch.full((3, 4, 4), v, dtype=torch.uint8) for v in (10, 30, 90)]
    stats = real_statistics(data, _means, dataset_key="k", num=2, device="cpu")
    assert stats.mu.tolist() == [20.0] and stats.sigma.reshape(-1).tolist() == [200.0]
    assert real_statistics(data[:2], _means, dataset_key="k", device="cpu").sigma.reshape(-1).tolist() == [200.0]
    for data_, num in ((data, 1), (data[:1], None), (data[:1], 5)):
        with pytest.raises(ValueError, match=r"^need at least 2 real images, got 1$"):
            real_statistics(data_, _means, dataset_key="k", num=num, device="cpu")


def test_generated_features_indices_lie_in_zero_to_num():
    generator, network = ToyGenerator(), StandInFeatures()
    whole = generated_features(generator, network, num=4, batch_size=4, seed=2)
    for ends in ([0], [3], [0, 3]):
        torch.testing.assert_close(generated_features(generator, network, num=4, seed=2, indices=ends), whole[ends])
    for bad in ([4], [-1], [0, 4]):
        with pytest.raises(ValueError, match=r"^indices must lie in \[0, 4\)$"):
            generated_features(generator, network, num=4, seed=2, indices=bad)


def test_images_to_uint8_matches_png_rounding():
    x = torch.tensor([-1.0, -0.999, 0.0, 0.5, 1.0, 1.5, -2.0])
    expected = torch.tensor([0, 0, 128, 191, 255, 255, 0], dtype=torch.uint8)
    assert torch.equal(images_to_uint8(x), expected)


def test_latents_depend_only_on_seed_and_index():
    all_z = latents_for_indices(range(10), 6, seed=3)
    odd = latents_for_indices(range(1, 10, 2), 6, seed=3)
    assert torch.equal(all_z[1::2], odd)
    assert not torch.equal(all_z, latents_for_indices(range(10), 6, seed=4))


def test_generated_features_same_for_any_sharding_and_batch_size():
    generator, network = ToyGenerator(), StandInFeatures()
    whole = generated_features(generator, network, num=12, batch_size=5, seed=2)
    # Two "ranks" with interleaved indices, as the evaluate CLI shards them, then gathered.
    rank0 = generated_features(generator, network, num=12, batch_size=3, seed=2, indices=range(0, 12, 2))
    rank1 = generated_features(generator, network, num=12, batch_size=4, seed=2, indices=range(1, 12, 2))
    gathered = torch.empty_like(whole)
    gathered[0::2], gathered[1::2] = rank0, rank1
    torch.testing.assert_close(gathered, whole, rtol=0, atol=1e-6)
    truncated = generated_features(generator, network, num=12, seed=2, generator_kwargs={"psi": 0.5})
    assert not torch.allclose(truncated, whole)


class ToyConditional(ToyGenerator):
    """ToyGenerator whose class label shifts every pixel: label k adds 0.4 k (class 0 unshifted)."""

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.linear(z) + 0.4 * labels.float()[:, None]).view(-1, 3, 8, 8)


def test_generated_sample_i_has_class_labels_i_in_every_batch_and_shard():
    """Sample i is drawn with class labels[i], also in later batches and in a rank's interleaved share:
    the expected features come from the toy generator applied to each (latent i, labels[i]) by hand."""
    generator, network = ToyConditional(), StandInFeatures()
    labels = torch.tensor([0, 1, 2, 0, 2, 1, 1, 0, 2, 2, 0, 1])
    z = latents_for_indices(range(12), 6, seed=2)
    with torch.no_grad():
        expected = network(images_to_uint8(generator(z, labels)))                        # [12, 16]
    whole = generated_features(generator, network, num=12, batch_size=5, seed=2, labels=labels)
    torch.testing.assert_close(whole, expected, rtol=0, atol=1e-6)
    share = generated_features(generator, network, num=12, batch_size=2, seed=2, labels=labels,
                               indices=range(1, 12, 3))
    torch.testing.assert_close(share, expected[1::3], rtol=0, atol=1e-6)
    assert not torch.allclose(expected[1], network(images_to_uint8(generator(z[1:2], labels[:1]))))


@pytest.mark.parametrize("desc", [None, "eval: generated"])
def test_generated_features_progress_bar_names_its_pass(capsys, desc):
    """The bar says which pass is running (an evaluation shows "eval: real features", then "eval:
    generated"): ``desc`` when given, else "generated" (the documented default), never the bare
    "features" of the shared feature loop underneath."""
    options = {} if desc is None else {"desc": desc}
    generated_features(ToyGenerator(), StandInFeatures(), num=4, progress=True, **options)
    err = capsys.readouterr().err
    assert f"{desc or 'generated'}:" in err and "features:" not in err, err


def test_generated_features_progress_bar_counts_this_shares_samples_and_is_off_without_progress(capsys):
    """The bar's total is the number of samples this call generates (indices 1, 4, 7, 10 of 12: "4/4", not
    12 and not unknown: the bar, drawn at the start and cleared at the end, shows "0/4"); ``progress=False`` prints
    nothing."""
    generated_features(ToyGenerator(), StandInFeatures(), num=12, batch_size=3, indices=range(1, 12, 3), progress=True)
    err = capsys.readouterr().err
    assert "0/4" in err and "/12" not in err, err
    generated_features(ToyGenerator(), StandInFeatures(), num=12, batch_size=3, progress=False)
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------------------- cache


def test_real_statistics_cache_hits_and_misses(tmp_path):
    dataset, network = _image_dataset(), StandInFeatures()
    first = real_statistics(dataset, network, dataset_key="abc", cache_dir=tmp_path, batch_size=8)
    calls = network.calls
    assert calls == 3  # 20 images in batches of 8
    second = real_statistics(dataset, network, dataset_key="abc", cache_dir=tmp_path, batch_size=8)
    assert network.calls == calls  # served from the cache
    torch.testing.assert_close(first.features, second.features)
    np.testing.assert_array_equal(first.mu, second.mu)
    np.testing.assert_array_equal(first.sigma, second.sigma)
    # Any change of the key recomputes: dataset checksum, image count, network.
    real_statistics(dataset, network, dataset_key="abd", cache_dir=tmp_path, batch_size=8)
    assert network.calls == calls + 3
    real_statistics(dataset, network, dataset_key="abc", num=10, cache_dir=tmp_path, batch_size=8)
    assert network.calls == calls + 5
    other = StandInFeatures(seed=1)
    real_statistics(dataset, other, dataset_key="abc", cache_dir=tmp_path, batch_size=8)
    assert other.calls == 3
    assert len(list(tmp_path.glob("*.safetensors"))) == 4


def test_real_statistics_cache_is_plain_safetensors(tmp_path):
    dataset, network = _image_dataset(resolution=8), StandInFeatures()
    stats = real_statistics(dataset, network, dataset_key="k", cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.safetensors")
    raw = path.read_bytes()
    assert b"\x80\x04" not in raw[:16] and b"PK\x03\x04" not in raw[:4]  # no pickle, no zip
    with safe_open(str(path), framework="pt") as handle:
        assert set(handle.keys()) == {"features", "mu", "sigma"}
        meta = handle.metadata()
        torch.testing.assert_close(handle.get_tensor("features"), stats.features)
    assert meta["dataset_key"] == "k" and meta["resolution"] == "8x8"
    assert meta["num_images"] == "20" and meta["network_sha256"] == network.sha256


def test_cache_is_written_beside_itself_and_renamed(tmp_path, monkeypatch):
    """Write-then-rename is atomic only within one filesystem, so the temporary file lives in the cache
    directory itself, never in the system temp dir (a cache on another disk would fail to rename, a full
    or missing /tmp would fail to write): here the system temp dir does not exist and the cache is still
    written, the rename staying inside the cache directory and leaving nothing else behind."""
    import os
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-system-tmp"))
    renames, replace = [], os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: renames.append((src, dst)) or replace(src, dst))
    cache = tmp_path / "cache"
    real_statistics(_image_dataset(), StandInFeatures(), dataset_key="k", cache_dir=cache)
    (path,) = cache.iterdir()
    assert path.suffix == ".safetensors" and [os.path.dirname(src) for src, _ in renames] == [str(cache)]


def test_corrupt_cache_is_recomputed(tmp_path):
    dataset, network = _image_dataset(), StandInFeatures()
    real_statistics(dataset, network, dataset_key="k", cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.safetensors")
    path.write_bytes(b"garbage")
    before = network.calls
    real_statistics(dataset, network, dataset_key="k", cache_dir=tmp_path)
    assert network.calls > before


def test_compute_metrics_on_stand_in_features():
    network = StandInFeatures()
    real = compute_features(_image_dataset(n=60, seed=0), network)
    same = compute_features(_image_dataset(n=60, seed=1), network)
    dark = compute_features(TensorDataset(_image_dataset(n=60, seed=2).tensors[0] // 4), network)
    close = compute_metrics(real, same, metrics=("fid", "kid", "pr"), kid_subset_size=50)
    far = compute_metrics(real, dark, kid_subset_size=50)
    assert set(close) == {"fid", "kid", "precision", "recall"}
    assert far["fid"] > 10 * close["fid"] and far["kid"] > close["kid"]
    assert far["precision"] == 0.0 and close["precision"] > 0.5
    assert compute_metrics(real, same, metrics=("fid",)).keys() == {"fid"}
    with pytest.raises(ValueError, match="unknown metrics"):
        compute_metrics(real, same, metrics=("is",))


def test_compute_metrics_precision_is_fakes_inside_reals_and_recall_reals_inside_fakes():
    """Precision and recall keep their orientation through compute_metrics (real first, fake second).

    By hand, 1-D features, k = 1 (Kynkaanniemi et al.: a point is inside a set's manifold when it lies
    within some member's distance to that member's nearest other member): reals 0..9 have radius 1
    each; fakes 4, 4.5, 5 (a mode collapse onto a tenth of the reals' spread) have radius 0.5 each.
    Every fake lies within 1 of a real -> precision 3/3 = 1. Only the reals 4 and 5 lie within 0.5 of
    a fake -> recall 2/10 = 0.2. Handing the same sets over the other way round (the fakes spread
    wider than the reals) trades the two values: precision 0.2, recall 1.
    """
    reals = np.arange(10.0)[:, None]
    fakes = np.array([[4.0], [4.5], [5.0]])
    collapsed = compute_metrics(reals, fakes, metrics=("pr",), pr_k=1)
    assert collapsed == {"precision": pytest.approx(1.0), "recall": pytest.approx(0.2)}
    spread = compute_metrics(fakes, reals, metrics=("pr",), pr_k=1)
    assert spread == {"precision": pytest.approx(0.2), "recall": pytest.approx(1.0)}


# ----------------------------------------------------------------------------- network loading


def test_sha256_mismatch_is_a_clear_error(tmp_path):
    fake = tmp_path / "default_1.pt"
    fake.write_bytes(b"not the inception network")
    with pytest.raises(inception.FeatureNetworkError, match="sha256 mismatch") as info:
        inception.load_feature_network(fake)
    assert "\n" not in str(info.value) and str(fake) in str(info.value)


def test_env_var_is_used_and_checked(tmp_path, monkeypatch):
    fake = tmp_path / "env.pt"
    fake.write_bytes(b"x")
    monkeypatch.setenv(inception.ENV_VAR, str(fake))
    assert inception.find_feature_network_file() == fake
    explicit = tmp_path / "explicit.pt"
    explicit.write_bytes(b"y")
    assert inception.find_feature_network_file(explicit) == explicit  # explicit path wins
    with pytest.raises(inception.FeatureNetworkError, match="sha256 mismatch"):
        inception.load_feature_network()


def test_missing_network_names_the_extra_and_env_var(monkeypatch):
    monkeypatch.delenv(inception.ENV_VAR, raising=False)
    monkeypatch.setattr(inception, "_installed_extra_file", lambda: None)
    with pytest.raises(inception.FeatureNetworkError) as info:
        inception.load_feature_network()
    message = str(info.value)
    assert '.[metrics]' in message and inception.ENV_VAR in message and "\n" not in message


def test_explicit_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(inception.FeatureNetworkError, match="not found at"):
        inception.load_feature_network(tmp_path / "nope.pt")


def test_resize_samples_like_tf_legacy_bilinear():
    # TF1 resize_bilinear(align_corners=False): output pixel j reads source j * in / out.
    x = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 1, 4, 4).contiguous()  # columns 0,1,2,3
    out = inception._resize_like_nvidia(x, 8)  # scale 1/2: sources 0, .5, 1, ..., 3, 3.5
    expected = torch.tensor([0, 0.5, 1, 1.5, 2, 2.5, 3, 3]).expand(8, 8)  # border clamps 3.5
    torch.testing.assert_close(out[0, 0], expected, atol=1e-5, rtol=0)
    same = inception._resize_like_nvidia(torch.rand(2, 3, 5, 5), 5)
    assert same.shape == (2, 3, 5, 5)


def test_a_cache_file_whose_header_names_other_fields_is_recomputed_and_replaced(tmp_path):
    """The file name holds only a truncated hash of the key: a file at that name whose header names
    another key (an older format, a collision) is not served; the fresh statistics replace it."""
    from safetensors.torch import save_file

    dataset, network = _image_dataset(), StandInFeatures()
    first = real_statistics(dataset, network, dataset_key="k", cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        fields = handle.metadata()
    stale = {"features": torch.zeros_like(first.features), "mu": torch.zeros(first.mu.shape, dtype=torch.float64),
             "sigma": torch.zeros(first.sigma.shape, dtype=torch.float64)}
    for key, value in (("format", "0"), ("dataset_key", "other"), ("num_images", "7")):
        save_file(stale, str(path), metadata={**fields, key: value})
        before = network.calls
        again = real_statistics(dataset, network, dataset_key="k", cache_dir=tmp_path)
        assert network.calls > before, key                                     # recomputed, not the stale file
        torch.testing.assert_close(again.features, first.features)
        with safe_open(str(path), framework="pt") as handle:
            assert handle.metadata() == fields                                 # and the file is fresh again


def test_features_refuse_what_is_not_image_tensors_and_an_empty_set():
    """Batches of NumPy arrays (an iterable of batches is not collated by a DataLoader) are named in a
    TypeError, not a confusing failure inside the network; a set with no images is a ValueError, not an
    empty feature matrix."""
    network = StandInFeatures()
    with pytest.raises(TypeError, match="expected image tensors, got ndarray"):
        compute_features(iter([np.zeros((2, 3, 8, 8), np.uint8)]), network)
    assert network.calls == 0
    with pytest.raises(ValueError, match="no images to compute features of"):
        compute_features(TensorDataset(torch.zeros(0, 3, 8, 8, dtype=torch.uint8)), network)


def test_features_run_where_a_buffer_only_network_lives():
    """With no ``device`` given, images go to the network's device, found from its buffers when it has no
    parameters (the meta device here stands for a GPU on a CPU-only machine)."""

    class BufferOnly(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.zeros(3, device="meta"))
            self.seen = []

        def forward(self, images):
            self.seen.append(images.device)
            return torch.zeros(images.shape[0], 4)

    network = BufferOnly()
    assert compute_features(_image_dataset(3), network, batch_size=2).shape == (3, 4)
    assert network.seen == [torch.device("meta")] * 2


def test_caching_needs_a_hashed_network_and_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    """The cache key includes the network's sha256, so a network without one cannot be cached (ValueError,
    before any image is embedded); a cache write that fails (disk full) raises and leaves neither a cache
    file nor its temporary file behind, so the next run recomputes instead of reading half a file."""
    import progan.metrics.features as features

    unhashed = StandInFeatures()
    del unhashed.sha256
    with pytest.raises(ValueError, match="needs a network with a `sha256` attribute"):
        real_statistics(_image_dataset(4), unhashed, dataset_key="k", cache_dir=tmp_path / "cache")
    assert unhashed.calls == 0

    def disk_full(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(features, "save_file", disk_full)
    with pytest.raises(OSError, match="No space left"):
        real_statistics(_image_dataset(4), StandInFeatures(), dataset_key="k", cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []
