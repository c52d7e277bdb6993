"""Generators and discriminator of both families: shapes, fade-in, StyleGAN controls, determinism."""
import pytest
import torch
import torch.nn.functional as F

from families import FAMILIES, count_parameters
from progan.layers import downsample2x, upsample2x

STYLE = FAMILIES["stylegan_lite"]


def _gen(generator, z, **kw):
    if isinstance(generator, STYLE.generator_cls):
        kw.setdefault("noise_mode", "const")  # deterministic across calls
    return generator(z, **kw)


def test_output_shapes_at_every_stage(family, tiny_generator):
    config = family.presets["tiny"]
    disc = family.discriminator_cls(config)
    z = torch.randn(4, config.latent_dim)
    for stage, res in enumerate(config.resolutions):
        for alpha in (0.0, 0.5, 1.0):
            images = tiny_generator(z, stage=stage, alpha=alpha)
            assert images.shape == (4, 3, res, res)
            assert disc(images, stage=stage, alpha=alpha).shape == (4, 1)
    assert tiny_generator(z).shape == (4, 3, config.resolution, config.resolution)


def test_fade_in_endpoints(family, tiny_generator):
    config = family.presets["tiny"]
    z = torch.randn(3, config.latent_dim)
    for stage in range(1, config.num_stages):
        previous = _gen(tiny_generator, z, stage=stage - 1)
        start = _gen(tiny_generator, z, stage=stage, alpha=0.0)
        end = _gen(tiny_generator, z, stage=stage, alpha=1.0)
        half = _gen(tiny_generator, z, stage=stage, alpha=0.5)
        torch.testing.assert_close(start, upsample2x(previous))       # alpha=0: the previous stage, upsampled
        assert not torch.allclose(start, end)
        torch.testing.assert_close(half, (start + end) / 2, atol=1e-5, rtol=1e-5)  # continuous blend
        # alpha=1 equals the new stage on its own: later blocks and their ToRGB are not involved
        torch.testing.assert_close(end, _gen(tiny_generator, z, stage=stage))


def test_discriminator_fade_in_endpoints(family):
    config = family.presets["tiny"]
    torch.manual_seed(0)
    disc = family.discriminator_cls(config)
    images = torch.randn(4, 3, 16, 16)
    low = disc(downsample2x(images), stage=1)
    # alpha=0 sees only the downsampled image through the previous stage's FromRGB
    assert torch.allclose(disc(images, stage=2, alpha=0.0), low, atol=1e-6)
    assert not torch.allclose(disc(images, stage=2, alpha=1.0), low)
    with pytest.raises(ValueError, match="expects 8x8"):
        disc(images, stage=1)


def test_invalid_stage_is_a_clear_error(tiny_generator, family):
    with pytest.raises(ValueError, match="stage must be in"):
        tiny_generator(torch.randn(1, family.presets["tiny"].latent_dim), stage=7)


def test_stages_run_from_zero_to_one_below_the_stage_count(tiny_generator, family):
    """The tiny preset has 3 stages (4, 8, 16 px): stage 2 is the last, 3 and -1 are refused in G and in D."""
    config = family.presets["tiny"]
    assert config.num_stages == 3
    z = torch.randn(1, config.latent_dim)
    assert tiny_generator(z, stage=2).shape[-1] == 16 and tiny_generator(z, stage=0).shape[-1] == 4
    disc = family.discriminator_cls(config)
    assert disc(torch.zeros(1, 3, 16, 16), stage=2).shape == (1, 1)
    for bad in (3, -1):
        with pytest.raises(ValueError, match=rf"^stage must be in \[0, 2\], got {bad}$"):
            tiny_generator(z, stage=bad)
        with pytest.raises(ValueError, match=rf"^stage must be in \[0, 2\], got {bad}$"):
            disc(torch.zeros(1, 3, 16, 16), stage=bad)


