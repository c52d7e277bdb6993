"""The Gradio Blocks app: Sampling, Interpolation, Style mixing, Your image, Edit and Model tabs.

Every event re-validates its inputs on the server (``app.limits``) because the HTTP API can be
called without the browser's slider bounds; a bad request raises ``gr.Error`` with one line, so the
visitor sees why and the server keeps serving. The model dropdown is an input of every event, so
switching models is per visitor (no global state changes) and ``gradio_client`` callers name the
model explicitly. Outputs are written under a temp dir the app owns; Gradio copies them into its
own cache to serve them, and no other path is exposed. The "Your image" tab (``app.projection.ui``)
keeps the visitor's projected latent in a per-session ``gr.State``; the seed boxes of the
interpolation and mixing tabs accept ``image`` for it (``app.keys``).

One builder per tab (``_sampling_tab`` ... ``_model_tab``, ``build_project_tab``, ``build_edit_tab``):
each makes its components and wires its own events from a ``_Shared`` of what all tabs use.
The page opens with the default model's first seeds already drawn (the gallery's initial value,
rendered once at build time), so a first-time visitor sees samples without clicking. A class-conditional model
(``progan.conditioning``) gets a "Class" dropdown in the sampling, interpolation and mixing tabs, shown
only while such a model is selected; the events bind the generator to that class (``bind_class``), so an
API call naming an unknown class gets one line listing the valid ones.
"""
from __future__ import annotations

import functools
import inspect
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gradio as gr
from torch import nn

from progan.conditioning import bind_class

from .display import PIXELATED, PIXELATED_FILL, for_display
from .interpolation import METHODS, SPACES, render_interpolation
from .keys import IMAGE_TOKEN, parse_keys
from .limits import DEFAULT_LIMITS, Limits, check_choice, check_int, check_truncation
from .mixing import STYLE_RANGES, mixing_figure, render_mixing
from .models import LOAD_ERRORS, ModelStore, describe_model
from .sampling import NOISE_MODES, generate_images, is_stylegan, make_grid, parse_seeds
from .ui_edit import build_edit_tab
from .projection.ui import build_project_tab
from .video import write_gif, write_mp4

__all__ = ["build_demo", "API_NAMES"]

API_NAMES = ("sample", "interpolate", "mix", "project", "model_info", "switch_model", "load_weights", "edit", "nearest")
_LATENT_TTL_S = 3600  # a visitor's projected latent is forgotten after an hour
_OUTPUT_MAX_AGE_S = 900  # request folders older than this are deleted; Gradio has its own copy by then
_MAX_LAYERS = 2 * (DEFAULT_LIMITS.max_resolution.bit_length() - 2)  # style layers of the largest allowed model
_INTRO = """# GAN Studio
Sample, interpolate and mix styles with ProGAN / StyleGAN-lite generators. The same seed gives the
same image on every run and device."""


def _one_line(exc: BaseException) -> gr.Error:
    return gr.Error(str(exc).strip().splitlines()[0] or type(exc).__name__, print_exception=False)


def _user_errors(fn: Callable) -> Callable:
    """Turn the ValueError/OSError a bad request or bad weights raise into a one-line ``gr.Error``;
    works for streaming (generator) events too. ``functools.wraps`` keeps the signature, so Gradio
    still injects ``gr.Progress``."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except LOAD_ERRORS as exc:
                raise _one_line(exc) from None
        return stream

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except LOAD_ERRORS as exc:
            raise _one_line(exc) from None
    return wrapper


def _seed_text(seeds: list) -> str:
    return ", ".join(str(s) if isinstance(s, int) else "image" for s in seeds[:12]) + (f", ... ({len(seeds)} seeds)" if len(seeds) > 12 else "")


def _tracker(progress: gr.Progress, desc: str) -> Callable[[int, int], None]:
    return lambda done, total: progress((done, total), desc=desc)


def _num_layers(generator) -> int:
    return 2 * generator.config.num_stages


def _for_class(generator, class_name: str | None):
    """``generator`` bound to ``class_name``; a conditional model without one draws its first class.
    An unknown class (or any class for an unconditional model) is a one-line ValueError."""
    names = generator.config.class_names
    if names and not class_name:
        class_name = names[0]
    return bind_class(generator, class_name or None)


def _class_choice(generator) -> dict:
    """The class dropdowns' update for ``generator``: its classes, shown only if it has any."""
    names = list(generator.config.class_names)
    return gr.update(choices=names, value=names[0] if names else None, visible=bool(names))


