"""Fast tests of the app's pure sampling code: seeds, reproducibility, interpolation, style mixing, bounds."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from app.interpolation import keyframe_path, lerp, render_interpolation, slerp
from app.limits import DEFAULT_LIMITS, check_int, check_range, check_truncation
from app.mixing import mix_styles, mixing_figure, render_mixing, style_layers
from app.models import ModelStore, launch_sources
from app.sampling import generate_images, make_grid, parse_seeds, seed_latents, seed_noise, styles_from_z
from app.video import upscale_nearest, write_gif, write_mp4
from families import FAMILIES
from stylegan_lite.layers import NoiseInjection


@pytest.mark.parametrize("text, expected", [
    ("3", [3]), ("0-3", [0, 1, 2, 3]), ("1,5,9", [1, 5, 9]), (" 2 , 10-12 ", [2, 10, 11, 12]), ("7-7", [7]),
])
def test_parse_seeds(text, expected):
    assert parse_seeds(text, max_count=64) == expected


def test_parse_random_seeds_are_returned_and_counted():
    seeds = parse_seeds("random:5", max_count=64)
    assert len(seeds) == 5 and all(0 <= s < 2**31 for s in seeds)
    assert len(parse_seeds("random", max_count=64)) == 1


@pytest.mark.parametrize("text, message", [
    ("", "empty"), ("abc", "cannot read seed"), ("5-1", "backwards"), ("0-64", "too many"),
    ("0-999999999999", "between 0 and"), ("-3", "cannot read"), ("1,,2", "cannot read"), ("random:0", "no seeds"),
    ("random:65", "too many"), ("1.5", "cannot read"),
])
def test_parse_seeds_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_seeds(text, max_count=64)


def test_bounds_checks():
    assert check_range("psi", "0.5", -1, 2) == 0.5
    for bad in (3, -1.5, float("nan"), float("inf"), "x", None):
        with pytest.raises(ValueError):
            check_range("psi", bad, -1, 2)
    assert check_int("frames", 5.0, 2, 240) == 5
    for bad in (1, 241, 2.5, True):
        with pytest.raises(ValueError):
            check_int("frames", bad, 2, 240)
    config = FAMILIES["stylegan_lite"].presets["tiny"]                        # 3 resolutions -> 6 ws
    assert check_truncation(config, 0.7, None, DEFAULT_LIMITS) == (0.7, None)
    assert check_truncation(config, 0.7, 6, DEFAULT_LIMITS) == (0.7, 6)
    with pytest.raises(ValueError, match="cutoff"):
        check_truncation(config, 0.7, 7, DEFAULT_LIMITS)
    assert DEFAULT_LIMITS.images_allowed(1024) < DEFAULT_LIMITS.images_allowed(256) == 64


def test_seed_latents_are_per_seed_cpu_draws():
    z = seed_latents([7, 3], 16)
    expected = torch.randn(1, 16, generator=torch.Generator("cpu").manual_seed(3))
    assert torch.equal(z[1:], expected)


def test_seed_noise_continues_each_seeds_stream_after_z():
    family = FAMILIES["stylegan_lite"]
    torch.manual_seed(0)
    g = family.generator_cls(family.presets["tiny"]).eval()
    sizes = [getattr(g.synthesis, f"noise_const_{i}").shape[-1] for i in range(len(g.synthesis.layers))]
    assert sizes == [4, 4, 8, 8, 16, 16]                                     # two noise inputs per resolution
    seeds = [5, 2, 5]
    noise = seed_noise(g, seeds)
    assert [tuple(n.shape) for n in noise] == [(3, 1, r, r) for r in sizes]
    for i, seed in enumerate(seeds):
        stream = torch.Generator("cpu").manual_seed(seed)
        z = torch.randn(1, g.config.latent_dim, generator=stream)             # z comes first in the stream ...
        for n, r in zip(noise, sizes):                                         # ... then each layer's map in turn
            assert torch.equal(n[i:i + 1], torch.randn(1, 1, r, r, generator=stream))
        assert torch.equal(z, seed_latents([seed], g.config.latent_dim))
        assert not torch.equal(noise[0][i].flatten(), z.flatten()[:16])    # not z's numbers over again
    # and generate_images draws with exactly these maps (noise strengths raised from their zero init)
    with torch.no_grad():
        for module in g.modules():
            if isinstance(module, NoiseInjection):
                module.weight.fill_(1.0)
        ws = g.broadcast(g.mapping(seed_latents(seeds, g.config.latent_dim)))
        expected = g.synthesis(ws, noise=noise)
    pixels = ((expected.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert np.abs(generate_images(g, seeds, noise="random").astype(int) - pixels).max() <= 1


def test_same_seed_same_image_regardless_of_grid(tiny_generator):
    if tiny_generator.config.family == "stylegan_lite":  # noise starts at strength 0, where it would not show
        with torch.no_grad():
            for layer in tiny_generator.synthesis.layers:
                layer.noise.weight.fill_(0.5)
    a = generate_images(tiny_generator, [4, 11, 5], psi=0.7, noise="random")
    b = generate_images(tiny_generator, [11], psi=0.7, noise="random")
    c = generate_images(tiny_generator, [0, 1, 2, 11], psi=0.7, noise="random", batch_size=3)
    assert a.shape == (3, 16, 16, 3) and a.dtype == np.uint8
    # batch size may change float rounding in the last bit; never more than one uint8 step
    assert np.abs(a[1].astype(int) - b[0]).max() <= 1
    assert np.abs(c[3].astype(int) - b[0]).max() <= 1
    assert not np.array_equal(a[0], a[1])                                     # different seeds differ


def test_random_noise_is_reproducible_and_differs_from_fixed(family):
    if family.name != "stylegan_lite":
        pytest.skip("ProGAN has no noise inputs")
    torch.manual_seed(0)
    g = family.generator_cls(family.presets["tiny"]).eval()
    first = generate_images(g, [3], noise="random")
    assert np.array_equal(first, generate_images(g, [3], noise="random"))
    with torch.no_grad():  # noise strengths are initialised to zero: make the noise visible
        for module in g.modules():
            if isinstance(module, NoiseInjection):
                module.weight.fill_(1.0)
    assert not np.array_equal(generate_images(g, [3], noise="random"), generate_images(g, [3], noise="fixed"))


def test_make_grid_dimensions():
    images = np.zeros((10, 8, 6, 3), np.uint8)
    assert make_grid(images).size == (4 * 6, 3 * 8)                            # ceil(sqrt(10)) = 4 columns
    assert make_grid(images, columns=5, padding=2).size == (5 * 6 + 4 * 2, 2 * 8 + 2)



@pytest.mark.parametrize("channels", [1, 3, 4])
def test_make_grid_and_mixing_figure_place_tiles_row_major_with_gaps(channels):
    """5 tiles of 2x3 px, each a distinct value per channel, 3 columns, padding 1: tile i at x = (i % 3) * 4,
    y = (i // 3) * 3; the gaps and the empty cell are the white fill (transparent white for RGBA). The mixing
    figure is the same grid with a blank corner, column sources on top, each row's source first on the left."""
    def tile(v: int) -> np.ndarray:                                    # [2, 3, C], channel k holds v + 40 k
        return np.stack([np.full((2, 3), v + 40 * k, np.uint8) for k in range(channels)], axis=-1)

    grid = np.asarray(make_grid([tile(i + 1) for i in range(5)], columns=3, padding=1)).reshape(5, 11, channels)
    fill = [255, 255, 255, 0][:channels] if channels > 1 else [255]
    blank = np.ones((5, 11), bool)
    for i in range(5):
        y, x = (i // 3) * 3, (i % 3) * 4
        np.testing.assert_array_equal(grid[y:y + 2, x:x + 3], tile(i + 1), err_msg=f"tile {i}")
        blank[y:y + 2, x:x + 3] = False
    assert (grid[blank] == fill).all()
    rows, cols = np.stack([tile(100), tile(101)]), np.stack([tile(1), tile(2), tile(3)])
    cells = np.stack([[tile(10 * r + c) for c in range(3)] for r in range(2)])
    figure = np.asarray(mixing_figure(rows, cols, cells)).reshape(6, 12, channels)
    expected = [[None, 1, 2, 3], [100, 0, 1, 2], [101, 10, 11, 12]]
    for r, line in enumerate(expected):
        for c, v in enumerate(line):
            want = np.broadcast_to(np.array(fill, np.uint8), (2, 3, channels)) if v is None else tile(v)
            np.testing.assert_array_equal(figure[2 * r:2 * r + 2, 3 * c:3 * c + 3], want, err_msg=f"cell {r}, {c}")


def test_slerp_endpoints_and_unit_norm():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 32, generator=gen)
    a, b = a / a.norm(), b / b.norm()
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-6) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-6)
    t = torch.linspace(0, 1, 11).view(-1, 1)
    path = slerp(a.expand(11, -1), b.expand(11, -1), t)
    assert torch.allclose(path.norm(dim=-1), torch.ones(11), atol=1e-5)
    assert torch.allclose(slerp(a, a, 0.3), a, atol=1e-6)                     # parallel inputs: no NaN
    assert torch.allclose(lerp(a, b, 0.25), 0.75 * a + 0.25 * b)


