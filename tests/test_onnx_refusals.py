"""``app.onnx.sampling.OnnxModel`` on graphs built by hand with ``onnx.helper`` (no export, no torch model).

A graph whose ``images`` is ``reshape(z) * 0 + label`` shows what the sampler feeds: a conditional
graph draws its first class when none is named and the named one otherwise (pixel value by hand:
label 0 -> level 128, label 1 -> 255); giving a class to an unconditional graph, none to a conditional
one, an unknown class, a missing file or a graph without GAN Studio metadata are one-line errors.
The export's ``--cutoff`` check, on the module it exports (no export run): every layer (cutoff = num_ws) is
allowed, as the PyTorch path allows it, and one past either end is refused.
The same module at psi 0.5, unconditional and conditional: only the layers below ``--cutoff`` are pulled
towards w_avg (styles written out by hand).
"""
from __future__ import annotations

import json

import pytest

onnx = pytest.importorskip("onnx", reason='onnx is not installed (pip install -e ".[onnx]")')
pytest.importorskip("onnxruntime", reason='onnxruntime is not installed (pip install -e ".[onnx]")')

from onnx import TensorProto, helper  # noqa: E402

from app.onnx.sampling import OnnxModel  # noqa: E402

LATENT = 3 * 4 * 4  # z reshaped into a 4x4 RGB image


def _graph(path, *, conditional: bool, metadata: bool = True):
    inputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", LATENT])]
    shape = helper.make_tensor("shape", TensorProto.INT64, [4], [-1, 3, 4, 4])
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    nodes = [helper.make_node("Reshape", ["z", "shape"], ["image"]), helper.make_node("Mul", ["image", "zero"], ["blank"])]
    if conditional:
        inputs.append(helper.make_tensor_value_info("labels", TensorProto.INT64, ["N"]))
        column = helper.make_tensor("column", TensorProto.INT64, [4], [-1, 1, 1, 1])
        nodes += [helper.make_node("Cast", ["labels"], ["level"], to=TensorProto.FLOAT),
                  helper.make_node("Reshape", ["level", "column"], ["levels"]),
                  helper.make_node("Add", ["blank", "levels"], ["images"])]
        initializers = [shape, zero, column]
    else:
        nodes.append(helper.make_node("Identity", ["blank"], ["images"]))
        initializers = [shape, zero]
    output = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 4, 4])
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, [output], initializers),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if metadata:
        names = ["cat", "dog"] if conditional else []
        helper.set_model_props(model, {"family": "progan", "resolution": "4", "latent_dim": str(LATENT),
                                       "class_names": json.dumps(names), "noise": "const", "opset": "17"})
    onnx.save(model, str(path))
    return path


def _one_line(call, match: str) -> None:
    with pytest.raises(ValueError) as info:
        call()
    assert match in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_a_conditional_graph_draws_the_named_class_or_its_first(tmp_path):
    model = OnnxModel(_graph(tmp_path / "cond.onnx", conditional=True))
    assert model.class_label(None) == 0 and model.class_label("dog") == 1 and model.class_label("1") == 1
    first = model.images([0, 1], label=model.class_label(None))
    dog = model.images([0, 1], label=model.class_label("dog"))
    assert first.shape == (2, 4, 4, 3) and (first == 128).all() and (dog == 255).all()
    _one_line(lambda: model.images([0]), "this graph is conditional: give a class")
    _one_line(lambda: model.class_label("bird"), "unknown class 'bird'; choose from 'cat', 'dog'")


def test_an_unconditional_graph_refuses_a_class(tmp_path):
    model = OnnxModel(_graph(tmp_path / "plain.onnx", conditional=False))
    assert model.class_label(None) is None and (model.images([0]) == 128).all()
    _one_line(lambda: model.images([0], label=0), "this graph is unconditional: it takes no class")
    _one_line(lambda: model.class_label("cat"), "unconditional")