def test_a_finished_fade_in_leaves_the_previous_stages_rgb_layers_without_gradient(tiny_generator, family):
    """At alpha = 1 the previous stage's ToRGB (G) and FromRGB (D) are inactive (no gradient at all, so Adam
    does not move them and the skip branch is not computed); just below 1 they get one."""
    config = family.presets["tiny"]
    disc = family.discriminator_cls(config)
    tiny_generator.train()
    for alpha, inactive in ((1.0, True), (0.999, False)):
        tiny_generator.zero_grad(set_to_none=True)
        disc.zero_grad(set_to_none=True)
        images = tiny_generator(torch.randn(2, config.latent_dim), stage=1, alpha=alpha)
        disc(images, stage=1, alpha=alpha).square().mean().backward()
        to_rgb = getattr(tiny_generator, "synthesis", tiny_generator).to_rgb  # StyleGAN-lite: in its synthesis
        for name, layer in (("G to_rgb[0]", to_rgb[0]), ("D from_rgb[0]", disc.from_rgb[0])):
            grads = [p.grad for p in layer.parameters()]
            if inactive:
                assert all(g is None for g in grads), (name, alpha)
            else:
                assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads), (name, alpha)


def test_backward_reaches_only_active_parameters(family, tiny_generator):
    config = family.presets["tiny"]
    tiny_generator.train()
    out = tiny_generator(torch.randn(2, config.latent_dim), stage=1, alpha=0.5)
    out.square().mean().backward()
    grads = {n: p.grad for n, p in tiny_generator.named_parameters()}
    assert all(g is None for n, g in grads.items() if "to_rgb.2" in n)  # stage-2 ToRGB is inactive
    assert any(g is not None and g.abs().sum() > 0 for n, g in grads.items() if "to_rgb.1" in n)
    assert any(g is not None and g.abs().sum() > 0 for n, g in grads.items() if "to_rgb.0" in n)


def test_same_seed_same_weights_and_images(family):
    config = family.presets["tiny"]
    def build():
        torch.manual_seed(123)
        return family.generator_cls(config)
    a, b = build(), build()
    z = torch.randn(2, config.latent_dim)
    kw = {"noise_mode": "const"} if family.name == "stylegan_lite" else {}
    torch.testing.assert_close(a(z, **kw), b(z, **kw), rtol=0, atol=0)


def test_paper_parameter_counts_match_the_published_figures():
    # The papers give counts rounded to 0.1M, so an exact architecture lies within 0.05M of them
    # (0.2%); one missing mapping layer (0.26M, 1%) or conv is far outside.
    published = {("progan", "G"): 23.1e6, ("progan", "D"): 23.1e6, ("stylegan_lite", "G"): 26.2e6}
    for (name, net), target in published.items():
        family = FAMILIES[name]
        config = family.presets["paper-1024"]
        with torch.device("meta"):
            module = family.generator_cls(config) if net == "G" else family.discriminator_cls(config)
        count = count_parameters(module)
        print(f"{name} {net} paper-1024: {count / 1e6:.2f}M (published {target / 1e6:.1f}M)")
        assert abs(count - target) <= 0.05e6, f"{name} {net}: {count} vs published {target / 1e6:.1f}M"


def test_the_parameter_table_gives_the_paper_models_in_millions():
    """families.parameter_table (the docs' table) writes counts in millions to 2 decimals: the paper-1024 rows
    read within 0.05M of the published 23.1M (ProGAN G and D) and 26.2M (StyleGAN G), as above."""
    from families import parameter_table

    published = {"progan": (23.1, 23.1), "stylegan_lite": (26.2, None)}
    rows = {tuple(c.strip() for c in line.strip("|").split("|")[:2]): line for line in parameter_table().splitlines()}
    for name, targets in published.items():
        cells = [c.strip() for c in rows[name, "paper-1024"].strip("|").split("|")]
        assert cells[2] == "1024" and cells[3].endswith("M") and cells[4].endswith("M")
        for cell, target in zip(cells[3:], targets):
            if target is not None:
                assert abs(float(cell[:-1]) - target) <= 0.05, (name, cell)