def test_keyframe_path_passes_through_keys():
    keys = torch.randn(3, 8, generator=torch.Generator().manual_seed(1))
    path = keyframe_path(keys, 5, method="slerp")                             # positions 0, .5, 1, 1.5, 2
    assert torch.allclose(path[0], keys[0]) and torch.allclose(path[2], keys[1], atol=1e-5)
    assert torch.allclose(path[4], keys[2], atol=1e-5)
    looped = keyframe_path(keys, 6, method="lerp", loop=True)                 # positions 0, .5, ..., 2.5
    assert torch.allclose(looped[0], keys[0]) and torch.allclose(looped[5], (keys[2] + keys[0]) / 2)


@pytest.mark.parametrize("method", ["lerp", "slerp"])
def test_interpolation_stays_on_the_keys_device_and_dtype(method):
    """A model on a GPU walks keys on the GPU: the walk (and lerp/slerp given a CPU or float64 ``t``) must come
    back on the keys' device and in their dtype. The ``meta`` device stands in for the GPU on every machine:
    like CUDA, it refuses arithmetic with a CPU tensor that is not a scalar."""
    for device in ("meta", "cpu"):
        keys = torch.randn(3, 8, generator=torch.Generator().manual_seed(1)).to(device)
        for loop in (False, True):
            path = keyframe_path(keys, 5, method=method, loop=loop)
            assert path.shape == (5, 8) and path.device == keys.device and path.dtype == keys.dtype
        interp = slerp if method == "slerp" else lerp
        t = torch.linspace(0, 1, 5, dtype=torch.float64).view(-1, 1)  # on the CPU, float64
        points = interp(keys[:1].expand(5, -1), keys[1:2].expand(5, -1), t)
        assert points.device == keys.device and points.dtype == torch.float32


