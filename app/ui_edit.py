"""The "Edit" tab: SeFa directions as sliders (Shen & Zhou, CVPR 2021, section 3.2), and the
"nearest training image" view beside the edited image (``app.nearest_view``).

A visitor picks a seed (or ``image``, their projected picture from the "Your image" tab) and a layer
range; the top ``SLIDERS`` directions of that range (``app.directions.cached_directions``: computed
once per model, layer range and k, then read from the cache) get one strength slider each, in sigmas,
and every slider release redraws the image. Inputs are re-validated on the server as in every tab.
"""
from __future__ import annotations

from typing import Any, Callable

import gradio as gr
import numpy as np
import torch

from progan.images import uint8_to_rgb

from .directions import cached_directions, edit_images
from .display import PIXELATED_FILL, for_display
from .edit import MAX_STRENGTH
from .keys import parse_keys
from .limits import Limits, check_choice, check_range, check_truncation
from .models import ModelStore
from .nearest_view import nearest_index
from .sampling import NOISE_MODES

__all__ = ["SLIDERS", "K", "edit_image", "nearest_image", "build_edit_tab"]

SLIDERS = 5        # strength sliders shown: the top directions
K = 10             # directions computed and cached per model and layer range
SLIDER_RANGE = 5.0  # sigmas either way on the sliders; the API accepts up to MAX_STRENGTH


def edit_image(store: ModelStore, limits: Limits, model: str, seed: str, layers: str, psi: float, noise: str,
               strengths: list, projection=None) -> tuple[np.ndarray, str, np.ndarray]:
    """``(display image, status, native image)`` of ``seed`` moved by ``strengths`` along the top directions."""
    generator = store.get(model)
    psi, _ = check_truncation(generator.config, psi, None, limits)
    noise = check_choice("noise", noise, NOISE_MODES)
    values = [check_range(f"strength {i}", s, -MAX_STRENGTH, MAX_STRENGTH) for i, s in enumerate(strengths)]
    keys = parse_keys(seed, max_count=1, projection=projection)
    directions = cached_directions(generator, layers=layers, k=K)
    image = edit_images(generator, keys[0], directions, [values], psi=psi, noise=noise)[0]
    moved = ", ".join(f"d{i} {v:+.2g}" for i, v in enumerate(values) if v) or "no edit"
    first, last = directions.layers
    what = f"seed {keys[0]}" if isinstance(keys[0], int) else "your image"
    top = ", ".join(f"{v:.3g}" for v in directions.eigenvalues[:len(values)].tolist())
    status = f"{what}, layers {first}-{last}: {moved} (sigmas). Eigenvalues of the top directions: {top}."
    return for_display(image), status, image


def nearest_image(image: np.ndarray | None, resolution: int) -> tuple[np.ndarray, str]:
    """``(display picture: image | nearest training image, status)``; raises ValueError (one line)."""
    if image is None:
        raise ValueError("draw an image first (move a slider or press Edit)")
    # a grayscale or RGBA model's picture as the metrics see it (progan.metrics.channels): gray in all three
    # channels, RGBA over white; the training images it is searched among and drawn beside are RGB
    if image.shape[2] != 3:
        pixels = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]       # [1, C, R, R]
        image = uint8_to_rgb(pixels)[0].permute(1, 2, 0).numpy()                             # [R, R, 3]
    found = nearest_index(resolution).match(image)
    pair = np.concatenate([image, np.full((image.shape[0], 2, 3), 255, np.uint8), found.real], axis=1)
    verdict = "closer than" if found.distance < found.threshold else "farther than"
    status = (f"nearest of {found.num_real} training images: #{found.index}, Inception distance "
              f"{found.distance:.1f}, {verdict} the median real-to-real nearest distance ({found.threshold:.1f}).")
    return for_display(pair), status


def build_edit_tab(store: ModelStore, *, limits: Limits, model: gr.components.Component, mine: gr.State,
                   wrap: Callable[[Callable], Callable], projection_for: Callable[[str, Any, str], Any]) -> None:
    """Components and events of the tab; call inside ``with gr.Tab("Edit"):`` of ``app.ui.build_demo``."""
    gr.Markdown("Directions found in the weights alone (SeFa: the top eigenvectors of the style affines, or of "
                "ProGAN's first layer). Move a slider to walk along one; **image** edits your projected picture. "
                "Then compare the result with its nearest training image.")
    with gr.Row():
        e_seed = gr.Textbox("0", label="Seed (or image)", elem_id="edit-seed")
        e_layers = gr.Textbox("all", label="Layers", info='StyleGAN-lite: "0-3" coarse, "all"; ProGAN: 0',
                              elem_id="edit-layers")
        e_psi = gr.Slider(limits.psi_min, limits.psi_max, value=0.7, step=0.05, label="Truncation psi")
        e_noise = gr.Radio(list(NOISE_MODES), value="fixed", label="Noise")
    sliders = [gr.Slider(-SLIDER_RANGE, SLIDER_RANGE, value=0.0, step=0.25, label=f"Direction {i} (sigmas)",
                         elem_id=f"edit-d{i}") for i in range(SLIDERS)]
    e_button = gr.Button("Edit", variant="primary", elem_id="edit")
    native = gr.State(None)
    with gr.Row():
        e_image = gr.Image(label="Edited", type="numpy", format="png", elem_id="edit-image", height=280,
                           elem_classes=PIXELATED_FILL)
        n_image = gr.Image(label="Edited | nearest training image", type="numpy", format="png",
                           elem_id="nearest-image", height=280, elem_classes=PIXELATED_FILL)
    e_status = gr.Markdown(elem_id="edit-status")
    n_button = gr.Button("Find the nearest training image", elem_id="nearest")
    n_status = gr.Markdown(elem_id="nearest-status")

    @wrap
    def edit(model_label: str, seed: str, layers: str, psi: float, noise: str, *rest):
        *strengths, projection = rest
        shown, status, image = edit_image(store, limits, model_label, seed, layers, psi, noise, list(strengths),
                                          projection_for(model_label, projection, seed))
        return shown, status, image

    @wrap
    def nearest(model_label: str, image):
        return nearest_image(image, store.get(model_label).config.resolution)

    inputs = [model, e_seed, e_layers, e_psi, e_noise, *sliders, mine]
    outputs = [e_image, e_status, native]
    e_button.click(edit, inputs, outputs, api_name="edit")
    e_seed.submit(edit, inputs, outputs, api_visibility="private")
    for slider in sliders:  # live: redraw when a slider is let go (a drag would queue a request per step)
        slider.release(edit, inputs, outputs, api_visibility="private")
    n_button.click(nearest, [model, native], [n_image, n_status], api_name="nearest")
