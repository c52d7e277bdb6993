"""One-line refusals of the app's cores and events that no other fast test reached.

The sampling, interpolation, mixing and keys cores are called directly with what the UI's own checks
would refuse first (``app.limits``), because the CLI and Python callers reach them without the UI:
each bad value must be a one-line ``ValueError`` naming it (and a value at the bound is accepted).
Through the events: ProGAN style mixing, a streamed (generator) event's error, and a projected image
of another model become one-line ``gr.Error``s; a ProGAN projection ignores the space radio. The
projector's options, and its "pixel" distance against the mean squared error written out.
"""
from __future__ import annotations

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

from app.interpolation import render_interpolation
from app.keys import parse_keys
from app.mixing import render_mixing
from app.models import ModelStore
from app.projection import Projection, ProjectionOptions, projection_steps
from app.projection.loss import make_distance
from app.sampling import MAX_SEED, generate_images, make_grid, parse_seeds
from app.ui import build_demo
from families import FAMILIES


def _tiny(name: str):
    torch.manual_seed(0)
    return FAMILIES[name].generator_cls(FAMILIES[name].presets["tiny"]).eval()


def _one_line_value_error(call, match: str) -> None:
    with pytest.raises(ValueError) as info:
        call()
    assert match in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_seeds_up_to_max_seed_are_drawn_and_one_more_is_refused():
    assert parse_seeds(str(MAX_SEED), max_count=4) == [MAX_SEED]
    assert parse_seeds(f"{MAX_SEED - 1}-{MAX_SEED}", max_count=4) == [MAX_SEED - 1, MAX_SEED]
    for text in (str(MAX_SEED + 1), f"{MAX_SEED}-{MAX_SEED + 1}"):
        _one_line_value_error(lambda: parse_seeds(text, max_count=4), f"between 0 and {MAX_SEED}, got {MAX_SEED + 1}")


@pytest.mark.parametrize("text, expected", [
    ("0-15", list(range(16))),                                     # a range alone fills the cap exactly
    ("3,5,10-23", [3, 5, *range(10, 24)]),                         # 2 listed + 14 in the range = 16
    ("10-23,3,5", [*range(10, 24), 3, 5]),                         # the range first, then the 2
])
def test_seeds_that_fill_max_count_exactly_are_drawn_and_one_more_is_refused(text, expected):
    """max_count is the most seeds a request may draw: exactly 16 of them is allowed (also when a range
    meets seeds listed before it), 17 is the one-line 'too many seeds'."""
    assert parse_seeds(text, max_count=16) == expected
    one_more = {"0-15": "0-16", "3,5,10-23": "3,5,10-24", "10-23,3,5": "10-23,3,5,6"}[text]
    _one_line_value_error(lambda: parse_seeds(one_more, max_count=16), "too many seeds: at most 16")


def test_image_keys_count_towards_the_seed_cap():
    projection = Projection("stylegan_lite", "w", torch.zeros(1, 16))
    assert len(parse_keys("0-2,image", max_count=4, projection=projection)) == 4
    _one_line_value_error(lambda: parse_keys("0-3,image", max_count=4, projection=projection), "at most 4")


