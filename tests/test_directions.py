"""SeFa (Shen & Zhou, CVPR 2021, section 3.2): eigenvectors of A^T A, what A is, caching, edits, the CLIs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app.directions import (Directions, cached_directions, compute_directions, edit_images, edit_latent, factorize,
                            main as directions_main, projection_weight)
from app.edit import parse_indices, strengths_for
from app.generate import main as generate_main
from app.sampling import generate_images, seed_latents, seed_noise, styles_from_z, to_uint8
from families import FAMILIES, load_generator

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = {name: ROOT / "weights" / f"{name}-openmoji" for name in FAMILIES}


def _orthogonal(n: int, seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q


def test_factorize_recovers_a_known_spectrum():
    # A = U diag(s) V^T with U, V orthogonal: A^T A = V diag(s^2) V^T, so the top-k directions are V's
    # columns in order of s, with eigenvalues s^2 (eq. 6), whatever the row count of A.
    dim, rows, k = 12, 40, 5
    s = torch.tensor([9.0, 7.0, 5.5, 4.0, 3.0, 2.5, 2.0, 1.5, 1.0, 0.5, 0.25, 0.1], dtype=torch.float64)
    u, v = _orthogonal(rows, 1)[:, :dim], _orthogonal(dim, 2)
    a = u @ torch.diag(s) @ v.T                                           # [rows, dim]
    vectors, values = factorize(a, k)
    assert vectors.shape == (k, dim) and values.shape == (k,)
    torch.testing.assert_close(vectors @ vectors.T, torch.eye(k, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(values, s[:k] ** 2, atol=1e-9, rtol=0)
    for i in range(k):  # each is +-V's i-th column, and the eigenvector torch.linalg.eigh finds
        assert abs(float(vectors[i] @ v[:, i])) == pytest.approx(1.0, abs=1e-10)
        lam, vec = torch.linalg.eigh(a.T @ a)
        assert abs(float(vectors[i] @ vec[:, -1 - i])) == pytest.approx(1.0, abs=1e-10)
        torch.testing.assert_close(a.T @ a @ vectors[i], values[i] * vectors[i], atol=1e-9, rtol=0)
    # the first direction maximises ||A n|| (eq. 5): no random unit vector beats it
    n = torch.nn.functional.normalize(torch.randn(1000, dim, dtype=torch.float64), dim=1)
    assert (a @ n.T).norm(dim=0).max() <= (a @ vectors[0]).norm() + 1e-9


def test_factorize_takes_k_up_to_the_latent_size():
    # k == dim is the whole eigenbasis: V's columns in the order of s (an orthogonal matrix), eigenvalues
    # s^2; k == dim + 1 names the latent size in the refusal
    dim = 6
    s = torch.tensor([6.0, 5.0, 4.0, 3.0, 2.0, 1.0], dtype=torch.float64)
    u, v = _orthogonal(10, 3)[:, :dim], _orthogonal(dim, 4)
    vectors, values = factorize(u @ torch.diag(s) @ v.T, dim)
    assert vectors.shape == (dim, dim)
    torch.testing.assert_close(values, s ** 2, atol=1e-9, rtol=0)
    torch.testing.assert_close((vectors @ v).abs(), torch.eye(dim, dtype=torch.float64), atol=1e-9, rtol=0)
    with pytest.raises(ValueError, match=rf"^k must be between 1 and {dim} \(the latent size\), got {dim + 1}$"):
        factorize(u @ torch.diag(s) @ v.T, dim + 1)


def test_a_is_the_effective_map_from_the_latent(tiny_generator):
    # eq. 3: moving the latent by n moves the first layers' input by exactly A n (equalized-lr scale included)
    g = tiny_generator
    last = g.num_ws - 1 if g.config.family == "stylegan_lite" else 0
    a = projection_weight(g, (0, last)).float()
    latent_dim = g.config.w_dim if g.config.family == "stylegan_lite" else g.config.latent_dim
    x, n = torch.randn(3, latent_dim), torch.randn(latent_dim)
    if g.config.family == "stylegan_lite":
        affines = [layer.adain.affine for layer in g.synthesis.layers]
    else:
        affines = [g.blocks[0].dense]
    with torch.no_grad():
        moved = torch.cat([f(x + n) - f(x) for f in affines], dim=1)      # [3, rows]
    torch.testing.assert_close(moved, (a @ n).expand(3, -1), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("family_name", list(FAMILIES))
def test_bundled_directions_are_orthonormal_eigenvectors(family_name):
    g = load_generator(BUNDLED[family_name], progress=False)
    layers = (0, 3) if family_name == "stylegan_lite" else (0, 0)
    d = compute_directions(g, layers=layers, k=8)
    v = d.vectors.double()
    torch.testing.assert_close(v @ v.T, torch.eye(8, dtype=torch.float64), atol=1e-5, rtol=0)
    ata = projection_weight(g, layers).T @ projection_weight(g, layers)
    torch.testing.assert_close(ata @ v.T, v.T * d.eigenvalues, atol=1e-3 * float(d.eigenvalues[0]), rtol=0)
    assert torch.all(d.eigenvalues[:-1] >= d.eigenvalues[1:])
    assert torch.all(d.sigma > 0)


def _pixel_change(g, direction: torch.Tensor, layers: tuple[int, int], alpha: float, seeds: list[int]) -> float:
    unit = Directions(direction[None].float(), torch.ones(1), torch.ones(1), layers, g.config.family, "")
    with torch.no_grad():
        if g.config.family == "stylegan_lite":
            ws = styles_from_z(g, seed_latents(seeds, g.config.latent_dim))
            before = g.synthesis(ws, noise_mode="const")
            after = g.synthesis(edit_latent(ws, unit, [alpha]), noise_mode="const")
        else:
            z = seed_latents(seeds, g.config.latent_dim)
            before, after = g(z), g(edit_latent(z, unit, [alpha]))
    return float((after - before).flatten(1).norm(dim=1).mean())


@pytest.mark.parametrize("family_name", list(FAMILIES))
def test_top_direction_changes_images_more_than_random_ones(family_name):
    # the claim of section 3.2 on the bundled weights: the top direction moves the pixels more, per unit step.
    # Measured in the near-linear regime (StyleGAN-lite 0.5 in w, about 0.3 sigma): at 2.0 the pixel change
    # saturates and the top direction (37.4) no longer beats every one of 8 random ones (mean 32.8, max 38.1)
    g = load_generator(BUNDLED[family_name], progress=False)
    layers = (0, 3) if family_name == "stylegan_lite" else (0, 0)
    d = compute_directions(g, layers=layers, k=1)
    seeds, alpha = list(range(8)), 0.5 if family_name == "stylegan_lite" else 1.0
    top = _pixel_change(g, d.vectors[0], layers, alpha, seeds)
    dim = d.vectors.shape[1]
    rng = torch.Generator().manual_seed(0)
    randoms = [_pixel_change(g, torch.nn.functional.normalize(torch.randn(dim, generator=rng), dim=0), layers, alpha,
                             seeds) for _ in range(8)]
    assert top > max(randoms), (top, randoms)


@pytest.mark.parametrize("family_name, layers, k, message", [
    ("stylegan_lite", "3-1", 5, "runs backwards"),
    ("stylegan_lite", "0-6", 5, "outside this model"),      # tiny: 6 style layers, 0-5
    ("stylegan_lite", "a-b", 5, "cannot read layer range"),
    ("stylegan_lite", "all", 0, "k must be between 1 and"),
    ("stylegan_lite", "all", 10_000, "k must be between 1 and"),
    ("progan", "1", 5, "outside this model"),
    ("progan", "0", 0, "k must be between 1 and"),
])
def test_bad_layers_or_k_are_one_line(family_name, layers, k, message):
    torch.manual_seed(0)
    g = FAMILIES[family_name].generator_cls(FAMILIES[family_name].presets["tiny"])
    with pytest.raises(ValueError, match=message) as info:
        compute_directions(g, layers=layers, k=k)
    assert "\n" not in str(info.value)


def test_cli_refuses_bad_input_with_one_line(weights, capsys, tmp_path):
    assert directions_main(["--weights", str(weights["stylegan_lite"]), "--layers", "0-99"]) == 2
    assert directions_main(["--weights", str(weights["progan"]), "--k", "0"]) == 2
    assert directions_main(["--weights", str(weights["progan"]), "--out", str(tmp_path / "d.pt")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("error: ") for line in lines)
    assert not list(tmp_path.iterdir())                                  # nothing half-written


def test_cli_writes_the_file_and_the_cache_reuses_it(weights, tmp_path, capsys, monkeypatch):
    out = tmp_path / "d.safetensors"
    assert directions_main(["--weights", str(weights["stylegan_lite"]), "--layers", "0-3", "--k", "4",
                            "--out", str(out)]) == 0
    d = Directions.load(out)
    g = load_generator(weights["stylegan_lite"], progress=False)
    assert d.layers == (0, 3) and d.k == 4 and d.family == "stylegan_lite"
    fresh = compute_directions(g, layers="0-3", k=4)
    assert d.weights_sha256 == fresh.weights_sha256
    torch.testing.assert_close(d.vectors, fresh.vectors)
    # computed once per model: the second call reads the cache, it does not factorize again
    monkeypatch.setattr("app.directions.compute_directions", lambda *a, **k: pytest.fail("recomputed"))
    again = cached_directions(g, layers="0-3", k=4)
    torch.testing.assert_close(again.vectors, d.vectors)
    with pytest.raises(ValueError, match="not a directions file"):
        Directions.load(weights["stylegan_lite"] / "model.safetensors")


def test_cli_lists_at_most_five_eigenvalues_and_marks_the_rest(weights, capsys):
    # the summary line shows the top five eigenvalues; ", ..." only when there are more than five
    g = load_generator(weights["progan"], progress=False)
    for k, tail in ((5, ""), (6, ", ...")):
        assert directions_main(["--weights", str(weights["progan"]), "--k", str(k)]) == 0
        top = ", ".join(f"{v:.3g}" for v in compute_directions(g, k=5).eigenvalues.tolist())
        assert f"eigenvalues {top}{tail}; weights sha256 " in capsys.readouterr().out


def test_other_weights_get_their_own_directions(tmp_path):
    family = FAMILIES["stylegan_lite"]
    torch.manual_seed(0)
    a = family.generator_cls(family.presets["tiny"])
    torch.manual_seed(1)
    b = family.generator_cls(family.presets["tiny"])
    da, db = cached_directions(a, k=3, cache_dir=tmp_path), cached_directions(b, k=3, cache_dir=tmp_path)
    assert da.weights_sha256 != db.weights_sha256 and len(list(tmp_path.glob("*.safetensors"))) == 2
    with pytest.raises(ValueError, match="other weights"):
        da.check_fits(b, db.weights_sha256)


@pytest.mark.parametrize("family_name", list(FAMILIES))
def test_edit_at_strength_zero_is_the_sample_and_edits_differ(weights, family_name):
    g = load_generator(weights[family_name], progress=False)
    d = compute_directions(g, k=3)
    images = edit_images(g, 5, d, [[0.0], [3.0], [0.0, 0.0, -3.0]], noise="fixed")
    assert images.shape == (3, 16, 16, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[0], generate_images(g, [5], noise="fixed")[0])
    assert np.abs(images[1].astype(int) - images[0]).sum() > 0 and np.abs(images[2].astype(int) - images[0]).sum() > 0


@pytest.mark.parametrize("noise", ["random", "fixed", "none"])
def test_edits_draw_the_noise_mode_they_are_given_and_keep_it_along_the_row(noise):
    """Each noise mode's strength-0 edit is the sample tab's image of that seed in that mode (and not the
    other modes' images), and the edit at strength 2 keeps that same noise: it is the synthesis of the
    edited w with the seed's noise maps (its stream after z; the constant buffers; zeros). The model's
    noise strengths are 0.5 here: a fresh model's are 0, where every noise mode gives the same picture."""
    family = FAMILIES["stylegan_lite"]
    torch.manual_seed(0)
    g = family.generator_cls(family.presets["tiny"]).eval()
    with torch.no_grad():
        g.synthesis.input.weight.normal_()
        for layer in g.synthesis.layers:
            layer.noise.weight.fill_(0.5)
    d = compute_directions(g, k=2)
    images = edit_images(g, 5, d, [[0.0], [2.0]], noise=noise)
    np.testing.assert_array_equal(images[0], generate_images(g, [5], noise=noise)[0])
    for other in {"random", "fixed", "none"} - {noise}:
        assert np.abs(images[0].astype(int) - generate_images(g, [5], noise=other)[0]).max() > 8, other
    synthesis = g.synthesis
    maps = {"random": seed_noise(g, [5]),
            "fixed": [getattr(synthesis, f"noise_const_{i}") for i in range(len(synthesis.layers))],
            "none": [torch.zeros(1, 1, r, r) for r in g.config.resolutions for _ in range(2)]}[noise]
    with torch.no_grad():
        edited = edit_latent(styles_from_z(g, seed_latents([5], g.config.latent_dim)), d, [2.0])
        expected = to_uint8(synthesis(edited, noise=maps))[0]
    # the row is one batch, this a batch of one: a CPU with other kernels (AVX-512) may round a pixel to the
    # next level; another noise mode moves pixels by more than 8 (above)
    assert np.abs(images[1].astype(int) - expected.astype(int)).max() <= 1


def test_edit_moves_only_the_chosen_layers():
    d = Directions(torch.eye(4)[:1], torch.ones(1), torch.tensor([2.0]), (1, 2), "stylegan_lite", "")
    ws = torch.zeros(1, 5, 4)
    moved = edit_latent(ws, d, [1.5])
    assert torch.equal(moved[0, [0, 3, 4]], torch.zeros(3, 4))
    torch.testing.assert_close(moved[0, 1:3], torch.tensor([[3.0, 0, 0, 0]] * 2))  # strength x sigma along n


def test_edit_grid_cli(weights, tmp_path, capsys):
    out = tmp_path / "edit.png"
    assert generate_main(["edit", "--weights", str(weights["stylegan_lite"]), "--seeds", "0,1", "--layers", "0-3",
                          "--directions", "0-2", "--steps", "3", "--out", str(out)]) == 0
    with Image.open(out) as grid:
        # tiny is 16 px: cells enlarged to 64; 92 px of labels on the left, 16 on top, 2 px gaps
        assert grid.size == (92 + 3 * 66, 16 + 2 * 3 * 66)
        middle = np.asarray(grid.convert("RGB"))[16:16 + 64:4, 92 + 66:92 + 66 + 64:4]  # seed 0, direction 0, strength 0
    np.testing.assert_array_equal(middle, generate_images(load_generator(weights["stylegan_lite"], progress=False),
                                                          [0], noise="fixed")[0])
    assert generate_main(["edit", "--weights", str(weights["stylegan_lite"]), "--directions", "0-12", "--k", "4",
                          "--out", str(tmp_path / "bad.png")]) == 2
    assert "directions must lie in 0-3" in capsys.readouterr().err
    assert not (tmp_path / "bad.png").exists()


def test_parse_indices_and_strengths():
    assert parse_indices("0-2,5", 6) == [0, 1, 2, 5]
    assert strengths_for(3, 5) == [-3.0, -1.5, 0.0, 1.5, 3.0]
    for bad in ("x", "3-1", "0-6"):
        with pytest.raises(ValueError):
            parse_indices(bad, 6)
    with pytest.raises(ValueError):
        strengths_for(100, 5)


def test_steps_are_refused_outside_the_helps_2_to_21():
    """``edit --steps`` is "columns (strengths) per row, 2-21" (its --help): both ends give that many evenly
    spaced strengths, one column fewer or more is a one-line ValueError naming --steps."""
    assert strengths_for(1.0, 2) == [-1.0, 1.0]
    assert np.allclose(strengths_for(2.0, 21), [-2.0 + 0.2 * i for i in range(21)])
    for bad in (1, 22, 0):
        with pytest.raises(ValueError, match="--steps"):
            strengths_for(1.0, bad)


def test_directions_save_to_a_str_path_in_a_folder_that_does_not_exist_yet(tmp_path):
    """``Directions.save`` takes any path (a str from the CLI or the app) and makes its folder, like every
    other writer here; the file loads back to the same vectors."""
    d = Directions(torch.eye(4)[:2], torch.tensor([3.0, 1.0]), torch.tensor([1.5, 0.5]), (0, 3), "stylegan_lite", "ab" * 32)
    target = tmp_path / "new" / "deeper" / "directions.safetensors"
    written = d.save(str(target))
    assert written == target and target.is_file()
    back = Directions.load(target)
    assert torch.equal(back.vectors, d.vectors) and back.layers == (0, 3) and back.k == 2


@pytest.mark.parametrize("family_name", list(FAMILIES))
def test_edit_grid_of_a_projected_image(weights, tmp_path, family_name):
    # `image` among the seeds: the strength-0 cell is the projection's own reconstruction (its noise maps)
    from app.projection import ProjectionOptions, image_to_target, project, reconstruction_pixels

    g = load_generator(weights[family_name], progress=False)
    target = np.full((16, 16, 3), 255, np.uint8)
    target[4:12, 4:12] = (230, 180, 30)
    projection = project(g, image_to_target(target), ProjectionOptions(steps=3, w_avg_samples=200))
    latent = projection.save(tmp_path / "latent.safetensors")
    out = tmp_path / "edit.png"
    assert generate_main(["edit", "--weights", str(weights[family_name]), "--latent", str(latent), "--seeds", "image",
                          "--directions", "0", "--steps", "3", "--out", str(out)]) == 0
    with Image.open(out) as grid:
        middle = np.asarray(grid.convert("RGB"))[16:16 + 64:4, 92 + 66:92 + 66 + 64:4]
    np.testing.assert_array_equal(middle, reconstruction_pixels(projection.render(g)))


def test_directions_of_another_family_or_a_bad_k_or_too_many_strengths_are_one_line():
    """A directions file belongs to one family; k is a whole number; at most k strengths, none = no edit."""
    torch.manual_seed(0)
    style = FAMILIES["stylegan_lite"].generator_cls(FAMILIES["stylegan_lite"].presets["tiny"])
    progan = FAMILIES["progan"].generator_cls(FAMILIES["progan"].presets["tiny"])
    d = Directions(torch.eye(4)[:3], torch.ones(3), torch.ones(3), (0, 1), "stylegan_lite", "")
    d.check_fits(style)                                           # its own family, no digest: fits
    for digest in (None, ""):                                     # the family is checked with or without a digest
        with pytest.raises(ValueError, match="belong to a stylegan_lite model, not progan") as info:
            d.check_fits(progan, digest)
        assert "\n" not in str(info.value)
    for k in (True, 2.0, "3"):
        with pytest.raises(ValueError, match=rf"k must be a whole number, got {k!r}"):
            compute_directions(style, k=k)
    assert compute_directions(style, k=np.int64(2)).k == 2        # a NumPy integer is a whole number
    ws = torch.randn(2, 6, 4)
    with pytest.raises(ValueError, match="^4 strengths for 3 directions$"):
        edit_latent(ws, d, [0.0, 0.0, 0.0, 1.0])
    assert torch.equal(edit_latent(ws, d, []), ws)
    moved = edit_latent(ws, d, [0.0, 0.0, 2.0])                   # exactly k strengths: the last moves along e_2
    torch.testing.assert_close(moved[:, :2] - ws[:, :2], torch.tensor([0.0, 0.0, 2.0, 0.0]).expand(2, 2, 4))


def test_a_damaged_or_foreign_cache_file_is_recomputed_and_replaced(tmp_path, monkeypatch):
    family = FAMILIES["stylegan_lite"]
    torch.manual_seed(0)
    g = family.generator_cls(family.presets["tiny"])
    expected = compute_directions(g, layers="0-2", k=3)
    first = cached_directions(g, layers="0-2", k=3, cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.safetensors")
    torch.manual_seed(1)
    other = compute_directions(family.generator_cls(family.presets["tiny"]), layers="0-2", k=3)
    for bad in (b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}", None):
        if bad is None:
            other.save(path)                                     # a valid file of other weights under this name
        else:
            path.write_bytes(bad)
        again = cached_directions(g, layers="0-2", k=3, cache_dir=tmp_path)
        assert again.weights_sha256 == expected.weights_sha256
        torch.testing.assert_close(again.vectors, expected.vectors)
        assert Directions.load(path).weights_sha256 == expected.weights_sha256   # the file itself was replaced
    torch.testing.assert_close(first.vectors, expected.vectors)


def test_the_weights_digest_tells_apart_tensors_whose_bytes_agree():
    """``weights_digest`` (the key of the directions cache and of ``check_fits``) covers each tensor's name,
    dtype and shape as its docstring says: the same bytes under another name, shape or dtype are other
    weights, and get another digest (bytes alone would hand one model's cached directions to another)."""
    from app.directions import weights_digest

    def module(**tensors: torch.Tensor) -> torch.nn.Module:
        m = torch.nn.Module()
        for name, t in tensors.items():
            m.register_buffer(name, t)
        return m

    data = torch.arange(6, dtype=torch.float32)
    base = weights_digest(module(a=data.reshape(2, 3)))
    assert weights_digest(module(a=data.reshape(2, 3).clone())) == base          # same weights: same digest
    others = [module(a=data.reshape(3, 2)),                                     # shape
              module(b=data.reshape(2, 3)),                                     # name
              module(a=data.reshape(2, 3).view(torch.int32))]                   # dtype, the very same bytes
    assert len({base, *(weights_digest(m) for m in others)}) == 4


def test_an_edit_stays_on_the_latents_device_and_dtype():
    """``edit_latent`` moves the step to the latent: a latent in bfloat16 comes back in bfloat16 moved by
    sum s_i sigma_i n_i (here [1, 0, 1.5, 0], exact in bfloat16), and a latent on another device (meta on
    CPU, CUDA where there is one) stays there instead of failing on a CPU step."""
    d = Directions(torch.eye(4)[:3], torch.ones(3), torch.tensor([1.0, 2.0, 3.0]), (0, 1), "progan", "")
    z = torch.tensor([[1.0, 2.0, 3.0, 4.0], [-1.0, 0.0, 0.5, 8.0]], dtype=torch.bfloat16)
    moved = edit_latent(z, d, [1.0, 0.0, 0.5])
    assert moved.dtype == torch.bfloat16
    assert torch.equal(moved, z + torch.tensor([1.0, 0.0, 1.5, 0.0], dtype=torch.bfloat16))
    assert edit_latent(torch.zeros(2, 4, device="meta"), d, [1.0]).device.type == "meta"
    if torch.cuda.is_available():
        for latent in (z.float().cuda(), z.float().cuda()[:, None].expand(2, 3, 4)):
            out = edit_latent(latent, d, [1.0, 0.0, 0.5], layers=(0, 2))
            assert out.device == latent.device
            torch.testing.assert_close(out.cpu(), latent.cpu() + torch.tensor([1.0, 0.0, 1.5, 0.0]))