# --- StyleGAN-lite controls -------------------------------------------------------------------

@pytest.fixture
def style_gen():
    torch.manual_seed(0)
    g = STYLE.generator_cls(STYLE.presets["tiny"]).eval()
    with torch.no_grad():
        g.w_avg.normal_()  # a non-trivial tracked mean
        g.synthesis.input.weight.normal_()  # a learned-like constant (all-ones has no spatial content)
        for layer in g.synthesis.layers:
            layer.noise.weight.fill_(0.1)  # trained-like noise strength, so noise changes pixels
    return g


def test_truncation_psi_zero_gives_w_avg_and_psi_one_is_identity(style_gen):
    ws = style_gen.broadcast(style_gen.mapping(torch.randn(3, 16)))
    torch.testing.assert_close(style_gen.truncate(ws, psi=0.0), style_gen.w_avg.expand_as(ws))
    assert style_gen.truncate(ws, psi=1.0) is ws
    half = style_gen.truncate(ws, psi=0.5)
    torch.testing.assert_close(half, (ws + style_gen.w_avg) / 2)
    # psi=0 images are identical for every z: all collapse onto the average
    imgs = style_gen(torch.randn(3, 16), psi=0.0, noise_mode="const")
    torch.testing.assert_close(imgs[0], imgs[1])


def test_truncation_cutoff_leaves_later_layers_untouched(style_gen):
    ws = style_gen.broadcast(style_gen.mapping(torch.randn(2, 16)))
    out = style_gen.truncate(ws, psi=0.0, cutoff=2)
    torch.testing.assert_close(out[:, :2], style_gen.w_avg.expand(2, 2, -1))
    torch.testing.assert_close(out[:, 2:], ws[:, 2:], rtol=0, atol=0)


def _styles_seen(gen, **forward_kwargs):
    seen = []
    hooks = [layer.adain.register_forward_hook(lambda m, args, out: seen.append(args[1].clone()))
             for layer in gen.synthesis.layers]
    gen(**forward_kwargs)
    for h in hooks:
        h.remove()
    return seen


def test_style_mixing_uses_each_w_where_it_should(style_gen):
    z1, z2 = torch.randn(2, 16), torch.randn(2, 16)
    w1, w2 = style_gen.mapping(z1), style_gen.mapping(z2)
    crossover = 3
    seen = _styles_seen(style_gen, z=z1, mix_z=z2, crossover=crossover, noise_mode="const")
    assert len(seen) == style_gen.num_ws
    for i, w in enumerate(seen):
        torch.testing.assert_close(w, w1 if i < crossover else w2)
    with pytest.raises(ValueError, match="crossover"):
        style_gen(z1, mix_z=z2)


@pytest.mark.parametrize("crossover, cutoff", [(2, None), (2, 4), (1, 5), (4, 2)])
def test_truncation_applies_to_the_mixed_in_layers_too(style_gen, crossover, cutoff):
    """Style mixing (section 3.1) and truncation (appendix B) together: the layer styles are w1 below the
    crossover and w2 from it on, and then every layer below the cutoff (all when None) is pulled towards
    w_avg, ``w' = w_avg + psi (w - w_avg)``, whichever latent it came from. Built here layer by layer; the
    image is synthesis of exactly those styles. (4, 2): the cutoff lies below the crossover, so only w1's
    layers are truncated."""
    z1, z2 = torch.randn(2, 16), torch.randn(2, 16)
    w1, w2 = style_gen.mapping(z1), style_gen.mapping(z2)
    psi, avg = 0.4, style_gen.w_avg
    expected = []
    for i in range(style_gen.num_ws):
        w = w1 if i < crossover else w2
        expected.append(avg + psi * (w - avg) if cutoff is None or i < cutoff else w)
    kwargs = dict(z=z1, mix_z=z2, crossover=crossover, psi=psi, cutoff=cutoff, noise_mode="const")
    seen = _styles_seen(style_gen, **kwargs)
    assert len(seen) == style_gen.num_ws
    for i, (w, want) in enumerate(zip(seen, expected)):
        torch.testing.assert_close(w, want, msg=f"layer {i}")
    by_hand = style_gen.synthesis(torch.stack(expected, dim=1), noise_mode="const")
    torch.testing.assert_close(style_gen(**kwargs), by_hand)


