"""The "Your image" tab's server code in-process (fast): upload bounds, deletion, streamed steps, ``image`` keys."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app.keys import parse_keys
from app.interpolation import render_interpolation
from app.limits import DEFAULT_LIMITS, Limits
from app.mixing import render_mixing
from app.projection import Projection
from app.projection.ui import project_status, read_upload, run_projection
from families import FAMILIES


def _png(path, size=(40, 30)):
    Image.new("RGB", size, (230, 180, 30)).save(path)
    return path


def test_upload_is_read_once_and_deleted(tmp_path):
    folder = tmp_path / "upload-hash"
    folder.mkdir()
    path = _png(folder / "secret.png")
    data, name = read_upload(str(path), DEFAULT_LIMITS)
    assert data[:4] == b"\x89PNG" and name == "secret.png"
    assert not path.exists() and not folder.exists()
    with pytest.raises(ValueError, match="upload it again"):
        read_upload(str(path), DEFAULT_LIMITS)


@pytest.mark.parametrize("name, limits, match", [
    ("notes.txt", DEFAULT_LIMITS, "not accepted"), ("big.png", Limits(max_upload_bytes=10), "limit is"),
])
def test_upload_bounds_delete_too(tmp_path, name, limits, match):
    path = _png(tmp_path / "x.png").rename(tmp_path / name)
    with pytest.raises(ValueError, match=match):
        read_upload(str(path), limits)
    assert not path.exists()


def test_streamed_projection_then_keys(tmp_path):
    family = FAMILIES["stylegan_lite"]
    torch.manual_seed(0)
    g = family.generator_cls(family.presets["tiny"]).eval()
    data = _png(tmp_path / "a.png").read_bytes()
    updates, saved = [], None
    for update in run_projection(g, data, "a.png", label="sg", steps=24, space="w+", limits=DEFAULT_LIMITS):
        updates.append(update)
        if update.done:  # the latent file lives until the stream ends (Gradio copies it meanwhile)
            saved = Projection.load(update.latent)
    # progress is structural: every 24 // 12 = 2 optimiser steps (numbered from 1), then the result
    assert [u.step for u in updates] == list(range(2, 23, 2)) + [24]
    assert {u.total for u in updates} == {24} and [u.done for u in updates] == [False] * 11 + [True]
    assert all(u.projection is None and u.latent is None for u in updates[:-1])
    assert all(np.isfinite(u.loss) and u.picture.shape == (16, 2 * 16 + 1, 3) for u in updates)
    assert project_status(updates[3]) == f"step 8/24, loss {updates[3].loss:.4f}"   # the UI formats the numbers
    last = updates[-1]
    projection = last.projection
    assert isinstance(projection, Projection) and last.loss == projection.loss and last.space == "w+"
    assert saved.space == "w+" and torch.equal(saved.latent, projection.latent)
    assert not Path(last.latent).exists()                                           # removed with its work folder
    assert project_status(last).startswith(f"projected into w+ in 24 steps ({last.seconds:.1f} s), loss {last.loss:.4f}.")
    keys = parse_keys("image, 1", max_count=16, projection=projection)
    assert keys[0] is projection and keys[1] == 1
    clip = render_interpolation(g, keys, frames=4, space="w", method="lerp")
    rec = (projection.render(g) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()
    assert np.array_equal(clip[0], rec)                          # the walk starts at the reconstruction
    rows, cols, cells = render_mixing(g, [3], keys, styles="coarse", noise="fixed")
    assert np.array_equal(cols[0], rec) and cells.shape == (1, 2, 16, 16, 3)
    with pytest.raises(ValueError, match="point in W"):
        render_interpolation(g, keys, frames=4, space="z", method="slerp")
    with pytest.raises(ValueError, match="Your image"):
        parse_keys("image,1", max_count=16, projection=None)
    with pytest.raises(ValueError, match="steps must be between"):
        list(run_projection(g, data, "a.png", label="sg", steps=10_000, space="w", limits=DEFAULT_LIMITS))


def test_project_event_streams_numbers_and_stores_the_projection(tmp_path):
    # the tab's event as Gradio calls it: the status comes from the numbers, and only the finished
    # projection replaces the visitor's previous one (the other tabs read it as "image")
    from app.models import ModelStore
    from app.ui import build_demo

    family = FAMILIES["stylegan_lite"]
    torch.manual_seed(0)
    family.generator_cls(family.presets["tiny"]).save_pretrained(tmp_path / "sg")
    demo = build_demo(ModelStore({"sg": str(tmp_path / "sg")}), output_dir=tmp_path / "out")
    project = next(f.fn for f in demo.fns.values() if f.api_name == "project")
    previous = object()
    folder = tmp_path / "upload"
    folder.mkdir()
    outputs = list(project("sg", str(_png(folder / "me.png")), 20, "w", previous))
    assert outputs[0][2] == "reading the image..." and outputs[0][3] is previous
    steps = [int(status.split()[1].split("/")[0]) for _, _, status, _ in outputs[1:-1]]
    assert steps == list(range(1, 20)) and all(out[3] is previous for out in outputs[:-1])
    picture, latent, status, stored = outputs[-1]
    assert isinstance(stored, Projection) and stored.metadata["model"] == "sg" and stored.space == "w"
    assert status.startswith("projected into w in 20 steps") and picture.shape == (16, 33, 3)
    assert not (folder / "me.png").exists()                                   # the upload is gone


def test_upload_exactly_at_the_byte_cap_is_accepted_one_byte_more_refused(tmp_path):
    """``max_upload_bytes`` is the largest upload allowed: a file of exactly that many bytes is read, one
    byte more is refused (both deleted)."""
    data = _png(tmp_path / "x.png").read_bytes()
    for extra, accepted in ((0, True), (1, False)):
        path = tmp_path / f"up{extra}.png"
        path.write_bytes(data + b"\0" * extra)
        limits = Limits(max_upload_bytes=len(data))
        if accepted:
            assert read_upload(str(path), limits)[0] == data
        else:
            with pytest.raises(ValueError, match="limit is"):
                read_upload(str(path), limits)
        assert not path.exists()


def test_the_apps_upload_cap_is_8_mib(tmp_path):
    """The app (``DEFAULT_LIMITS``) reads a photo of exactly 8 MiB = 8,388,608 bytes and refuses 8,388,609 with
    the cap in MiB in its message; both files are deleted."""
    png = _png(tmp_path / "x.png").read_bytes()
    for size, accepted in ((8_388_608, True), (8_388_609, False)):
        path = tmp_path / f"photo{size}.png"
        path.write_bytes(png + b"\0" * (size - len(png)))
        if accepted:
            data, _ = read_upload(str(path), DEFAULT_LIMITS)
            assert len(data) == size and data.startswith(png)
        else:
            with pytest.raises(ValueError, match=r"the image is 8\.0 MiB; the limit is 8 MiB"):
                read_upload(str(path), DEFAULT_LIMITS)
        assert not path.exists()


@pytest.mark.parametrize("cap, said", [(10, "10 bytes"), (2**19, "524,288 bytes"), (3 * 2**19, "1.5 MiB")])
def test_an_upload_cap_that_is_not_whole_mib_is_named_as_it_is(tmp_path, cap, said):
    """A custom Limits below 1 MiB (or between two MiB) was reported as "the limit is 0 MiB" (or rounded down)."""
    png = _png(tmp_path / "x.png").read_bytes()
    path = tmp_path / "big.png"
    path.write_bytes(png + b"\0" * (cap + 1 - len(png)) if cap + 1 > len(png) else png)
    size = path.stat().st_size
    with pytest.raises(ValueError) as err:
        read_upload(str(path), Limits(max_upload_bytes=cap))
    assert str(err.value).endswith(f"the limit is {said}")
    assert f"{size:,} bytes" in str(err.value) or f"{size / 2**20:.1f} MiB" in str(err.value)


@pytest.mark.parametrize("resolution, samples", [(16, 10_000), (256, 4 * 10**8 // 256**2), (1024, 1000)])
def test_w_avg_samples_scale_with_the_model_between_1000_and_10000(monkeypatch, resolution, samples):
    """The tab estimates w_avg from 4e8 / resolution^2 mapping samples, at least 1000 and at most 10,000:
    10,000 at 16 px (1,562,500 before the cap), 6103 at 256 px, 1000 at 1024 px (381 before the floor)."""
    from types import SimpleNamespace

    import app.projection.ui as ui

    class Seen(Exception):
        pass

    def options(**kwargs):
        raise Seen(kwargs["w_avg_samples"])

    monkeypatch.setattr(ui, "load_target", lambda *args, **kwargs: None)
    monkeypatch.setattr(ui, "ProjectionOptions", options)
    generator = SimpleNamespace(config=SimpleNamespace(resolution=resolution, family="progan"))
    with pytest.raises(Seen) as seen:
        next(run_projection(generator, b"", "x.png", label="m", steps=10, space="w", limits=DEFAULT_LIMITS))
    assert seen.value.args[0] == samples
