"""The Model tab's switch event (app/ui.py ``switch_model``), called in-process as Gradio would call it.

Gradio hands the event the dropdown's new value and the session's ``current`` state (the model in use) and
stores what the event returns for that state; so a session is simulated by feeding each call's returned
state into the next. A failed switch must leave the session on the model it was using.
"""
from __future__ import annotations

import warnings

import gradio as gr
import pytest

from app.models import ModelStore
from app.ui import build_demo


@pytest.fixture(scope="module")
def switch(weights, tmp_path_factory):
    """``switch(model, current) -> (dropdown value, new current state, model info markdown, status)``."""
    bad = tmp_path_factory.mktemp("bad") / "bad.safetensors"
    bad.write_bytes(b"this is not a safetensors file")
    store = ModelStore({"sg": str(weights["stylegan_lite"]), "pg": str(weights["progan"]), "bad": str(bad)})
    demo = build_demo(store, output_dir=tmp_path_factory.mktemp("app-out"))
    event = next(f for f in demo.fns.values() if f.api_name == "switch_model")
    # where the session state sits among the outputs, found from the wiring, not from the handler's tuple
    state = next(i for i, block in enumerate(event.outputs) if isinstance(block, gr.State))

    def call(model: str, current: str):
        with warnings.catch_warnings():  # gr.Warning outside a request is a Python warning
            warnings.simplefilter("ignore")
            out = event.fn(model, current)
        assert len(out) == len(event.outputs)
        return out[0]["value"], out[state], out[2], out[-1]

    return call


def test_a_failed_switch_keeps_the_session_on_its_model_every_time(switch):
    shown, current, info, status = switch("bad", "sg")
    assert (shown, current) == ("sg", "sg")                    # the dropdown and the session state both revert
    assert "StyleGAN-lite" in info and "could not load **bad**" in status and "Still using **sg**" in status
    shown, current, info, status = switch("bad", current)      # and again: still the good model, not "bad"
    assert (shown, current) == ("sg", "sg") and "Still using **sg**" in status

    shown, current, info, status = switch("pg", current)       # a good switch moves the session
    assert (shown, current) == ("pg", "pg") and "ProGAN" in info and status == "Loaded **pg**."
    for _ in range(2):                                         # a failure now falls back to pg, not the default
        shown, current, info, status = switch("bad", current)
        assert (shown, current) == ("pg", "pg") and "ProGAN" in info and "Still using **pg**" in status


def test_a_missing_file_or_an_unreachable_url_is_a_load_error_and_the_session_keeps_its_model(weights, tmp_path):
    """Weights that cannot be read raise OSErrors, not ValueErrors (a launch source whose file is gone:
    FileNotFoundError; a visitor URL whose server does not answer: a download error). Both are load errors
    like a corrupt file: the switch reverts to the model in use with a one-line status naming the source,
    and the URL box's event raises a one-line ``gr.Error``, never the OSError itself."""
    import socket

    gone = tmp_path / "gone" / "model.safetensors"
    store = ModelStore({"sg": str(weights["stylegan_lite"]), "gone": str(gone)}, allow_remote=True)
    demo = build_demo(store, output_dir=tmp_path / "out")
    events = {f.api_name: f.fn for f in demo.fns.values()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = events["switch_model"]("gone", "sg")
    assert out[0]["value"] == "sg" and "could not load **gone**" in out[-1] and "Still using **sg**" in out[-1]
    assert str(gone) in out[-1]
    with socket.socket() as probe:                      # a port nothing listens on: the connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/run/model.safetensors"
    with pytest.raises(gr.Error, match=f"127.0.0.1:{port}"):
        events["load_weights"](url, "sg")
    assert store.labels == ["sg", "gone"]               # no dead entry left in the switcher


def test_switching_models_resets_the_cutoff_slider_to_all_of_the_new_models_layers(weights, tmp_path):
    """The cutoff slider's update after a switch: maximum and value both the new model's style-layer count
    (2 per resolution), so a cutoff left from the previous model cannot truncate only part of the new one."""
    from families import load_generator

    store = ModelStore({"sg": str(weights["stylegan_lite"]), "pg": str(weights["progan"])})
    demo = build_demo(store, output_dir=tmp_path / "out")
    event = next(f for f in demo.fns.values() if f.api_name == "switch_model")
    slider = next(i for i, block in enumerate(event.outputs) if isinstance(block, gr.Slider))
    for label in ("pg", "sg"):
        update = event.fn(label, "sg" if label == "pg" else "pg")[slider]
        layers = 2 * len(load_generator(store.sources[label], progress=False).config.resolutions)
        assert update["maximum"] == layers and update.get("value") == layers, label