def _projection_for(model: str, mine, text: str):
    """The visitor's projection, when ``text`` asks for it; it must come from ``model``."""
    if IMAGE_TOKEN not in str(text).lower():
        return None
    if mine is not None and mine.metadata.get("model") not in (None, model):
        raise ValueError(f'your image was projected with {mine.metadata["model"]}: switch back or project it again')
    return mine


class _Outputs:
    """Fresh per-request folders under one app-owned temp dir, pruned by age."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def new(self) -> Path:
        now = time.time()
        for old in self.root.iterdir():
            if old.is_dir() and now - old.stat().st_mtime > _OUTPUT_MAX_AGE_S:
                shutil.rmtree(old, ignore_errors=True)
        return Path(tempfile.mkdtemp(dir=self.root))


@dataclass(frozen=True)
class _Shared:
    """What every tab's builder uses: the models, the bounds, where outputs go, and the shared inputs."""

    store: ModelStore
    limits: Limits
    outputs: _Outputs
    model: gr.Dropdown  # the model switcher: the first input of every event
    mine: gr.State      # the visitor's projection ("Your image"), which ``image`` in a seed box names
    first: nn.Module    # the default model: the page opens with it

    def class_dropdown(self, elem_id: str) -> gr.Dropdown:
        names = list(self.first.config.class_names)
        # allow_custom_value: an API call's unknown class reaches _for_class, which names the valid ones
        return gr.Dropdown(names, value=names[0] if names else None, label="Class", visible=bool(names),
                           allow_custom_value=True, elem_id=elem_id, info="this model is class-conditional")


def _first_seeds(shared: _Shared) -> str:
    """The seed box's default: 16 seeds, or as many as the default model's size allows."""
    count = min(16, shared.limits.images_allowed(shared.first.config.resolution))
    return "0" if count == 1 else f"0-{count - 1}"


def _sampling_tab(shared: _Shared) -> tuple[gr.Slider, gr.Dropdown]:
    """Seeds -> gallery + grid PNG. Returns the cutoff slider and class dropdown (model switching updates them)."""
    store, limits = shared.store, shared.limits

    @_user_errors
    def sample(model: str, seeds: str, psi: float, cutoff: int, noise: str, class_name: str | None = None,
               progress=gr.Progress()):
        generator = _for_class(store.get(model), class_name)
        psi, cutoff = check_truncation(generator.config, psi, cutoff, limits)
        noise = check_choice("noise", noise, NOISE_MODES)
        seed_list = parse_seeds(seeds, max_count=limits.images_allowed(generator.config.resolution))
        start = time.perf_counter()
        images = generate_images(generator, seed_list, psi=psi, cutoff=cutoff, noise=noise,
                                 progress=_tracker(progress, "generating"))
        grid_path = shared.outputs.new() / "grid.png"
        make_grid(images).save(grid_path)
        note = "" if is_stylegan(generator) else " (ProGAN: psi, cutoff and noise do not apply)"
        status = f"{len(images)} images in {time.perf_counter() - start:.2f} s; seeds {_seed_text(seed_list)}{note}"
        # native pixels: the page enlarges them (app.display), so the server encodes and sends 16x fewer
        return [(for_display(image), f"seed {s}") for image, s in zip(images, seed_list)], str(grid_path), status

    layers = _num_layers(shared.first)
    with gr.Row():
        seeds = gr.Textbox(_first_seeds(shared), label="Seeds", info='"3", "0-15", "1,5,9" or "random:8"', scale=2)
        noise = gr.Radio(list(NOISE_MODES), value="random", label="Noise",
                         info="random: drawn from each seed; fixed: the model's constant noise")
        s_class = shared.class_dropdown("sample-class")
    with gr.Row():
        psi = gr.Slider(limits.psi_min, limits.psi_max, value=0.7, step=0.05, label="Truncation psi",
                        info="StyleGAN-lite: 1 = off, 0 = the average image")
        # the component's bound must admit every model's layers (API calls skip the per-visitor
        # update in build_demo); check_truncation holds each request to its own model's count
        cutoff = gr.Slider(0, _MAX_LAYERS, value=layers, step=1, label="Truncation cutoff",
                           info="truncate style layers below this one (coarse layers first)",
                           interactive=is_stylegan(shared.first))
    sample_button = gr.Button("Generate", variant="primary", elem_id="generate")
    # the page opens with the default inputs' images, drawn once here: nothing to click, no work per visit
    first_images, first_grid, first_status = sample(store.default, seeds.value, psi.value, cutoff.value,
                                                    noise.value, s_class.value)
    gallery = gr.Gallery(first_images, label="Images", columns=8, format="png", elem_id="gallery",
                         elem_classes=PIXELATED)
    with gr.Row():
        grid_file = gr.File(first_grid, label="Grid (PNG)", elem_id="grid")
        sample_status = gr.Markdown(first_status, elem_id="sample-status")

    inputs, outputs = [shared.model, seeds, psi, cutoff, noise, s_class], [gallery, grid_file, sample_status]
    sample_button.click(sample, inputs, outputs, api_name="sample")
    seeds.submit(sample, inputs, outputs, api_visibility="private")
    return cutoff, s_class


