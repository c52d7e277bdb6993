"""Every event of the page is wired: the documented API endpoints and every UI trigger reach their handler.

The demo is built in-process around the tiny weights and read back from its dependency list
(``demo.fns``): each event's trigger (component and event name), handler, ``api_name``/visibility,
inputs and outputs. The expected wiring is written out here from the page as docs/app.md describes
it (its API table: each endpoint's name and first arguments; the Edit tab's Enter-on-seed and
slider-release redraws; the cutoff slider reset on page load), so a dropped ``.click``/``.submit``/
``.load`` or a wrong input list shows up without a browser or a server.
"""
from __future__ import annotations

import re
from pathlib import Path

import gradio as gr
import pytest

from app.models import ModelStore
from app.ui import build_demo
from model_utils import save_tiny_weights

DOCS = Path(__file__).resolve().parents[1] / "docs" / "app.md"
EDIT = ["Dropdown:Model", "Textbox:edit-seed", "Textbox:edit-layers", "Slider:Truncation psi", "Radio:Noise",
        *[f"Slider:edit-d{i}" for i in range(5)], "State"]
EDIT_OUT = ["Image:edit-image", "Markdown:edit-status", "State"]
SAMPLE = ["Dropdown:Model", "Textbox:Seeds", "Slider:Truncation psi", "Slider:Truncation cutoff", "Radio:Noise",
          "Dropdown:sample-class"]
SAMPLE_OUT = ["Gallery:gallery", "File:grid", "Markdown:sample-status"]
SWITCH_OUT = ["Dropdown:Model", "State", "Markdown", "JSON:Config", "Slider:Truncation cutoff",
              "Dropdown:sample-class", "Dropdown:interpolate-class", "Dropdown:mix-class", "Markdown"]

# (trigger, event) -> (handler, api_name, visibility, inputs, outputs)
EXPECTED = {
    ("Button:generate", "click"): ("sample", "sample", "public", SAMPLE, SAMPLE_OUT),
    ("Textbox:Seeds", "submit"): ("sample", "sample_1", "private", SAMPLE, SAMPLE_OUT),
    ("Button:interpolate", "click"): (
        "interpolate", "interpolate", "public",
        ["Dropdown:Model", "Textbox:interpolate-seeds", "Slider:Frames", "Slider:fps", "Radio:interpolate-method",
         "Radio:interpolate-space", "Checkbox:Loop back to the first seed", "Slider:Truncation psi", "Radio:Noise",
         "Dropdown:interpolate-class", "State"],
        ["Video:MP4", "Image:interpolate-gif", "Markdown:interpolate-status"]),
    ("Button:mix", "click"): (
        "mix", "mix", "public",
        ["Dropdown:Model", "Textbox:mix-rows", "Textbox:mix-cols", "Radio:Styles from B", "Slider:Truncation psi",
         "Radio:Noise", "Dropdown:mix-class", "State"],
        ["Image:mix-image", "File:mix-file", "Markdown:mix-status"]),
    ("Button:project", "click"): (
        "project_image", "project", "public",
        ["Dropdown:Model", "File:upload", "Slider:Steps", "Radio:Latent space (StyleGAN-lite)", "State"],
        ["Image:projection", "File:latent", "Markdown:project-status", "State"]),
    ("Button:edit", "click"): ("edit", "edit", "public", EDIT, EDIT_OUT),
    ("Textbox:edit-seed", "submit"): ("edit", "edit_1", "private", EDIT, EDIT_OUT),
    **{(f"Slider:edit-d{i}", "release"): ("edit", f"edit_{i + 2}", "private", EDIT, EDIT_OUT) for i in range(5)},
    ("Button:nearest", "click"): ("nearest", "nearest", "public", ["Dropdown:Model", "State"],
                                  ["Image:nearest-image", "Markdown:nearest-status"]),
    ("Dropdown:Model", "change"): ("switch_model", "switch_model", "public", ["Dropdown:Model", "State"], SWITCH_OUT),
    ("Button:Refresh model info", "click"): ("model_info", "model_info", "public", ["Dropdown:Model"],
                                             ["Markdown", "JSON:Config"]),
    ("Button:Load", "click"): ("load_weights", "load_weights", "public",
                               ["Textbox:Load weights from a URL", "State"], SWITCH_OUT),
    ("Blocks", "load"): ("<lambda>", "lambda", "private", [], ["Slider:Truncation cutoff"]),
}