@pytest.mark.parametrize("call, match", [
    (lambda sg, pg: render_mixing(pg, [1], [2]), "needs a StyleGAN-lite model"),
    (lambda sg, pg: render_mixing(sg, [], [2]), "at least one row seed and one column seed"),
    (lambda sg, pg: render_mixing(sg, [1], [2], noise="loud"), "noise must be one of"),
    (lambda sg, pg: render_mixing(sg, [1], [2], styles="all"), "styles must be one of"),
    (lambda sg, pg: render_interpolation(sg, [1, 2], frames=4, method="cubic"), "method must be one of"),
    (lambda sg, pg: render_interpolation(sg, [1, 2], frames=1), "at least two frames"),
    (lambda sg, pg: render_interpolation(sg, [1], frames=4), "at least two seeds"),
    (lambda sg, pg: render_interpolation(sg, [1, 2], frames=4, space="q"), "space must be one of"),
    (lambda sg, pg: render_interpolation(pg, [1, 2], frames=4, noise="loud"), "noise must be one of"),
    (lambda sg, pg: generate_images(sg, [1], noise="loud"), "noise must be one of"),
    (lambda sg, pg: generate_images(sg, [1], cutoff=7), "cutoff must be between 0 and 6"),
    (lambda sg, pg: make_grid([None, None]), "at least one image"),
    # a projection of another family or shape (app.keys): a StyleGAN-lite w is 16 long like the tiny ProGAN's
    # z, so without the check ProGAN would silently draw it as a z
    (lambda sg, pg: render_interpolation(pg, [Projection("stylegan_lite", "w", torch.zeros(1, 16)), 1], frames=4),
     "belongs to a stylegan_lite model, not progan"),
    (lambda sg, pg: render_mixing(sg, [Projection("stylegan_lite", "w+", torch.zeros(1, 3, 16))], [2]),
     "does not fit this model"),
])
def test_core_argument_errors_are_one_line(call, match):
    _one_line_value_error(lambda: call(_tiny("stylegan_lite"), _tiny("progan")), match)


@pytest.mark.parametrize("options, match", [
    ({"steps": 0}, "steps must be between 1 and 100000"),
    ({"space": "x"}, "space must be one of w, w+, z"),
    ({"loss": "l2"}, "loss must be one of"),
])
def test_projection_options_are_checked(options, match):
    _one_line_value_error(lambda: ProjectionOptions(**options), match)


def test_the_bounds_themselves_are_accepted():
    """The last allowed values, next to the refusals above: cutoff == num_ws (6 for tiny) truncates every
    layer, so it draws what no cutoff draws (and cutoff 0 what psi 1 draws); steps 100000 is allowed, 100001
    is one line."""
    sg = _tiny("stylegan_lite")
    with torch.no_grad():
        sg.w_avg.normal_(0.0, 2.0)                  # a fresh w_avg is 0: truncation must move something
    every = generate_images(sg, [1], psi=0.5, noise="fixed")
    assert np.array_equal(generate_images(sg, [1], psi=0.5, cutoff=6, noise="fixed"), every)
    assert np.array_equal(generate_images(sg, [1], psi=0.5, cutoff=0, noise="fixed"),
                          generate_images(sg, [1], noise="fixed"))
    assert not np.array_equal(every, generate_images(sg, [1], noise="fixed"))
    assert ProjectionOptions(steps=100_000).steps == 100_000
    _one_line_value_error(lambda: ProjectionOptions(steps=100_001), "steps must be between 1 and 100000, got 100001")


@pytest.mark.parametrize("name, space, match", [
    ("progan", "w", "ProGAN has no W space"),
    ("stylegan_lite", "z", "projects into w or w+"),
])
def test_projection_into_a_space_the_family_lacks_is_refused(name, space, match):
    target = torch.zeros(3, 16, 16)
    steps = projection_steps(_tiny(name), target, ProjectionOptions(steps=1, space=space))
    _one_line_value_error(lambda: next(steps), match)


def test_pixel_distance_is_the_mean_squared_error():
    torch.manual_seed(0)
    x, y = torch.randn(1, 3, 16, 16), torch.randn(1, 3, 16, 16)
    by_hand = sum(float(a - b) ** 2 for a, b in zip(x.flatten(), y.flatten())) / x.numel()
    assert abs(float(make_distance("pixel")(x, y)) - by_hand) < 1e-5
    assert float(make_distance("pixel")(x, x)) == 0.0


# --- through the events -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def events(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    for name, label in (("stylegan_lite", "sg"), ("progan", "pg")):
        _tiny(name).save_pretrained(root / label)
    demo = build_demo(ModelStore({"sg": str(root / "sg"), "pg": str(root / "pg")}),
                      output_dir=tmp_path_factory.mktemp("out"))
    return {f.api_name: f.fn for f in demo.fns.values()}


