"""The real app in a subprocess, driven endpoint by endpoint through ``gradio_client``.

Every endpoint gets valid, out-of-range and malformed inputs; each bad call must come back as a
clear error and the next valid call must still work (the server keeps serving).

A 512 px model (narrow, so it renders in milliseconds) is served too: at that size the app's own
per-resolution caps (24 images, 60 frames, 24 mixing cells under the default ``Limits``) sit below
what Gradio's components accept, so those requests reach ``app/ui.py``'s checks and must be
refused there.
"""
from __future__ import annotations

import dataclasses
import functools
import http.server
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from PIL import Image

from families import FAMILIES

pytestmark = pytest.mark.slow
gradio_client = pytest.importorskip("gradio_client")
from gradio_client.exceptions import AppError  # noqa: E402

SG, PG, BAD, BIG = "stylegan_lite-tiny", "progan-tiny", "bad", "stylegan_lite-512"


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    for name, family in FAMILIES.items():
        torch.manual_seed(0)
        family.generator_cls(family.presets["tiny"]).save_pretrained(
            root / f"{name}-tiny", summary={"images_seen": 1234, "hardware": "test"})
    (root / f"{BAD}.safetensors").write_bytes(b"this is not a safetensors file")
    family = FAMILIES["stylegan_lite"]
    big = dataclasses.replace(family.presets["tiny"], resolution=512, channel_base=512, channel_max=8)
    torch.manual_seed(0)
    family.generator_cls(big).save_pretrained(root / BIG)
    return root


@pytest.fixture(scope="module")
def client(app_launcher, weights_dir):
    url = app_launcher("--weights", str(weights_dir / SG), "--weights", str(weights_dir / PG),
                       "--weights", str(weights_dir / f"{BAD}.safetensors"), "--weights", str(weights_dir / BIG),
                       "--allow-remote-weights")
    return gradio_client.Client(url, verbose=False)