def test_render_interpolation(tiny_generator):
    clip = render_interpolation(tiny_generator, [1, 2], frames=6, method="slerp")
    assert clip.shape == (6, 16, 16, 3)
    single = generate_images(tiny_generator, [1, 2], noise="fixed")
    assert np.abs(clip[0].astype(int) - single[0]).max() <= 1                  # endpoints are the seeds' images
    assert np.abs(clip[-1].astype(int) - single[1]).max() <= 1
    if tiny_generator.config.family == "stylegan_lite":
        assert render_interpolation(tiny_generator, [1, 2], frames=4, space="w").shape[0] == 4
        with pytest.raises(ValueError, match="slerp in W"):
            render_interpolation(tiny_generator, [1, 2], frames=4, space="w", method="slerp")
    else:
        with pytest.raises(ValueError, match="no W space"):
            render_interpolation(tiny_generator, [1, 2], frames=4, space="w")



def test_random_noise_interpolation_starts_on_the_first_seeds_image_with_its_noise():
    """noise "random": one noise draw for the whole clip, the first seed's (no flicker), so frame 0 is
    that seed's image as the sample tab draws it; with another seed's noise it would not be."""
    fam = FAMILIES["stylegan_lite"]
    torch.manual_seed(0)
    g = fam.generator_cls(fam.presets["tiny"]).eval()
    with torch.no_grad():  # noise strengths start at 0, where noise changes nothing
        for layer in g.synthesis.layers:
            layer.noise.weight.fill_(0.5)
    seeds = [1, 2, 3]
    clip = render_interpolation(g, seeds, frames=5, noise="random")
    own = generate_images(g, seeds, noise="random")
    assert np.abs(clip[0].astype(int) - own[0]).max() <= 1
    other_noise = generate_images(g, [1], noise="fixed")[0]          # the same latent, other noise
    assert np.abs(own[0].astype(int) - other_noise).max() > 8       # the noise shows in the image
    assert np.abs(clip[-1].astype(int) - own[2]).max() > 8          # the last key keeps seed 1's noise