def _refused(call, match: str) -> None:
    with pytest.raises(gr.Error) as info:
        call()
    assert match in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_progan_style_mixing_is_refused_in_one_line(events):
    _refused(lambda: events["mix"]("pg", "1", "2", "coarse", 0.7, "fixed"), "needs a StyleGAN-lite model")


def test_a_streamed_events_error_is_one_line(events, tmp_path):
    # "Your image" is a generator event: its ValueError surfaces while the stream is consumed
    upload = tmp_path / "notes.txt"
    upload.write_text("not a picture")
    _refused(lambda: list(events["project"]("sg", str(upload), 4, "w", None)), "is not accepted")


def test_a_projection_of_another_model_is_refused(events):
    mine = Projection("stylegan_lite", "w", torch.zeros(1, 16), metadata={"model": "elsewhere"})
    _refused(lambda: events["interpolate"]("sg", "image,1", 4, 8, "lerp", "w", False, 1.0, "fixed", None, mine),
             "projected with elsewhere")
    _refused(lambda: events["mix"]("sg", "image", "1", "coarse", 1.0, "fixed", None, mine), "projected with elsewhere")


@pytest.mark.parametrize("space", ["z", None, "W"])
def test_a_stylegan_projection_takes_only_w_or_w_plus(space):
    """The projection core behind /project refuses a StyleGAN-lite space other than ``w``/``w+`` (docs/app.md's
    API table), before it reads the upload: ``z`` is a projector space too (ProGAN's), so it must not slip through."""
    from app.limits import DEFAULT_LIMITS
    from app.projection.ui import run_projection

    png = _png_bytes()
    with pytest.raises(ValueError, match="space must be one of w, w\\+"):
        next(run_projection(_tiny("stylegan_lite"), png, "me.png", label="sg", steps=4, space=space,
                            limits=DEFAULT_LIMITS))


def _png_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_progan_projection_ignores_the_space_radio(events, tmp_path):
    upload = tmp_path / "me.png"
    Image.new("RGB", (16, 16), (200, 30, 30)).save(upload)
    *_, (_picture, _latent, status, stored) = events["project"]("pg", str(upload), 2, "w+", None)
    assert isinstance(stored, Projection) and stored.space == "z" and stored.latent.shape == (1, 16)
    assert status.startswith("projected into z")


def test_a_projection_made_for_another_model_is_refused_before_it_is_walked_or_mixed():
    """``app.keys`` checks every projected key against the model it is about to meet: another family, a
    latent of another size, or (the silent case: the styles fit) noise maps of another resolution each
    give one line, for StyleGAN-lite's styles and ProGAN's z alike."""
    from app.keys import key_latents, key_styles
    from stylegan_lite.config import StyleGANConfig

    sg_family, pg_family = FAMILIES["stylegan_lite"], FAMILIES["progan"]
    tiny = sg_family.presets["tiny"]
    sg = sg_family.generator_cls(tiny).eval()
    pg = pg_family.generator_cls(pg_family.presets["tiny"]).eval()
    maps = [torch.zeros(1, 1, r, r) for r in tiny.resolutions for _ in range(2)]
    fits = Projection("stylegan_lite", "w", torch.randn(1, tiny.w_dim), noise=maps)
    assert key_styles(sg, [fits, 3]).shape == (2, sg.num_ws, tiny.w_dim)  # the one that fits is accepted
    wider = Projection("stylegan_lite", "w", torch.randn(1, tiny.w_dim * 2), noise=maps)
    _one_line_value_error(lambda: key_styles(sg, [3, wider]), "does not fit this model")
    # a 32 px model with the same widths: the styles would fit, the 16 px noise maps do not
    larger = sg_family.generator_cls(StyleGANConfig(**{**tiny.__dict__, "resolution": 32})).eval()
    _one_line_value_error(lambda: key_styles(larger, [fits]), "noise maps do not fit")
    _one_line_value_error(lambda: key_latents(pg, [fits]), "belongs to a stylegan_lite model")
    z = Projection("progan", "z", torch.randn(1, pg.config.latent_dim + 1))
    _one_line_value_error(lambda: key_latents(pg, [z]), "does not fit this model")