def _interpolation_tab(shared: _Shared) -> gr.Dropdown:
    """Seeds (or ``image``) -> MP4 + GIF walk. Returns the class dropdown."""
    store, limits = shared.store, shared.limits

    @_user_errors
    def interpolate(model: str, seeds: str, frames: int, fps: int, method: str, space: str, loop: bool,
                    psi: float, noise: str, class_name: str | None = None, mine=None, progress=gr.Progress()):
        generator = _for_class(store.get(model), class_name)
        psi, _ = check_truncation(generator.config, psi, None, limits)
        frames = check_int("frames", frames, 2, limits.frames_allowed(generator.config.resolution))
        fps = check_int("fps", fps, limits.min_fps, limits.max_fps)
        method = check_choice("method", method, METHODS)
        space = check_choice("space", space, SPACES)
        noise = check_choice("noise", noise, NOISE_MODES)
        seed_list = parse_keys(seeds, max_count=limits.max_keyframes, projection=_projection_for(model, mine, seeds))
        if len(seed_list) < 2:
            raise ValueError('interpolation needs at least two seeds, e.g. "1,2,3"')
        start = time.perf_counter()
        clip = render_interpolation(generator, seed_list, frames=frames, space=space, method=method,
                                    loop=bool(loop), psi=psi, noise=noise, progress=_tracker(progress, "rendering"))
        folder = shared.outputs.new()
        mp4 = write_mp4(clip, folder / "interpolation.mp4", fps=fps)
        gif = write_gif(clip, folder / "interpolation.gif", fps=fps)
        status = (f"{frames} frames through seeds {_seed_text(seed_list)} ({method} in {space}) "
                  f"in {time.perf_counter() - start:.2f} s")
        return str(mp4), str(gif), status

    with gr.Row():
        i_seeds = gr.Textbox("1,2,3", label="Seeds (two or more)", scale=2, elem_id="interpolate-seeds")
        i_method = gr.Radio(list(METHODS), value="slerp", label="Method", info="slerp: z only",
                            elem_id="interpolate-method")
        i_space = gr.Radio(list(SPACES), value="z", label="Space", info="w: StyleGAN-lite, lerp only",
                           elem_id="interpolate-space")
    with gr.Row():
        i_frames = gr.Slider(2, limits.max_frames, value=48, step=1, label="Frames")
        i_fps = gr.Slider(limits.min_fps, limits.max_fps, value=24, step=1, label="fps")
        i_psi = gr.Slider(limits.psi_min, limits.psi_max, value=0.7, step=0.05, label="Truncation psi")
    with gr.Row():
        i_noise = gr.Radio(list(NOISE_MODES), value="fixed", label="Noise")
        i_loop = gr.Checkbox(False, label="Loop back to the first seed")
        i_class = shared.class_dropdown("interpolate-class")
    i_button = gr.Button("Render", variant="primary", elem_id="interpolate")
    with gr.Row():
        i_video = gr.Video(label="MP4", autoplay=True, loop=True)
        i_gif = gr.Image(label="GIF", type="filepath", format="gif", elem_id="interpolate-gif")
    i_status = gr.Markdown(elem_id="interpolate-status")
    i_button.click(interpolate, [shared.model, i_seeds, i_frames, i_fps, i_method, i_space, i_loop, i_psi, i_noise,
                                 i_class, shared.mine], [i_video, i_gif, i_status], api_name="interpolate")
    return i_class