def test_style_layers_follow_the_paper_ranges():
    paper = FAMILIES["stylegan_lite"].presets["paper-256"]                     # 4..256 px: 14 ws
    assert style_layers(paper, "coarse") == [0, 1, 2, 3]
    assert style_layers(paper, "middle") == [4, 5, 6, 7]
    assert style_layers(paper, "fine") == list(range(8, 14))
    tiny = FAMILIES["stylegan_lite"].presets["tiny"]                          # 4, 8, 16 px
    with pytest.raises(ValueError, match="no fine layers"):
        style_layers(tiny, "fine")
    # the refusal names the ranges the model does have; middle starts at 16 px, tiny's top resolution
    with pytest.raises(ValueError, match=r"^this 16x16 model has no fine layers \(64 px and up\); "
                                         r"choose coarse or middle$"):
        style_layers(tiny, "fine")
    with pytest.raises(ValueError, match=r"^this 8x8 model has no middle layers \(16-32 px\); choose coarse$"):
        style_layers(dataclasses.replace(tiny, resolution=8), "middle")


def test_mixing_grid_copies_row_styles_on_the_chosen_layers():
    fam = FAMILIES["stylegan_lite"]
    torch.manual_seed(0)
    g = fam.generator_cls(fam.presets["tiny"]).eval()
    with torch.no_grad():
        ws_a = styles_from_z(g, seed_latents([1, 2, 3], 16))                   # columns: source A
        ws_b = styles_from_z(g, seed_latents([7, 8], 16))                      # rows: source B
    mixed = mix_styles(ws_a, ws_b, style_layers(g.config, "coarse"))          # layers 0-3 from B
    assert mixed.shape == (2, 3, 6, 16)
    assert torch.equal(mixed[1, 2], g.mix(ws_b[1:2], ws_a[2:3], 4)[0])        # G.mix: layers < 4 from B
    middle = mix_styles(ws_a, ws_b, style_layers(g.config, "middle"))          # layers 4-5 (16 px) from B
    assert torch.equal(middle[0, 1], g.mix(ws_a[1:2], ws_b[0:1], 4)[0])
    rows, cols, cells = render_mixing(g, [7, 8], [1, 2, 3], styles="coarse", noise="fixed")
    assert cells.shape == (2, 3, 16, 16, 3) and rows.shape[0] == 2 and cols.shape[0] == 3
    with torch.no_grad():
        expected = g.synthesis(mixed[1], noise_mode="const")
    assert np.abs(cells[1].astype(int) - _pixels(expected)).max() <= 1
    assert mixing_figure(rows, cols, cells).size == (4 * 16, 3 * 16)