def test_missing_file_and_foreign_graph_are_one_line(tmp_path):
    _one_line(lambda: OnnxModel(tmp_path / "absent.onnx"), "no such ONNX file")
    foreign = _graph(tmp_path / "foreign.onnx", conditional=False, metadata=False)
    _one_line(lambda: OnnxModel(foreign), "no GAN Studio metadata")


def test_the_export_takes_cutoff_num_ws_as_every_layer_and_refuses_one_past_either_end():
    """``OnnxGenerator(g, cutoff=c)`` accepts 0 <= c <= num_ws like ``g.truncate``: at c = num_ws and psi = 0 every
    layer's style is w_avg (set by hand to a random vector), so the module draws exactly the synthesis of w_avg
    repeated num_ws times, for any z; c = num_ws + 1 and c = -1 are one-line refusals naming the range."""
    import torch

    from app.onnx.export import OnnxGenerator
    from families import FAMILIES

    torch.manual_seed(0)
    g = FAMILIES["stylegan_lite"].generator_cls(FAMILIES["stylegan_lite"].presets["tiny"]).eval()
    g.w_avg.copy_(torch.randn(g.config.w_dim))
    module = OnnxGenerator(g, cutoff=g.num_ws)
    with torch.no_grad():
        images = module(torch.randn(2, g.config.latent_dim), torch.tensor(0.0))
        expected = g.synthesis(g.w_avg.expand(2, g.num_ws, -1).clone(), noise_mode="const")
    torch.testing.assert_close(images, expected, rtol=0, atol=0)
    for cutoff in (g.num_ws + 1, -1):
        _one_line(lambda: OnnxGenerator(g, cutoff=cutoff), f"cutoff must be between 0 and {g.num_ws}, got {cutoff}")


@pytest.mark.parametrize("conditional", [False, True], ids=["unconditional", "conditional"])
@pytest.mark.parametrize("cutoff", [None, 0, 2])
def test_the_exported_module_truncates_only_the_layers_below_the_cutoff(conditional, cutoff):
    """The module the export traces, called in PyTorch (no export run), for an unconditional and a conditional
    StyleGAN-lite: at psi 0.5 the styles of layers below ``cutoff`` (all for None, none for 0) are
    ``w_avg + 0.5 (w - w_avg)`` and the rest are w itself, written out by hand from the mapping's w; the images
    equal the synthesis of those styles, and each cutoff's images differ from the other cutoffs'."""
    import dataclasses

    import torch

    from app.onnx.export import OnnxConditionalGenerator, OnnxGenerator
    from families import FAMILIES

    family = FAMILIES["stylegan_lite"]
    config = family.presets["tiny"]
    if conditional:
        config = dataclasses.replace(config, class_names=("cat", "dog"))
    torch.manual_seed(0)
    g = family.generator_cls(config).eval()
    g.w_avg.copy_(torch.randn(g.config.w_dim))
    z, labels = torch.randn(2, g.config.latent_dim), torch.tensor([1, 0])
    extra = (labels,) if conditional else ()

    def by_hand(below: int) -> torch.Tensor:
        with torch.no_grad():
            w = g.mapping(z, *extra)
            ws = w.unsqueeze(1).repeat(1, g.num_ws, 1)
            ws[:, :below] = g.w_avg + 0.5 * (w.unsqueeze(1) - g.w_avg)
            return g.synthesis(ws, noise_mode="const")

    cls = OnnxConditionalGenerator if conditional else OnnxGenerator
    with torch.no_grad():
        images = cls(g, cutoff=cutoff)(z, *extra, torch.tensor(0.5))
    expected = {c: by_hand(g.num_ws if c is None else c) for c in (None, 0, 2)}
    torch.testing.assert_close(images, expected[cutoff], rtol=1e-5, atol=1e-5)
    assert all((images - expected[c]).abs().max() > 1e-3 for c in expected if c != cutoff)
