"""Projection (``app.projection``, ``python -m app.project``) on tiny generators: a few steps each."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from app.projection import Projection, ProjectionOptions, image_to_target, project, projection_steps
from app.projection.cli import main as project_main
from app.projection.loss import lap1_distance, laplacian_pyramid, make_distance
from app.projection.target import before_after, load_target
from app.sampling import to_uint8
from families import FAMILIES
from progan.metrics.reconstruction import psnr, ssim


def test_laplacian_pyramid_reconstructs_and_lap1_is_a_distance():
    x = torch.rand(2, 3, 16, 16)
    levels = laplacian_pyramid(x)
    assert [lv.shape[-1] for lv in levels] == [16, 8, 4]
    # ``levels`` band-pass levels exactly, then the residual: 0 -> x itself, 1 -> [16] + 8 px residual
    assert torch.equal(laplacian_pyramid(x, levels=0)[0], x) and len(laplacian_pyramid(x, levels=0)) == 1
    assert [lv.shape[-1] for lv in laplacian_pyramid(x, levels=1)] == [16, 8]
    assert [lv.shape[-1] for lv in laplacian_pyramid(x, levels=2)] == [16, 8, 4]
    assert float(lap1_distance(x, x)) == 0.0 and float(lap1_distance(x, x.flip(-1))) > 0.0
    with pytest.raises(ValueError, match="loss must be one of"):
        make_distance("vgg")


def _hand_blur(a: np.ndarray) -> np.ndarray:
    """5x5 binomial [1 4 6 4 1]/16 in each direction, edges replicated, one loop per output pixel."""
    k = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0
    padded = np.pad(a, 2, mode="edge")
    return np.array([[(padded[i:i + 5, j:j + 5] * k).sum() for j in range(a.shape[1])] for i in range(a.shape[0])])


def test_laplacian_level_subtracts_the_blurred_nearest_upsample_of_the_low_pass():
    """Level 0 of an 8 px image is x - blur(up(down(x))), down = blur then every other pixel, up = nearest
    x2; so x = level0 + blur(up(residual)) exactly. Built by hand on a non-constant image."""
    x = np.random.default_rng(3).random((8, 8))
    low = _hand_blur(x)[::2, ::2]
    up = np.repeat(np.repeat(low, 2, axis=0), 2, axis=1)
    band, residual = laplacian_pyramid(torch.from_numpy(x)[None, None], levels=1)
    np.testing.assert_allclose(residual[0, 0].numpy(), low, atol=1e-12)
    np.testing.assert_allclose(band[0, 0].numpy(), x - _hand_blur(up), atol=1e-12)
    np.testing.assert_allclose(band[0, 0].numpy() + _hand_blur(up), x, atol=1e-12)


@pytest.mark.parametrize("side, level", [(4, 0), (8, 1), (16, 2), (32, 3), (64, 4)])
def test_lap1_weights_level_j_by_four_to_the_minus_j(side, level):
    """Bojanowski et al. 2018, section 3.3: Lap1 = sum_j 2**(-2j) |L^j(x) - L^j(y)|. A constant image has
    no band-pass content (the Gaussian blur keeps constants), so zeros against c differ only in the
    low-pass residual, level j = log2(side / 4): Lap1 = c * 4**-j, a factor 4 less per doubling."""
    c = 0.5
    zeros, constant = torch.zeros(2, 3, side, side), torch.full((2, 3, side, side), c)
    levels = laplacian_pyramid(constant)
    assert len(levels) == level + 1 and all(float(lv.abs().max()) < 1e-6 for lv in levels[:-1])
    assert float(lap1_distance(zeros, constant)) == pytest.approx(c * 4.0 ** -level, rel=1e-5)
    assert float(lap1_distance(constant, zeros)) == pytest.approx(c * 4.0 ** -level, rel=1e-5)


def test_psnr_and_ssim():
    a = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    assert psnr(a, a) == float("inf") and ssim(a, a) == pytest.approx(1.0)
    b = np.clip(a.astype(int) + 8, 0, 255).astype(np.uint8)
    assert 25 < psnr(a, b) < 35 and ssim(a, b) < 1.0


def test_ssim_of_one_white_pixel_against_black_weighs_it_by_a_sigma_1_5_gaussian():
    """An 11x11 image, one white pixel at its centre, against black: one window position, and the Gaussian
    window (sigma 1.5, Wang et al. 2004) gives the centre the weight w = 1 / S^2, S = sum_k exp(-k^2 / 4.5)
    over k = -5..5. Then mean_x = 255 w, var_x = 255^2 w (1 - w), the reference is flat 0, so
    SSIM = C1 C2 / ((mean_x^2 + C1)(var_x + C2)), C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2."""
    import math

    x = np.zeros((11, 11, 3), np.uint8)
    x[5, 5] = 255
    w = 1 / sum(math.exp(-k * k / (2 * 1.5 ** 2)) for k in range(-5, 6)) ** 2
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    expected = c1 * c2 / (((255 * w) ** 2 + c1) * (255 ** 2 * w * (1 - w) + c2))
    assert ssim(x, np.zeros_like(x)) == pytest.approx(expected, rel=1e-9)


def test_projection_recovers_a_generated_image_and_does_not_touch_weights(tiny_generator):
    g = tiny_generator
    before = {k: v.clone() for k, v in g.state_dict().items()}
    z = torch.randn(1, g.config.latent_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        target = g(z, noise_mode="const") if g.config.family == "stylegan_lite" else g(z)
    steps = list(projection_steps(g, target[0], ProjectionOptions(steps=60, w_avg_samples=500), result=(out := [])))
    projection = out[0]
    assert len(steps) == 60 and steps[-1].loss < steps[0].loss
    assert projection.space == ("w" if g.config.family == "stylegan_lite" else "z")
    rec, tgt = to_uint8(projection.render(g))[0], to_uint8(target)[0]
    start = to_uint8(steps[0].image)[0]
    assert psnr(rec, tgt) > psnr(start, tgt)
    assert all(torch.equal(v, g.state_dict()[k]) for k, v in before.items())
    assert all(p.grad is None for p in g.parameters())


def test_w_plus_and_save_load_roundtrip(tmp_path):
    family = FAMILIES["stylegan_lite"]
    torch.manual_seed(0)
    g = family.generator_cls(family.presets["tiny"]).eval()
    target = torch.rand(3, 16, 16) * 2 - 1
    projection = project(g, target, ProjectionOptions(steps=5, space="w+", w_avg_samples=100))
    assert projection.latent.shape == (1, g.num_ws, g.config.w_dim) and len(projection.noise) == 6
    path = projection.save(tmp_path / "latent.safetensors")
    again = Projection.load(path)
    assert again.space == "w+" and torch.equal(again.latent, projection.latent)
    assert torch.equal(again.render(g), projection.render(g))
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a projection file"):
        Projection.load(tmp_path / "junk.safetensors")
    with pytest.raises(ValueError, match="ProGAN has no W space"):
        project(FAMILIES["progan"].generator_cls(FAMILIES["progan"].presets["tiny"]), target,
                ProjectionOptions(steps=1, space="w"))


def test_load_target_uses_data_prep_decoding():
    rgba = Image.new("RGBA", (40, 20), (255, 0, 0, 0))                       # transparent, wide
    rgba.paste((0, 0, 255, 255), (15, 5, 25, 15))
    import io

    buffer = io.BytesIO()
    rgba.save(buffer, format="PNG")
    pixels = load_target(buffer.getvalue(), 16)
    assert pixels.shape == (16, 16, 3) and tuple(pixels[0, 0]) == (255, 255, 255)   # alpha on white
    assert pixels[8, 8, 2] > 200 and pixels[8, 8, 0] < 50                             # centre crop kept the square
    with pytest.raises(ValueError, match="cannot use this image"):
        load_target(b"GIF89a broken", 16)
    assert image_to_target(pixels).shape == (3, 16, 16)
    assert before_after(pixels, pixels).size == (2 * 256 + 8, 256)


def test_image_to_target_keeps_rows_columns_and_channels_in_place():
    """A 2-row, 3-column picture whose pixel (y, x) channel c is 100 c + 10 y + x (every value distinct): the
    target is [3, 2, 3] with target[c, y, x] = (100 c + 10 y + x - 128) / 127.5, e.g. (1, 2) red 12 -> -116 / 127.5;
    a 3x3 picture, asymmetric across its diagonal, the same way (a transpose would swap y and x)."""
    for height, width in ((2, 3), (3, 3)):
        pixels = np.zeros((height, width, 3), np.uint8)
        for y in range(height):
            for x in range(width):
                for c in range(3):
                    pixels[y, x, c] = 100 * c + 10 * y + x
        target = image_to_target(pixels)
        assert target.shape == (3, height, width) and target.dtype == torch.float32
        for y in range(height):
            for x in range(width):
                for c in range(3):
                    assert target[c, y, x].item() == pytest.approx((100 * c + 10 * y + x - 128) / 127.5, abs=1e-6)
    assert image_to_target(pixels)[0, 1, 2].item() == pytest.approx(-116 / 127.5, abs=1e-6)
    assert image_to_target(pixels)[2, 2, 0].item() == pytest.approx((220 - 128) / 127.5, abs=1e-6)


def test_before_after_puts_target_left_gap_white_and_reconstruction_right():
    """Two different 4x4 pictures at min_size 8 (factor 2) with a 3 px gap: an 8 x (8 + 3 + 8) canvas whose
    pixel (y, x) is target[y // 2][x // 2] left of column 8, white in columns 8-10, and
    reconstruction[y // 2][(x - 11) // 2] from column 11 on, written out pixel by pixel."""
    rng = np.random.default_rng(1)
    target = rng.integers(0, 200, (4, 4, 3), dtype=np.uint8)                  # never pure white
    reconstruction = rng.integers(0, 200, (4, 4, 3), dtype=np.uint8)
    canvas = np.asarray(before_after(target, reconstruction, min_size=8, gap=3))
    assert canvas.shape == (8, 19, 3)
    expected = np.full((8, 19, 3), 255, np.uint8)
    for y in range(8):
        for x in range(8):
            expected[y, x] = target[y // 2, x // 2]
            expected[y, 11 + x] = reconstruction[y // 2, x // 2]
    np.testing.assert_array_equal(canvas, expected)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_cli_writes_latent_and_pictures(weights, tmp_path, name, capsys):
    image = tmp_path / "in.jpg"
    Image.new("RGB", (30, 24), (200, 120, 40)).save(image)
    out = tmp_path / "out"
    extra = ["--w-plus"] if name == "stylegan_lite" else []
    assert project_main([str(image), "--weights", str(weights[name]), "--out", str(out), "--steps", "3", *extra]) == 0
    assert "PSNR" in capsys.readouterr().out
    for file in ("latent.safetensors", "target.png", "reconstruction.png", "before_after.png"):
        assert (out / file).is_file()
    assert Projection.load(out / "latent.safetensors").space == ("w+" if extra else "z")


def test_cli_bad_file_is_one_line(weights, tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    code = project_main([str(bad), "--weights", str(weights["progan"]), "--out", str(tmp_path / "o"), "--steps", "2"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "cannot use this image" in err and len(err.splitlines()) == 1
    assert project_main([str(tmp_path / "missing.png"), "--weights", str(weights["progan"]),
                         "--out", str(tmp_path / "o")]) == 2
    assert project_main([str(bad), "--weights", str(weights["progan"]), "--out", str(tmp_path / "o"), "--w-plus"]) == 2


def test_learning_rate_follows_the_projectors_schedule(monkeypatch):
    """NVIDIA's projector.py: lr(t) = lr0 * min(1, t / 0.05) * (1 - cos(pi * min(1, (1 - t) / 0.25))) / 2, at
    t = step / steps, for every step (a constant lr projects the bundled model's images as well, so the
    quality floor of tests/test_projection_floor.py cannot see it)."""
    import math

    seen = []

    class Recording(torch.optim.Adam):
        def step(self, closure=None):
            seen.append(self.param_groups[0]["lr"])
            return super().step(closure)

    monkeypatch.setattr(torch.optim, "Adam", Recording)
    family = FAMILIES["stylegan_lite"]
    torch.manual_seed(0)
    g = family.generator_cls(family.presets["tiny"]).eval()
    project(g, torch.rand(3, 16, 16) * 2 - 1, ProjectionOptions(steps=40, w_avg_samples=100, initial_lr=0.2))
    expected = [0.2 * min(1.0, t / 0.05) * (1 - math.cos(math.pi * min(1.0, (1 - t) / 0.25))) / 2
                for t in (s / 40 for s in range(40))]
    assert seen == pytest.approx(expected, abs=1e-12)
    assert seen[0] == 0.0 and max(seen) == pytest.approx(0.2)


def test_cli_target_png_is_the_input_as_the_model_sees_it(weights, tmp_path):
    """target.png is 'the input as the model sees it' (module docstring): the largest centred square,
    resized to the model's resolution. A 48x16 PNG whose middle 16x16 is a random pattern, for a 16 px
    model, is exactly that middle square (no resize); the reconstruction after 3 steps is something else."""
    rng = np.random.default_rng(0)
    pixels = np.zeros((16, 48, 3), np.uint8)
    pixels[:, :16] = (255, 0, 0)
    pixels[:, 32:] = (0, 0, 255)
    middle = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    pixels[:, 16:32] = middle
    image, out = tmp_path / "wide.png", tmp_path / "out"
    Image.fromarray(pixels).save(image)
    assert project_main([str(image), "--weights", str(weights["progan"]), "--out", str(out), "--steps", "3"]) == 0
    with Image.open(out / "target.png") as saved:
        target = np.asarray(saved.convert("RGB"))
    np.testing.assert_array_equal(target, middle)
    with Image.open(out / "reconstruction.png") as saved:
        assert not np.array_equal(np.asarray(saved.convert("RGB")), middle)


@pytest.mark.parametrize("space", ["w", "w+"])
def test_w_std_is_the_typical_length_of_w_minus_its_mean_over_all_w_dims(space):
    """NVIDIA's projector scales its step-0 exploration noise by w_std = sqrt(sum over samples and w dims of
    (w - w_avg)^2 / samples): the typical *length* of w - w_avg, not one coordinate's spread. With a mapping
    that returns 2 z, every coordinate has variance 4, so w_std = 2 sqrt(w_dim) (16 here: 8), to 3% with
    10,000 samples; a per-coordinate std would be 2. The start is w_avg (about 0 here), once per layer in w+."""
    from app.projection.projector import _start

    generator = FAMILIES["stylegan_lite"].generator_cls(FAMILIES["stylegan_lite"].presets["tiny"]).eval()
    w_dim = generator.config.w_dim

    class Doubled(torch.nn.Module):
        def forward(self, z, *args, **kwargs):
            return 2 * z[:, :w_dim]

    generator.mapping = Doubled()
    target = torch.zeros(1, 3, 16, 16)
    latent, w_std = _start(generator, target, ProjectionOptions(w_avg_samples=10_000), space, None,
                           torch.Generator().manual_seed(0))
    assert w_std == pytest.approx(2 * w_dim ** 0.5, rel=0.03)
    assert latent.shape == ((1, w_dim) if space == "w" else (1, generator.num_ws, w_dim))
    assert latent.abs().max() < 0.1  # the mean of 10,000 draws of 2 z: within 2 / sqrt(10,000) * 5


@pytest.mark.parametrize("side, expected", [(4, 2.0), (8, 2.0), (16, 4.0), (32, 6.0)])
def test_noise_penalty_stops_at_the_8_px_level(side, expected):
    """NVIDIA's noise regulariser sums the squared 1-px autocorrelations (x and y) of each noise map, then
    halves it and repeats while the map is larger than 8 px (8 px is the last level). A map of ones has
    autocorrelation 1 at every level: 2 per level, so 4 and 8 px give 2, 16 px 4, 32 px 6."""
    from app.projection.projector import _noise_penalty

    assert _noise_penalty([torch.ones(1, 1, side, side)]).item() == pytest.approx(expected)


def _recording_latents(monkeypatch, family_name: str):
    """A tiny seeded generator of ``family_name`` whose projection records, per step, the latent Adam steps
    (``latents``) and what the generator is fed (``fed``: StyleGAN's w+ into synthesis, ProGAN's z)."""
    latents, fed = [], []

    class Recording(torch.optim.Adam):
        def step(self, closure=None):
            latents.append(self.param_groups[0]["params"][0].detach().clone())
            return super().step(closure)

    monkeypatch.setattr(torch.optim, "Adam", Recording)
    family = FAMILIES[family_name]
    torch.manual_seed(0)
    g = family.generator_cls(family.presets["tiny"]).eval()
    module = g.synthesis if family_name == "stylegan_lite" else g
    forward = module.forward

    def recording(latent, *args, **kwargs):
        fed.append(latent.detach().clone())
        return forward(latent, *args, **kwargs)

    monkeypatch.setattr(module, "forward", recording)
    return g, latents, fed


def test_w_noise_decays_to_zero_at_the_ramp_and_stays_zero(monkeypatch):
    """The exploration noise added to w is w_std * 0.05 * max(0, 1 - t / 0.75)^2 at t = step / steps:
    non-zero before t = 0.75 (steps 0 to 5 of 8), exactly zero from t = 0.75 on (steps 6 and 7). Seen as the w+ fed to synthesis minus the latent
    that Adam then steps."""
    g, latents, fed = _recording_latents(monkeypatch, "stylegan_lite")
    project(g, torch.rand(3, 16, 16) * 2 - 1, ProjectionOptions(steps=8, space="w+", w_avg_samples=100))
    jitter = [(ws - latent).abs().max().item() for ws, latent in zip(fed, latents)]
    assert len(latents) == 8
    assert all(j > 0 for j in jitter[:6]), jitter
    assert jitter[6:] == [0.0, 0.0]


@pytest.mark.parametrize("family_name, space", [("progan", "z"), ("stylegan_lite", "w"), ("stylegan_lite", "w+")])
def test_exploration_noise_per_coordinate_is_the_scale_over_sqrt_dim_times_the_ramp(monkeypatch, family_name, space):
    """The noise added to the latent before each step has, per coordinate, std 0.05 * max(0, 1 - t / 0.75)^2
    times the latent's unit: 1 for ProGAN's z (the optimiser keeps z on the sphere of radius sqrt(dim), so z
    moves by 5% of its length: NVIDIA's w_std-sized noise divided by sqrt(dim)), w_std for StyleGAN's w and w+
    (NVIDIA's projector). Seen as what the generator is fed minus the latent Adam then steps, divided by that
    std, pooled over the 30 noisy steps of 40: unit variance to 5 standard errors (1 / sqrt(2 n) each)."""
    from app.projection.projector import _start

    g, latents, fed = _recording_latents(monkeypatch, family_name)
    options = ProjectionOptions(steps=40, space=space, w_avg_samples=200, z_candidates=2, seed=3)
    target = torch.rand(3, 16, 16) * 2 - 1
    unit = 1.0
    if space != "z":
        unit = _start(g, target.unsqueeze(0), options, space, None, torch.Generator().manual_seed(3))[1]
    project(g, target, options)
    fed = fed[-40:]  # ProGAN's candidate scoring calls the generator first: keep the 40 steps
    assert len(latents) == len(fed) == 40
    noisy = []
    for step, (inputs, latent) in enumerate(zip(fed, latents)):
        std = unit * 0.05 * max(0.0, 1 - step / 40 / 0.75) ** 2
        jitter = inputs[:, 0] - latent if space == "w" else inputs - latent   # w: the same w on every layer
        if step >= 30:
            assert jitter.abs().max().item() == 0.0
        else:
            noisy.append(jitter.flatten() / std)
    noisy = torch.cat(noisy)
    n = noisy.numel()
    assert noisy.square().mean().sqrt().item() == pytest.approx(1.0, abs=5 / (2 * n) ** 0.5)


@pytest.mark.parametrize("family, space, shape, noise_sides", [
    ("stylegan_lite", "w+", (1, 6, 8), (4, 8, 8)), ("stylegan_lite", "w", (1, 8), (4,)), ("progan", "z", (1, 16), ()),
])
def test_a_saved_projection_reads_back_every_field(tmp_path, family, space, shape, noise_sides):
    """``Projection.save`` then ``load`` gives back each field as it was set here: family, space, the latent and
    each noise map bit for bit and in order, the final loss, the number of optimisation steps (137, not the
    default 0) and the free-form metadata."""
    gen = torch.Generator().manual_seed(5)
    latent = torch.randn(shape, generator=gen)
    noise = [torch.randn(1, 1, side, side, generator=gen) for side in noise_sides]
    info = {"seed": 3, "loss": "lpips", "target": "me.png", "w_avg_samples": 1000}
    saved = Projection(family, space, latent, noise, loss=0.123456789, steps=137, metadata=info)
    again = Projection.load(saved.save(tmp_path / "p.safetensors"))
    assert (again.family, again.space, again.loss, again.steps, again.metadata) == (family, space, 0.123456789, 137,
                                                                                     info)
    assert torch.equal(again.latent, latent) and len(again.noise) == len(noise)
    assert all(torch.equal(a, b) for a, b in zip(again.noise, noise))


def test_progan_projection_keeps_z_on_the_sphere_of_radius_sqrt_dim_after_every_step(monkeypatch):
    """ProGAN's z prior concentrates on the sphere of radius sqrt(latent_dim) (pixel norm divides it out), so
    the projector puts z back on it after every Adam step: the latent each later step starts from, and the
    result, have norm sqrt(16) = 4 while still moving from step to step (the learning rate ramps up from 0)."""
    g, latents, _fed = _recording_latents(monkeypatch, "progan")
    dim = g.config.latent_dim
    result = project(g, torch.rand(3, 16, 16) * 2 - 1, ProjectionOptions(steps=12, z_candidates=2, seed=1, loss="pixel"))
    assert len(latents) == 12
    norms = [z.norm().item() for z in latents[1:]] + [result.latent.norm().item()]
    assert norms == pytest.approx([dim ** 0.5] * 12, rel=1e-5)
    moved = [(b - a).norm().item() for a, b in zip(latents[1:], latents[2:])]
    assert min(moved) > 1e-3, moved