def _mixing_tab(shared: _Shared) -> gr.Dropdown:
    """Row and column seeds -> the style-mixing figure. Returns the class dropdown."""
    store, limits = shared.store, shared.limits

    @_user_errors
    def mix(model: str, row_seeds: str, col_seeds: str, styles: str, psi: float, noise: str,
            class_name: str | None = None, mine=None, progress=gr.Progress()):
        generator = _for_class(store.get(model), class_name)
        psi, _ = check_truncation(generator.config, psi, None, limits)
        styles = check_choice("styles", styles, tuple(STYLE_RANGES))
        noise = check_choice("noise", noise, NOISE_MODES)
        rows = parse_keys(row_seeds, max_count=limits.max_mix_seeds, projection=_projection_for(model, mine, row_seeds))
        cols = parse_keys(col_seeds, max_count=limits.max_mix_seeds, projection=_projection_for(model, mine, col_seeds))
        cells = (len(rows) + 1) * (len(cols) + 1)
        if cells > limits.max_pixels // generator.config.resolution ** 2:
            raise ValueError(f"a {len(rows)}x{len(cols)} mixing grid is too large for this model; use fewer seeds")
        start = time.perf_counter()
        row_images, col_images, mixed = render_mixing(generator, rows, cols, styles=styles, psi=psi, noise=noise,
                                                      progress=_tracker(progress, "mixing"))
        path = shared.outputs.new() / "style-mixing.png"
        mixing_figure(row_images, col_images, mixed).save(path)  # native pixels, shown enlarged by the page
        status = (f"rows (source B): {_seed_text(rows)}; columns (source A): {_seed_text(cols)}; "
                  f"{styles} styles from B, in {time.perf_counter() - start:.2f} s")
        return str(path), str(path), status

    gr.Markdown("Top row: source A (columns); left column: source B (rows). Each cell takes the chosen "
                "styles from B and the rest from A (Karras et al. 2019, figure 3).")
    with gr.Row():
        m_cols = gr.Textbox("1-4", label="Column seeds (source A)", elem_id="mix-cols")
        m_rows = gr.Textbox("10-12", label="Row seeds (source B)", elem_id="mix-rows")
        m_styles = gr.Radio(list(STYLE_RANGES), value="coarse", label="Styles from B",
                            info="coarse 4-8 px, middle 16-32 px, fine 64 px and up")
    with gr.Row():
        m_psi = gr.Slider(limits.psi_min, limits.psi_max, value=0.7, step=0.05, label="Truncation psi")
        m_noise = gr.Radio(list(NOISE_MODES), value="fixed", label="Noise")
        m_class = shared.class_dropdown("mix-class")
    m_button = gr.Button("Mix", variant="primary", elem_id="mix")
    m_image = gr.Image(label="Style mixing", type="filepath", format="png", elem_id="mix-image", height=512,
                       elem_classes=PIXELATED_FILL)
    m_file = gr.File(label="Figure (PNG)", elem_id="mix-file")
    m_status = gr.Markdown(elem_id="mix-status")
    m_button.click(mix, [shared.model, m_rows, m_cols, m_styles, m_psi, m_noise, m_class, shared.mine],
                   [m_image, m_file, m_status], api_name="mix")
    return m_class