@pytest.mark.parametrize("mode", [{"noise_mode": "random"}, {}], ids=["random", "default"])
def test_random_noise_is_drawn_for_each_sample_of_a_batch(style_gen, mode):
    """Section 3.2: the noise inputs are uncorrelated per-pixel Gaussian noise drawn for every image, so two
    copies of one latent in one batch get different stochastic detail in "random" mode, which is also what
    ``Generator(z)`` does when no mode is named, as training calls it (and the same image in "const" mode). The noise every layer receives, broadcast to the batch, differs between the two
    samples and is uncorrelated between them (|corr| of ~670 N(0, 1) pairs: std ~0.04)."""
    z = torch.randn(1, 16).repeat(2, 1)
    const = style_gen(z, noise_mode="const")
    torch.testing.assert_close(const[0], const[1], rtol=0, atol=0)
    seen = []
    hooks = [layer.noise.register_forward_hook(lambda m, args, out: seen.append(args[1].detach().clone()))
             for layer in style_gen.synthesis.layers]
    torch.manual_seed(1)
    images = style_gen(z, **mode)
    for h in hooks:
        h.remove()
    assert (images[0] - images[1]).abs().max() > 1e-3
    assert len(seen) == style_gen.num_ws
    per_sample = [noise.expand(2, 1, *noise.shape[2:]).reshape(2, -1) for noise in seen]
    for i, noise in enumerate(per_sample):
        assert not torch.equal(noise[0], noise[1]), f"layer {i}: both samples got the same noise"
    a, b = torch.cat(per_sample, dim=1)
    assert abs(torch.corrcoef(torch.stack([a, b]))[0, 1].item()) < 0.2


def test_fixed_noise_gives_identical_images_and_new_noise_changes_only_detail(style_gen):
    z = torch.randn(2, 16)
    noise = style_gen.synthesis.make_noise(2, generator=torch.Generator().manual_seed(5))
    a = style_gen(z, noise=noise)
    b = style_gen(z, noise=noise)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    other = style_gen.synthesis.make_noise(2, generator=torch.Generator().manual_seed(6))
    c = style_gen(z, noise=other)
    assert not torch.allclose(a, c)
    # noise changes detail, not content: coarse structure (4x4 means) of the same z moves far less
    # under new noise than under a new z
    d = style_gen(torch.randn(2, 16), noise=noise)
    coarse = lambda x: F.avg_pool2d(x, 4)  # noqa: E731
    assert (coarse(a) - coarse(c)).abs().mean() < 0.25 * (coarse(a) - coarse(d)).abs().mean()
    # const mode is reproducible, and random mode differs call to call
    torch.testing.assert_close(style_gen(z, noise_mode="const"), style_gen(z, noise_mode="const"))
    assert not torch.allclose(style_gen(z, noise_mode="random"), style_gen(z, noise_mode="random"))


def test_w_avg_tracks_mean_w(style_gen):
    style_gen.w_avg.zero_()
    w = torch.randn(8, 16) + 3
    style_gen.update_w_avg(w)
    torch.testing.assert_close(style_gen.w_avg, (1 - style_gen.config.w_avg_beta) * w.mean(0))