def _name(block) -> str:
    """A component as the page shows it: its type and its elem_id, else its label or a button's text (a State or
    the page itself: the type alone)."""
    kind = type(block).__name__
    if isinstance(block, (gr.State, gr.Blocks)):
        return kind
    key = getattr(block, "elem_id", None) or getattr(block, "label", None)
    if isinstance(block, gr.Button):
        key = block.elem_id or block.value  # a button's label is its text
    return f"{kind}:{key}" if key else kind


def _documented_endpoints() -> dict[str, list[str]]:
    """docs/app.md's API table: api_name -> its documented inputs."""
    rows = re.findall(r"^\| `/(\w+)` \| ([^|]+) \|", DOCS.read_text(encoding="utf-8"), flags=re.M)
    return {name: [part.strip() for part in re.sub(r"\([^)]*\)", "", inputs).split(",")] for name, inputs in rows}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = save_tiny_weights(tmp_path_factory.mktemp("weights"))
    store = ModelStore({"sg": str(root / "sg"), "pg": str(root / "pg")}, allow_remote=True)
    return build_demo(store, output_dir=tmp_path_factory.mktemp("app-out"))


def _wiring(demo) -> dict:
    wiring = {}
    for f in demo.fns.values():
        for block_id, event in f.targets:
            trigger = _name(demo.blocks.get(block_id, demo))
            assert (trigger, event) not in wiring, f"{trigger}.{event} is wired twice"
            wiring[trigger, event] = (f.fn.__name__, f.api_name, f.api_visibility,
                                      [_name(b) for b in f.inputs], [_name(b) for b in f.outputs])
    return wiring


def test_every_ui_trigger_reaches_its_handler_with_its_inputs_and_outputs(demo):
    """The whole dependency list equals the table above: no trigger dropped, none added, none re-routed;
    and every button on the page is the trigger of an event (a button that does nothing is a dropped click)."""
    wiring = _wiring(demo)
    assert set(wiring) == set(EXPECTED), (set(EXPECTED) - set(wiring), set(wiring) - set(EXPECTED))
    for key, expected in EXPECTED.items():
        assert wiring[key] == expected, key
    buttons = {_name(b) for b in demo.blocks.values() if isinstance(b, gr.Button)}
    assert buttons == {trigger for trigger, event in wiring if event == "click"}


def test_every_documented_endpoint_is_public_and_takes_its_documented_arguments_first(demo):
    """docs/app.md's table, read from the file: each ``/name`` is a public event whose visible (non-State)
    inputs begin with the documented ones, the model first (a URL for /load_weights)."""
    documented = _documented_endpoints()
    assert {"sample", "interpolate", "mix", "project", "model_info", "switch_model", "load_weights"} <= set(documented)
    public = {f.api_name: f for f in demo.fns.values() if f.api_visibility == "public"}
    for name, inputs in documented.items():
        assert name in public, f"/{name} is documented but not served"
        visible = [b for b in public[name].inputs if not isinstance(b, gr.State)]
        assert len(visible) >= len(inputs), (name, inputs, [_name(b) for b in visible])
        first = "Textbox:Load weights from a URL" if name == "load_weights" else "Dropdown:Model"
        assert _name(visible[0]) == first, name


def test_the_cutoff_slider_opens_at_the_default_models_layer_count(demo):
    """The page-load event resets each visitor's cutoff slider to the default model's style layers:
    2 per stage, 6 for the tiny 16 px StyleGAN-lite (4, 8, 16 px)."""
    load = next(f for f in demo.fns.values() if any(event == "load" for _, event in f.targets))
    assert load.fn() == gr.update(maximum=6)
