"""Latent paths on fixtures that do not hide bugs (issue 20, red-team pass R3).

- slerp between vectors of *different lengths* at a known angle: the closed form
  ``sin((1-t) omega)/sin(omega) a + sin(t omega)/sin(omega) b`` with omega the angle between the
  directions (White 2016); unit-length inputs would hide an angle taken from the raw vectors.
- style mixing with a projected image among the keys *and* truncation: the seed keys beside the
  image are truncated like any seed (``app.keys``), the image is not; expected pixels are built here
  from the mapping, the truncation formula and the synthesis.
- noise "none" beside a projected image: one zero map per synthesis layer (two per resolution), so a
  mixing grid draws the seeds with all-zero noise.
- a ProGAN walk through a projected image (a z): frame 1 of 4 is slerp's or lerp's closed form at t = 1/3,
  as asked (issue 20 kwarg sweep).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from app.interpolation import slerp
from app.mixing import render_mixing, style_layers
from app.projection import Projection
from app.sampling import seed_latents
from model_utils import tiny_stylegan


def test_slerp_of_vectors_of_different_lengths_follows_the_closed_form():
    # a has length 2, b length 3, 60 degrees apart: <a, b> = 3, which a clamp to [-1, 1] would read as 0 degrees
    a = torch.tensor([2.0, 0.0, 0.0], dtype=torch.float64)
    b = 3.0 * torch.tensor([math.cos(math.pi / 3), math.sin(math.pi / 3), 0.0], dtype=torch.float64)
    omega = math.pi / 3
    for t in (0.25, 0.5, 0.8):
        expected = (math.sin((1 - t) * omega) * a + math.sin(t * omega) * b) / math.sin(omega)
        torch.testing.assert_close(slerp(a, b, t), expected)
    # and it is not the straight line (the midpoint of lerp is shorter)
    assert (slerp(a, b, 0.5) - (a + b) / 2).norm() > 0.1


def _by_hand(g, seeds: list[int], psi: float) -> torch.Tensor:
    """Seeds -> ``w_avg + psi (w - w_avg)`` on every layer, ``[N, num_ws, w_dim]``, written out here."""
    with torch.no_grad():
        w = g.mapping(seed_latents(seeds, g.config.latent_dim))
    w = g.w_avg + psi * (w - g.w_avg)
    return w.unsqueeze(1).repeat(1, g.num_ws, 1)


def _pixels(g, ws: torch.Tensor, noise) -> np.ndarray:
    with torch.no_grad():
        images = g.synthesis(ws, noise=noise)
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy().astype(int)


def test_mixing_with_an_image_truncates_the_seeds_beside_it():
    """rows = [image, 7], columns = [1, 2], psi 0.5: the seeds (rows and columns) are truncated, the image
    keeps its own w; every cell is column A's ws with the coarse layers of row B, drawn with A's noise."""
    g = tiny_stylegan(w_avg_scale=2.0)
    torch.manual_seed(3)
    w_image = torch.randn(1, g.config.w_dim)
    image_noise = g.synthesis.make_noise(1)
    image = Projection("stylegan_lite", "w", w_image, image_noise)
    psi = 0.5
    const = [getattr(g.synthesis, f"noise_const_{i}") for i in range(len(g.synthesis.layers))]  # "fixed"
    rows, cols, cells = render_mixing(g, [image, 7], [1, 2], styles="coarse", psi=psi, noise="fixed")
    ws_cols = _by_hand(g, [1, 2], psi)
    ws_rows = torch.cat([w_image.unsqueeze(1).repeat(1, g.num_ws, 1), _by_hand(g, [7], psi)])
    expect_cols = _pixels(g, ws_cols, const)
    assert np.abs(cols.astype(int) - expect_cols).max() <= 1
    untruncated = _pixels(g, _by_hand(g, [1, 2], 1.0), const)
    assert np.abs(untruncated - expect_cols).max() > 8               # psi shows in these pixels
    assert np.abs(rows[1].astype(int) - _pixels(g, ws_rows[1:], const)[0]).max() <= 1
    assert np.abs(rows[0].astype(int) - _pixels(g, ws_rows[:1], image_noise)[0]).max() <= 1
    coarse = style_layers(g.config, "coarse")
    for r in range(2):
        for c in range(2):
            ws = ws_cols[c:c + 1].clone()
            ws[:, coarse] = ws_rows[r:r + 1, coarse]
            assert np.abs(cells[r, c].astype(int) - _pixels(g, ws, const)[0]).max() <= 1, (r, c)


def test_progan_projection_starts_from_the_best_of_its_random_z():
    """ProGAN's projector tries ``z_candidates`` random z (drawn from its seed) and starts at the one whose
    image is closest. With the target equal to candidate 17's image, that is candidate 17 (distance 0).
    One step: the learning rate is 0 at t = 0 (ramp-up), so the result is the start put back on its
    sphere of radius sqrt(latent_dim)."""
    from app.projection import ProjectionOptions, project
    from families import FAMILIES

    torch.manual_seed(0)
    g = FAMILIES["progan"].generator_cls(FAMILIES["progan"].presets["tiny"]).eval()
    dim, seed = g.config.latent_dim, 5
    candidates = torch.randn(64, dim, generator=torch.Generator("cpu").manual_seed(seed))
    with torch.no_grad():
        target = g(candidates[17:18])[0]
    result = project(g, target, ProjectionOptions(steps=1, seed=seed, loss="pixel"))
    expected = candidates[17] * math.sqrt(dim) / candidates[17].norm()
    torch.testing.assert_close(result.latent[0], expected, rtol=1e-4, atol=1e-4)


def _noisy_generator_and_projection(seed):
    """A tiny StyleGAN-lite whose noise strengths are 0.5 (at a fresh model's 0 every noise map draws the same
    picture) and a projected image of it: a random w and its own noise maps, drawn from `seed`."""
    g = tiny_stylegan(w_avg_scale=2.0)
    with torch.no_grad():
        for layer in g.synthesis.layers:
            layer.noise.weight.fill_(0.5)
    torch.manual_seed(seed)
    return g, Projection("stylegan_lite", "w", torch.randn(1, g.config.w_dim), g.synthesis.make_noise(1))


def test_a_walk_from_a_seed_to_an_image_ends_on_the_images_reconstruction():
    """keys "3,image": the clip uses the projected image's own noise maps for every frame (app.interpolation),
    even when the image is not the first key, so the last frame is the image's reconstruction. The noise
    strengths are 0.5 here: at a fresh model's 0 every noise map draws the same picture."""
    g, image = _noisy_generator_and_projection(seed=4)
    from app.interpolation import render_interpolation

    clip = render_interpolation(g, [3, image], frames=4, space="w", method="lerp", noise="fixed")
    reconstruction = _pixels(g, image.ws(g), image.noise)[0]
    assert np.abs(clip[-1].astype(int) - reconstruction).max() <= 1
    const = [getattr(g.synthesis, f"noise_const_{i}") for i in range(len(g.synthesis.layers))]
    assert np.abs(_pixels(g, image.ws(g), const)[0] - reconstruction).max() > 8   # the noise shows