@pytest.fixture(scope="module")
def http_weights(weights_dir):
    """A local HTTP server for the remote-weights path (no internet needed)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(weights_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _refused(client, *args, api_name: str, match: str = "") -> str:
    with pytest.raises(AppError) as info:
        client.predict(*args, api_name=api_name)
    message = str(info.value)
    assert match.lower() in message.lower(), message
    return message


def _sample_ok(client, seeds="0-3"):
    gallery, grid, status = client.predict(SG, seeds, 0.7, 6, "random", api_name="/sample")
    assert len(gallery) == len(status.split("seeds")[1].split(","))
    return gallery, grid, status


def test_api_names(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/sample", "/interpolate", "/mix", "/project", "/model_info", "/switch_model", "/load_weights"} <= names


def test_sample(client):
    gallery, grid, status = client.predict(SG, "0-15", 0.7, 6, "random", api_name="/sample")
    assert len(gallery) == 16 and gallery[3]["caption"] == "seed 3"
    with Image.open(grid) as image:
        assert image.size == (64, 64)                  # the download: 4x4 tiles of 16 px, native
        native = np.asarray(image)[16:32, 48:64]       # seed 7: row 1, column 3
    shown = np.asarray(Image.open(gallery[7]["image"]))
    assert shown.shape[:2] == (16, 16)                 # native: the page enlarges it (CSS, app.display)
    assert np.abs(shown.astype(int) - native).max() <= 1                   # the grid cell's pixels
    again, _, _ = client.predict(SG, "3", 0.7, 6, "random", api_name="/sample")
    # same seed, same image, whatever else is in the grid (batch size may move a pixel by one level)
    alone, in_grid = (np.asarray(Image.open(g), dtype=int) for g in (again[0]["image"], gallery[3]["image"]))
    assert np.abs(alone - in_grid).max() <= 1
    gallery, _, status = client.predict(PG, "random:3", 1.0, 6, "fixed", api_name="/sample")
    assert len(gallery) == 3 and "ProGAN" in status


@pytest.mark.parametrize("args, match", [
    ((SG, "abc", 0.7, 6, "random"), "cannot read seed"),
    ((SG, "0-100", 0.7, 6, "random"), "too many seeds"),
    ((SG, "", 0.7, 6, "random"), "empty"),
    ((SG, "1", 5.0, 6, "random"), "maximum"),
    ((SG, "1", -3.0, 6, "random"), "minimum"),
    ((SG, "1", 0.7, 7, "random"), "cutoff must be between 0 and 6"),
    ((SG, "1", 0.7, 6, "loud"), "loud"),
    (("../../etc/passwd", "1", 0.7, 6, "random"), "unknown model"),
    ((BAD, "1", 0.7, 6, "random"), "not a valid safetensors"),
])
def test_sample_refuses_bad_input(client, args, match):
    _refused(client, *args, api_name="/sample", match=match)
    _sample_ok(client)


def test_interpolate(client):
    video, gif, status = client.predict(SG, "1,2,3", 12, 12, "lerp", "w", True, 0.7, "random",
                                        api_name="/interpolate")
    video_path = video["video"] if isinstance(video, dict) else video
    with open(video_path, "rb") as f:
        assert f.read(12)[4:8] == b"ftyp"
    with Image.open(gif) as image:
        assert image.n_frames == 12
    assert "12 frames" in status
    client.predict(PG, "4,5", 4, 8, "slerp", "z", False, 1.0, "fixed", api_name="/interpolate")


@pytest.mark.parametrize("args, match", [
    ((SG, "1,2", 1000, 12, "lerp", "z", False, 0.7, "fixed"), "maximum"),
    ((SG, "1,2", 1, 12, "lerp", "z", False, 0.7, "fixed"), "minimum"),
    ((SG, "1,2", 10, 0, "lerp", "z", False, 0.7, "fixed"), "minimum"),
    ((SG, "1", 10, 12, "lerp", "z", False, 0.7, "fixed"), "at least two seeds"),
    ((SG, "0-40", 10, 12, "lerp", "z", False, 0.7, "fixed"), "too many seeds"),
    ((SG, "1,2", 10, 12, "slerp", "w", False, 0.7, "fixed"), "slerp in W"),
    ((PG, "1,2", 10, 12, "lerp", "w", False, 0.7, "fixed"), "no W space"),
    ((SG, "1,2", 10, 12, "cubic", "z", False, 0.7, "fixed"), "cubic"),
])
def test_interpolate_refuses_bad_input(client, args, match):
    _refused(client, *args, api_name="/interpolate", match=match)
    _sample_ok(client)


def test_mix(client):
    figure, download, status = client.predict(SG, "1,2", "3-5", "middle", 0.7, "random", api_name="/mix")
    with Image.open(download) as image:
        assert image.size == (4 * 16, 3 * 16)          # native pixels
        native = np.asarray(image.convert("RGB"))
    with Image.open(figure) as image:                  # shown at native size too: the page enlarges it
        assert (np.asarray(image.convert("RGB")) == native).all()
    assert "middle" in status


@pytest.mark.parametrize("args, match", [
    ((SG, "1,2", "3", "fine", 0.7, "fixed"), "no fine layers"),
    ((PG, "1,2", "3", "coarse", 0.7, "fixed"), "StyleGAN-lite"),
    ((SG, "0-20", "3", "coarse", 0.7, "fixed"), "too many seeds"),
    ((SG, "1;2", "3", "coarse", 0.7, "fixed"), "cannot read seed"),
    ((SG, "1", "3", "everything", 0.7, "fixed"), "everything"),
])
def test_mix_refuses_bad_input(client, args, match):
    _refused(client, *args, api_name="/mix", match=match)
    _sample_ok(client)


def test_model_info_and_switching(client):
    info, config = client.predict(PG, api_name="/model_info")
    assert "ProGAN" in info and "16×16" in info and "1234" in info and config["resolution"] == 16
    _refused(client, BAD, api_name="/model_info", match="not a valid safetensors")
    # a failed switch keeps the current model and says why
    value, *_rest, status = client.predict(BAD, api_name="/switch_model")
    assert "could not load" in status and SG in status
    value, *_rest, status = client.predict(PG, api_name="/switch_model")
    assert "Loaded" in status and PG in status


def test_remote_weights(client, http_weights, weights_dir):
    _refused(client, str(weights_dir / PG), api_name="/load_weights", match="local paths are not accepted")
    _refused(client, f"{http_weights}/missing/model.safetensors", api_name="/load_weights", match="HTTP 404")
    _refused(client, f"{http_weights}/{BAD}.safetensors", api_name="/load_weights", match="safetensors")
    url = f"{http_weights}/{SG}/model.safetensors"
    *_outputs, status = client.predict(url, api_name="/load_weights")
    assert url in status
    gallery, _, _ = client.predict(url, "0", 1.0, 6, "random", api_name="/sample")
    assert len(gallery) == 1


def test_no_files_outside_the_app(client):
    for path in ("gradio_api/file=/etc/passwd", "file=/etc/passwd", "gradio_api/file=app/ui.py"):
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(client.src + path, timeout=10)
        assert info.value.code in (403, 404)
    _sample_ok(client)


def _upload(tmp_path, name="visitor-secret.png", size=(40, 30)):
    path = tmp_path / name
    Image.new("RGB", size, (230, 180, 30)).save(path)
    return path


def test_project_then_use_the_image_in_other_tabs(client, app_launcher, tmp_path):
    picture, latent, status = client.predict(SG, gradio_client.handle_file(str(_upload(tmp_path))), 20, "w+",
                                             api_name="/project")
    assert "projected into w+ in 20 steps" in status and "deleted" in status
    with Image.open(picture) as image:
        assert image.size == (2 * 16 + 1, 16)          # native: target | 1 px gap | reconstruction
    from app.projection import Projection

    assert Projection.load(latent).space == "w+"
    # the visitor's file is gone from the server: no copy of it anywhere under Gradio's folder
    assert not list(app_launcher.gradio_tmp[client.src.rstrip("/") + "/"].rglob("visitor-secret*"))
    video, gif, status = client.predict(SG, "image,1", 6, 12, "lerp", "w", False, 0.7, "fixed",
                                        api_name="/interpolate")
    assert "image, 1" in status
    figure, download, status = client.predict(SG, "image,2", "3", "coarse", 0.7, "fixed", api_name="/mix")
    with Image.open(download) as image, Image.open(figure) as shown:
        assert image.size == shown.size == (2 * 16, 3 * 16)  # native; the page enlarges the shown one
    _refused(client, SG, "image,1", 6, 12, "slerp", "z", False, 0.7, "fixed", api_name="/interpolate",
             match="point in W")
    _refused(client, PG, "image,1", 6, 12, "lerp", "z", False, 0.7, "fixed", api_name="/interpolate",
             match="projected with")
    # without the "image" token, another model is fine although this session holds a projection
    client.predict(PG, "4,5", 4, 8, "lerp", "z", False, 1.0, "fixed", api_name="/interpolate")


@pytest.mark.parametrize("name, content, steps, match", [
    ("notes.txt", b"hello", 10, "file type"),  # refused by Gradio's own file_types check first
    ("fake.png", b"this is not a png", 10, "cannot use this image"),
    ("ok.png", None, 10_000, "maximum"),
])
def test_project_refuses_bad_uploads(client, tmp_path, name, content, steps, match):
    path = tmp_path / name
    if content is None:
        _upload(tmp_path, name)
    else:
        path.write_bytes(content)
    _refused(client, SG, gradio_client.handle_file(str(path)), steps, "w", api_name="/project", match=match)
    _sample_ok(client)


def test_image_token_without_projection_is_explained(app_launcher, weights_dir):
    fresh = gradio_client.Client(app_launcher("--weights", str(weights_dir / SG)), verbose=False)
    with pytest.raises(AppError, match="Your image"):
        fresh.predict(SG, "image,1", 6, 12, "lerp", "w", False, 0.7, "fixed", api_name="/interpolate")


@pytest.mark.parametrize("api_name, args, match", [
    ("/sample", (BIG, "0-24", 0.7, 6, "fixed"), "at most 24"),                            # 25 images at 512 px
    ("/interpolate", (BIG, "1,2", 61, 12, "lerp", "z", False, 0.7, "fixed"), "between 2 and 60"),
    ("/mix", (BIG, "1-4", "5-8", "coarse", 0.7, "fixed"), "too large for this model"),    # 5 x 5 cells
    ("/sample", (SG, "1", 0.7, 7, "random"), "cutoff must be between 0 and 6"),           # slider allows 18
])
def test_server_side_caps_refuse_what_gradio_lets_through(client, api_name, args, match):
    # a new session: earlier tests' /switch_model narrowed that session's cutoff slider
    client = gradio_client.Client(client.src, verbose=False)
    _refused(client, *args, api_name=api_name, match=match)
    gallery, _, _ = client.predict(BIG, "0", 0.7, 6, "fixed", api_name="/sample")
    with Image.open(gallery[0]["image"]) as image:
        assert image.size == (512, 512)