def _model_tab(shared: _Shared, *, current: gr.State, status: gr.Markdown, cutoff: gr.Slider,
               classes: list[gr.Dropdown]) -> None:
    """Model card and config; switching models (the dropdown, or a URL with --allow-remote-weights)
    updates this tab, the cutoff slider and every class dropdown, and keeps the old model on failure."""
    store = shared.store

    def model_outputs(label: str):
        generator = store.get(label)
        info, config = describe_model(label, store.sources[label], generator)
        layers = _num_layers(generator)
        cutoff_update = gr.update(maximum=layers, value=layers, interactive=is_stylegan(generator))
        return (info, config, cutoff_update, *[_class_choice(generator)] * len(classes))

    @_user_errors
    def model_info(model: str):
        return model_outputs(model)[:2]

    def switch_model(model: str, previous: str):
        # a failed switch must keep the old model: revert the dropdown instead of raising
        try:
            updates = model_outputs(model)
        except LOAD_ERRORS as exc:
            message = str(exc).strip().splitlines()[0]
            gr.Warning(f"could not load {model}: {message}")
            return (gr.update(value=previous), previous, *model_outputs(previous),
                    f"⚠️ could not load **{model}**: {message}. Still using **{previous}**.")
        return gr.update(value=model), model, *updates, f"Loaded **{model}**."

    @_user_errors
    def load_weights(source: str, previous: str):
        label = store.add_remote(source)
        return (gr.update(choices=store.labels, value=label), label, *model_outputs(label),
                f"Loaded **{label}**.")

    first_info, first_config = describe_model(store.default, store.sources[store.default], shared.first)
    info = gr.Markdown(first_info)
    config = gr.JSON(first_config, label="Config")
    switch_outputs = [shared.model, current, info, config, cutoff, *classes, status]
    shared.model.change(switch_model, [shared.model, current], switch_outputs, api_name="switch_model")
    info_button = gr.Button("Refresh model info", visible=False)
    info_button.click(model_info, [shared.model], [info, config], api_name="model_info")
    if store.allow_remote:
        with gr.Row():
            url = gr.Textbox(label="Load weights from a URL", placeholder="https://... or hf://org/repo", scale=3)
            url_button = gr.Button("Load")
        url_button.click(load_weights, [url, current], switch_outputs, api_name="load_weights")


def build_demo(store: ModelStore, *, limits: Limits = DEFAULT_LIMITS, output_dir: Path | None = None) -> gr.Blocks:
    """Build (not launch) the app around ``store``; call ``.queue(...)`` and ``.launch(css=app.display.CSS)``
    on the result (without that CSS, native-size images are shown small and blurred)."""
    outputs = _Outputs(output_dir or Path(tempfile.mkdtemp(prefix="gan-studio-app-")))
    first = store.get(store.default)
    with gr.Blocks(title="GAN Studio", delete_cache=(900, 3600)) as demo:
        gr.Markdown(_INTRO)
        current = gr.State(store.default)
        mine = gr.State(None, time_to_live=_LATENT_TTL_S)  # "Your image" writes it; other tabs read it
        with gr.Row():
            model = gr.Dropdown(store.labels, value=store.default, label="Model", allow_custom_value=True, scale=2)
            model_status = gr.Markdown(f"Loaded **{store.default}**.")
        shared = _Shared(store, limits, outputs, model, mine, first)
        with gr.Tab("Sampling"):
            cutoff, s_class = _sampling_tab(shared)
        with gr.Tab("Interpolation"):
            i_class = _interpolation_tab(shared)
        with gr.Tab("Style mixing"):
            m_class = _mixing_tab(shared)
        with gr.Tab("Your image"):
            build_project_tab(store, limits=limits, model=model, mine=mine, wrap=_user_errors)
        with gr.Tab("Edit"):  # SeFa directions and the nearest training image (app.ui_edit)
            build_edit_tab(store, limits=limits, model=model, mine=mine, wrap=_user_errors,
                           projection_for=_projection_for)
        with gr.Tab("Model"):
            _model_tab(shared, current=current, status=model_status, cutoff=cutoff,
                       classes=[s_class, i_class, m_class])
        # each visitor's cutoff slider starts at the default model's layer count
        layers = _num_layers(first)
        demo.load(lambda: gr.update(maximum=layers), None, cutoff, api_visibility="private")
    return demo