def test_noise_none_beside_an_image_gives_a_zero_map_per_layer_and_the_grid_draws_with_it():
    """noise "none" with a projected image among the keys (app.keys.key_noise): every seed key gets one zero
    map per synthesis layer, two per resolution (``[1, 1, r, r]`` at resolutions[i // 2]), the image keeps its
    own maps; a mixing grid [image] x [3] then draws the seed column with all-zero noise. Noise strengths are
    0.5 so that zero noise and the constant maps draw different pictures."""
    from app.keys import key_noise

    g, image = _noisy_generator_and_projection(seed=5)
    resolutions = g.config.resolutions
    noise = key_noise(g, [3, image, 5], "none")
    assert len(noise) == 2 * len(resolutions) == len(g.synthesis.layers)
    for i, maps in enumerate(noise):
        r = resolutions[i // 2]
        assert maps.shape == (3, 1, r, r), i
        assert torch.count_nonzero(maps[0]) == 0 and torch.count_nonzero(maps[2]) == 0, i
        assert torch.equal(maps[1:2], image.noise[i]), i
    zeros = [torch.zeros(1, 1, resolutions[i // 2], resolutions[i // 2]) for i in range(2 * len(resolutions))]
    _, cols, _ = render_mixing(g, [image], [3], styles="coarse", noise="none")
    expected = _pixels(g, _by_hand(g, [3], 1.0), zeros)[0]
    assert np.abs(cols[0].astype(int) - expected).max() <= 1
    const = [getattr(g.synthesis, f"noise_const_{i}") for i in range(len(g.synthesis.layers))]
    assert np.abs(_pixels(g, _by_hand(g, [3], 1.0), const)[0] - expected).max() > 8   # the noise shows


def test_a_progan_walk_through_an_image_follows_the_method_it_is_given():
    """ProGAN keys "3,image" (a projection is a z): the walk goes through z by the method asked. With 4
    frames, frame 1 is at t = 1/3 between z_3 and the image's z: slerp is the closed form
    ``(sin(2w/3) a + sin(w/3) b) / sin(w)`` (w the angle between them), lerp ``2/3 a + 1/3 b``; with
    a and b of different lengths the two point in different directions, so they draw different pictures."""
    from app.interpolation import render_interpolation
    from families import FAMILIES

    torch.manual_seed(0)
    g = FAMILIES["progan"].generator_cls(FAMILIES["progan"].presets["tiny"]).eval()
    dim = g.config.latent_dim
    b = 2.5 * torch.randn(1, dim, generator=torch.Generator().manual_seed(11))
    image = Projection("progan", "z", b)
    a = seed_latents([3], dim)
    a64, b64 = a.double()[0], b.double()[0]
    omega = math.acos(float(a64 @ b64 / (a64.norm() * b64.norm())))
    by_method = {"slerp": ((math.sin(2 * omega / 3) * a64 + math.sin(omega / 3) * b64) / math.sin(omega)),
                 "lerp": (2 * a64 + b64) / 3}
    expected = {}
    for method, z in by_method.items():
        with torch.no_grad():
            img = g(z.float()[None])
        expected[method] = ((img.clamp(-1, 1) + 1) * 127.5).round().permute(0, 2, 3, 1).numpy().astype(int)[0]
    for method in ("slerp", "lerp"):
        clip = render_interpolation(g, [3, image], frames=4, space="z", method=method)
        assert np.abs(clip[1].astype(int) - expected[method]).max() <= 1, method
    assert np.abs(expected["slerp"] - expected["lerp"]).max() > 8


def test_seeds_beside_an_image_are_truncated_only_below_the_cutoff():
    """``key_styles`` for keys [image, 7, 2] with psi 0.5: each seed's layers ``< cutoff`` are
    ``w_avg + psi (w - w_avg)`` and the layers from the cutoff on keep the mapped w, as for seeds alone
    (StyleGAN's truncation cutoff); the image keeps its own w on every layer. Expectation written out
    here from the mapping; cutoff 0 (nothing truncated), 2 and num_ws (everything) cover both sides."""
    from app.keys import key_styles

    g = tiny_stylegan(w_avg_scale=2.0)
    torch.manual_seed(6)
    w_image = torch.randn(1, g.config.w_dim)
    image = Projection("stylegan_lite", "w", w_image, g.synthesis.make_noise(1))
    psi = 0.5
    raw = _by_hand(g, [7, 2], 1.0)
    pulled = _by_hand(g, [7, 2], psi)
    for cutoff in (0, 2, g.num_ws):
        expected = torch.cat([w_image.unsqueeze(1).repeat(1, g.num_ws, 1),
                              torch.cat([pulled[:, :cutoff], raw[:, cutoff:]], dim=1)])
        with torch.no_grad():
            ws = key_styles(g, [image, 7, 2], psi=psi, cutoff=cutoff)
        torch.testing.assert_close(ws, expected, rtol=1e-5, atol=1e-5, msg=f"cutoff {cutoff}")
    assert (pulled - raw).abs().max() > 0.1                               # psi shows in these styles