def _pixels(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] NCHW images as int NHWC pixels, written out here rather than taken from the app."""
    return (images * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy().astype(int)


def test_random_noise_mixing_cells_keep_the_column_seeds_noise():
    """Module promise: 'each cell keeps source A's noise, so a cell differs from the image above it only by B's
    styles'. At psi = 0 every seed's styles are w_avg, so B's styles are A's and each cell must equal the column
    image above it exactly, with random (per-seed) noise too; the row images (same styles, the row seeds' noise)
    differ, so taking the row seeds' noise would show. At psi = 1 a cell is, by hand, G.mix of the seeds' ws
    synthesized with the column seed's maps from the sampling core's seed_noise."""
    fam = FAMILIES["stylegan_lite"]
    torch.manual_seed(0)
    g = fam.generator_cls(fam.presets["tiny"]).eval()
    with torch.no_grad():
        for module in g.modules():
            if isinstance(module, NoiseInjection):
                module.weight.fill_(1.0)                                      # trained models use their noise
    rows, cols, cells = render_mixing(g, [7, 8], [1, 2], styles="coarse", psi=0.0, noise="random")
    assert not np.array_equal(rows, cols)                                     # the seeds' noise maps matter
    for r in range(2):
        np.testing.assert_array_equal(cells[r], cols)
    rows, cols, cells = render_mixing(g, [7, 8], [1, 2], styles="coarse", psi=1.0, noise="random")
    with torch.no_grad():
        ws_a = styles_from_z(g, seed_latents([2], 16))                        # column seed 2 (source A)
        ws_b = styles_from_z(g, seed_latents([8], 16))                        # row seed 8 (source B)
        image = g.synthesis(g.mix(ws_b, ws_a, 4), noise=seed_noise(g, [2]))   # coarse: layers < 4 from B
        wrong = g.synthesis(g.mix(ws_b, ws_a, 4), noise=seed_noise(g, [8]))
    expected = _pixels(image)[0]
    assert np.abs(cells[1, 1].astype(int) - expected).max() <= 1
    assert np.abs(_pixels(wrong)[0] - expected).max() > 1                     # the row seed's noise differs


def test_video_writers(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (5, 16, 16, 3), dtype=np.uint8)
    assert upscale_nearest(frames).shape == (5, 256, 256, 3)
    assert upscale_nearest(np.zeros((1, 5, 7, 3), np.uint8), min_size=5).shape == (1, 6, 8, 3)
    mp4 = write_mp4(frames, tmp_path / "a.mp4", fps=10)
    assert mp4.read_bytes()[4:8] == b"ftyp"
    from PIL import Image
    with Image.open(write_gif(frames, tmp_path / "a.gif", fps=10)) as gif:
        assert gif.n_frames == 5 and gif.size == (256, 256)


def test_mp4_frames_are_enlarged_like_the_gif_and_odd_sides_padded(tmp_path):
    """The MP4 holds what upscale_nearest makes of the frames: 16 px enlarged by 16 to 256 px (as the GIF
    is), and at min_size=1 a 15 px clip padded to 16 (yuv420p needs even sides); read back with ffmpeg.
    The first decoded frame of a flat clip keeps its colour."""
    import imageio_ffmpeg

    for side, min_size, expected in ((16, 256, 256), (15, 1, 16)):
        frames = np.full((3, side, side, 3), (40, 160, 220), np.uint8)
        path = write_mp4(frames, tmp_path / f"{side}.mp4", fps=10, min_size=min_size)
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
        first = np.frombuffer(next(reader), np.uint8).reshape(expected, expected, 3)
        reader.close()
        assert tuple(meta["size"]) == (expected, expected)
        assert np.abs(first.astype(int) - (40, 160, 220)).max() <= 8   # H.264 / yuv420p rounding


def test_launch_sources_and_store(tmp_path):
    fam = FAMILIES["progan"]
    fam.generator_cls(fam.presets["tiny"]).save_pretrained(tmp_path / "run")
    (tmp_path / "bad.safetensors").write_bytes(b"not weights")
    sources = launch_sources([str(tmp_path / "run"), str(tmp_path / "run" / "model.safetensors"),
                              str(tmp_path / "bad.safetensors")])
    assert list(sources) == ["run", "run (2)", "bad"]
    store = ModelStore(sources)
    assert store.get("run") is store.get("run")                               # loaded once
    with pytest.raises(ValueError, match="not a valid safetensors"):
        store.get("bad")
    with pytest.raises(ValueError, match="unknown model"):
        store.get("/etc/passwd")
    with pytest.raises(ValueError, match="--allow-remote-weights"):
        store.add_remote("https://example.invalid/model.safetensors")
    remote = ModelStore(sources, allow_remote=True)
    with pytest.raises(ValueError, match="local paths are not accepted"):
        remote.add_remote(str(tmp_path / "run"))
    assert "bad" in remote.labels and str(tmp_path / "run") not in remote.labels


def test_videos_of_gray_and_rgba_models_are_rgb_with_alpha_on_white(tmp_path):
    """write_video: a 1-channel frame v becomes (v, v, v); an RGBA frame is composited on white
    (transparent -> white, opaque -> its colour); a suffix other than .mp4/.gif is a one-line error."""
    from app.video import write_video
    from image_utils import read_frames

    rgba = np.zeros((2, 8, 8, 4), np.uint8)               # left half opaque, right half transparent black
    rgba[0, :, :4], rgba[1, :, :4] = (255, 0, 0, 255), (0, 160, 0, 255)
    gray = np.zeros((2, 8, 8, 1), np.uint8)
    gray[0, :4], gray[0, 4:], gray[1] = 100, 30, 200
    got = read_frames(write_video(rgba, tmp_path / "rgba.gif", fps=4, min_size=8))
    assert got.shape == (2, 8, 8, 3)
    assert (got[0, :, :4] == (255, 0, 0)).all() and (got[1, :, :4] == (0, 160, 0)).all()
    assert (got[:, :, 4:] == 255).all()
    got = read_frames(write_video(gray, tmp_path / "gray.gif", fps=4, min_size=8))
    assert got.shape == (2, 8, 8, 3)
    assert (got[0, :4] == 100).all() and (got[0, 4:] == 30).all() and (got[1] == 200).all()
    with pytest.raises(ValueError, match=r"video output must end in \.mp4 or \.gif, got '.*clip\.avi'"):
        write_video(gray, tmp_path / "clip.avi", fps=4)


def test_rgba_images_saved_as_jpeg_are_composited_on_white(tmp_path):
    """JPEG has no alpha: the CLI composites RGBA on white there; PNG keeps the alpha as it is."""
    from PIL import Image

    from app.generate import _save

    pixels = np.zeros((16, 16, 4), np.uint8)
    pixels[:, :8] = (0, 0, 255, 255)                       # opaque blue | transparent (black under alpha 0)
    image = Image.fromarray(pixels, "RGBA")
    _save(image, tmp_path / "a.JPG")
    with Image.open(tmp_path / "a.JPG") as jpeg:
        assert jpeg.mode == "RGB"
        got = np.asarray(jpeg).astype(int)
    assert np.abs(got[:, :6] - (0, 0, 255)).max() <= 8 and np.abs(got[:, 10:] - 255).max() <= 8
    _save(image, tmp_path / "a.png")
    with Image.open(tmp_path / "a.png") as png:
        assert png.mode == "RGBA" and np.array_equal(np.asarray(png), pixels)


def test_model_tab_shows_the_training_summary_as_a_table():
    from app.models import describe_model

    fam = FAMILIES["progan"]
    generator = fam.generator_cls(fam.presets["tiny"])
    text, config = describe_model("m", "/w/model.safetensors", generator)
    assert "No training summary in this file" in text and config == {"family": "progan"}
    generator.pretrained_metadata = {"config": {"family": "progan", "resolution": 16},
                                     "summary": {"kimg": 12.5, "note": "a|b\nc", "fid": {"best": 90.8}}}
    text, config = describe_model("m", "/w/model.safetensors", generator)
    lines = text.splitlines()
    table = lines[lines.index("#### Training summary") + 2:]
    assert table == ["| | |", "|---|---|", "| kimg | 12.5 |", "| note | a\\|b c |", '| fid | {"best": 90.8} |']
    assert config == {"family": "progan", "resolution": 16}


def test_app_refuses_bad_limits_and_weights_it_cannot_load_before_serving(tmp_path, monkeypatch, capsys):
    """``python -m app``: --concurrency 1..64 and --max-queue >= 1 (usage error otherwise), and the default
    model is loaded before the page is built, so damaged weights are one error line and exit status 2."""
    import app.__main__ as entry
    import app.ui

    for flags in (["--concurrency", "0"], ["--concurrency", "65"], ["--max-queue", "0"]):
        with pytest.raises(SystemExit) as info:
            entry.parse_args(flags)
        assert info.value.code == 2
        assert "--concurrency must be in 1..64 and --max-queue at least 1" in capsys.readouterr().err, flags
    for value in ("1", "64"):
        assert entry.parse_args(["--concurrency", value, "--max-queue", "1"]).concurrency == int(value)
    monkeypatch.setattr(app.ui, "build_demo", lambda *a, **k: pytest.fail("served weights it cannot load"))
    bad = tmp_path / "bad" / "model.safetensors"
    bad.parent.mkdir()
    bad.write_bytes(b"\x00" * 64)
    assert entry.main(["--weights", str(bad.parent), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {bad}") and "not a valid safetensors" in err[0]