def test_w_avg_update_keeps_beta_of_the_previous_mean(style_gen):
    """``w_avg <- beta w_avg + (1 - beta) mean(w)`` from a tracked mean that is not the origin (a fresh
    model's w_avg is 0, where forgetting the previous mean looks the same), twice in a row."""
    beta = style_gen.config.w_avg_beta
    expected = torch.randn(16, dtype=torch.float64) * 2
    style_gen.w_avg.copy_(expected)
    for shift in (3.0, -1.0):
        w = torch.randn(8, 16) + shift
        style_gen.update_w_avg(w)
        expected = beta * expected + (1 - beta) * w.double().mean(0)
        torch.testing.assert_close(style_gen.w_avg.double(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("multiplier", [0.01, 0.1])
def test_the_mapping_network_learns_at_its_lr_multiplier(multiplier):
    """StyleGAN appendix C: the mapping network's learning rate is ``0.01 x`` (the preset's
    ``mapping_lr_multiplier``). Adam's first step moves every parameter with a non-zero gradient by
    exactly lr (m / sqrt(v) = g / |g|), so with equalized lr (ProGAN section 4.1: He's constant
    sqrt(2 / fan_in) applied at run time) each effective weight moves by lr * multiplier * sqrt(2 / fan_in)."""
    import dataclasses
    import math

    from progan.layers import EqualizedLinear

    config = dataclasses.replace(STYLE.presets["tiny"], mapping_lr_multiplier=multiplier)
    torch.manual_seed(0)
    g = STYLE.generator_cls(config).double()
    linears = [m for m in g.mapping.modules() if isinstance(m, EqualizedLinear)]
    assert len(linears) == config.mapping_layers
    before = [layer.effective_weight().detach().clone() for layer in linears]
    lr = 1e-3
    optimizer = torch.optim.Adam(g.mapping.parameters(), lr=lr, eps=1e-300)
    g(torch.randn(4, config.latent_dim, dtype=torch.float64), noise_mode="const").square().mean().backward()
    optimizer.step()
    for layer, old in zip(linears, before):
        moved = layer.weight.grad.abs() > 1e-200
        assert moved.double().mean() > 0.5
        delta = (layer.effective_weight().detach() - old).abs()[moved]
        expected = lr * multiplier * math.sqrt(2.0 / layer.in_features)
        torch.testing.assert_close(delta, torch.full_like(delta, expected), rtol=1e-6, atol=0)


def test_stylegan_synthesis_truncation_and_mixing_refuse_out_of_range_arguments():
    """StyleGAN-lite's noise_mode is one of three words, a given noise list covers every layer of the stage,
    and cutoff/crossover lie in [0, num_ws] (both ends meaning "none" and "all"): one-line ValueErrors."""
    family = FAMILIES["stylegan_lite"]
    torch.manual_seed(0)
    g = family.generator_cls(family.presets["tiny"]).eval()   # 16 px: stages 0-2, num_ws 6
    n = g.num_ws
    ws = g.mapping(torch.randn(2, g.config.latent_dim)).unsqueeze(1).expand(-1, n, -1).clone()  # [2, num_ws, w_dim]
    with pytest.raises(ValueError, match="noise_mode must be 'random', 'const' or 'none', got 'fixed'"):
        g.synthesis(ws, noise_mode="fixed")
    noise = [torch.zeros(1, 1, r, r) for r in (4, 4, 8, 8, 16, 16)]
    with pytest.raises(ValueError, match="^need 6 noise tensors for stage 2, got 5$"):
        g.synthesis(ws, noise=noise[:5])
    torch.testing.assert_close(g.synthesis(ws, noise=noise), g.synthesis(ws, noise_mode="none"))  # zeros = none
    other = torch.randn_like(ws)
    for bad in (-1, n + 1):
        with pytest.raises(ValueError, match=rf"^cutoff must be in \[0, {n}\], got {bad}$"):
            g.truncate(ws, psi=0.5, cutoff=bad)
        with pytest.raises(ValueError, match=rf"^crossover must be in \[0, {n}\], got {bad}$"):
            g.mix(ws, other, bad)
    w_avg = g.w_avg.view(1, 1, -1)
    torch.testing.assert_close(g.truncate(ws, psi=0.5, cutoff=n), w_avg + 0.5 * (ws - w_avg))  # all layers
    assert torch.equal(g.truncate(ws, psi=0.5, cutoff=0), ws)                                  # none
    assert torch.equal(g.mix(ws, other, n), ws) and torch.equal(g.mix(ws, other, 0), other)


def test_model_configs_refuse_what_no_network_can_be_built_from():
    """The config dataclasses validate in __post_init__ (one line each) and config_from_dict names unknown
    fields, so a damaged config.json never builds a half-right network."""
    import dataclasses

    from progan.config import config_from_dict, config_to_dict

    progan, style = FAMILIES["progan"].presets["tiny"], FAMILIES["stylegan_lite"].presets["tiny"]
    cases = [
        (progan, {"class_names": ("cat", "cat")}, r"class_names must be distinct non-empty strings, got \['cat', 'cat'\]"),
        (progan, {"class_names": ("cat", "")}, "class_names must be distinct non-empty strings"),
        (progan, {"class_names": ("cat", 3)}, "class_names must be distinct non-empty strings"),
        (progan, {"resolution": 12}, "resolution must be a power of two >= 4, got 12"),
        (progan, {"resolution": 2}, "resolution must be a power of two >= 4, got 2"),
        (progan, {"latent_dim": 0}, "latent_dim must be a positive integer, got 0"),
        (progan, {"mbstd_group_size": 0}, "mbstd_group_size must be a positive integer, got 0"),
        (progan, {"mbstd_num_features": 3}, "mbstd_num_features must divide every channel count"),
        (style, {"w_dim": 0}, "w_dim and mapping_layers must be positive"),
        (style, {"mapping_layers": 0}, "w_dim and mapping_layers must be positive"),
        (style, {"mapping_lr_multiplier": 0.0}, r"mapping_lr_multiplier must be in \(0, 1\], got 0.0"),
        (style, {"mapping_lr_multiplier": 1.5}, r"mapping_lr_multiplier must be in \(0, 1\], got 1.5"),
        (style, {"w_avg_beta": 1.0}, r"w_avg_beta must be in \[0, 1\), got 1.0"),
    ]
    for base, changes, message in cases:
        with pytest.raises(ValueError, match=f"^{message}") as info:
            dataclasses.replace(base, **changes)
        assert "\n" not in str(info.value), changes
    # the edges that are allowed
    assert dataclasses.replace(style, mapping_lr_multiplier=1.0, w_avg_beta=0.0).w_avg_beta == 0.0
    # one-wide w and a one-layer mapping network are the smallest that exist (0 is refused above)
    smallest = dataclasses.replace(style, w_dim=1, mapping_layers=1)
    tiny_g = STYLE.generator_cls(smallest)
    assert tiny_g.mapping(torch.randn(2, smallest.latent_dim)).shape == (2, 1)
    assert dataclasses.replace(progan, resolution=4, class_names=["a", "b"]).class_names == ("a", "b")
    assert dataclasses.replace(progan, mbstd_num_features=2).mbstd_num_features == 2   # tiny widths are even
    values = config_to_dict(style)
    assert config_from_dict(type(style), values) == style
    with pytest.raises(ValueError, match="^unknown StyleGANConfig fields: colour, depth$"):
        config_from_dict(type(style), {**values, "depth": 3, "colour": 1})


def test_const_noise_is_each_layers_own_draw_from_seed_0(style_gen):
    """noise_mode "const": layer i's noise is the i-th map drawn from a generator seeded 0 (one map per
    layer, two layers per resolution, each its own draw), whatever the batch; built here by hand."""
    seeded = torch.Generator().manual_seed(0)
    resolutions = style_gen.config.resolutions
    by_hand = [torch.randn(1, 1, r, r, generator=seeded) for r in resolutions for _ in range(2)]
    assert not torch.equal(by_hand[0], by_hand[1])                     # the two layers of a resolution differ
    ws = style_gen.broadcast(style_gen.mapping(torch.randn(3, 16, generator=torch.Generator().manual_seed(1))))
    with torch.no_grad():
        const = style_gen.synthesis(ws, noise_mode="const")
        explicit = style_gen.synthesis(ws, noise=[n.expand(3, -1, -1, -1) for n in by_hand])
    torch.testing.assert_close(const, explicit)
