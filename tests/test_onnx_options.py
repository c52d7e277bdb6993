"""Every option of ``python -m app.export_onnx`` reaches the graph (issue 20).

tests/test_onnx.py checks the default export; an export that ignored ``--cutoff`` (or ``--noise``,
``--opset``, run-time ``psi``) would pass it. Here each file is written by the CLI itself and run
with onnxruntime, and its output is compared with the PyTorch generator's own forward under the
same option (``generator(z, psi=, cutoff=, noise=/noise_mode=)``, not the module the exporter
traces), and against the files written without the option, to show the option changes the output:

- ``psi``: 0.5 against 1.0; ``--cutoff 2``: equal to no cutoff at psi 1, different at psi 0.5
  (only layers 0 and 1 are pulled towards w_avg);
- ``--noise const`` / ``inputs`` (fed maps) / ``none``: three different images, each the generator's;
- ``--opset 20``: the graph's own opset import, not only the metadata, says 20; below 18 is refused;
- ``--weights``: the named model, not the bundled one; a ProGAN refuses ``--cutoff``.

Four exports of the tiny StyleGAN-lite take a minute or two on a loaded CPU: marked slow.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from families import FAMILIES

ort = pytest.importorskip("onnxruntime", reason='onnxruntime is not installed (pip install -e ".[onnx]")')
pytest.importorskip("onnxscript", reason='onnxscript is not installed (pip install -e ".[onnx]")')

from app.onnx.export import OPSET, main as export_main  # noqa: E402
from test_onnx import _tiny  # noqa: E402  the same trained-like tiny generator
from app.sampling import seed_latents  # noqa: E402

pytestmark = pytest.mark.slow

TOLERANCE = 1e-4
EXPORTS = {  # name: CLI options
    "default": [],
    "cutoff": ["--cutoff", "2"],
    "inputs": ["--noise", "inputs", "--cutoff", "4", "--opset", "20"],
    "none": ["--noise", "none"],
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("onnx-options")
    generator = _tiny("stylegan_lite")  # as after training: psi, cutoff and noise matter
    weights = tmp / "weights"
    generator.save_pretrained(weights)
    files = {}
    for name, options in EXPORTS.items():
        files[name] = tmp / f"{name}.onnx"
        assert export_main(["--weights", str(weights), "--out", str(files[name]), *options]) == 0, name
    return generator, weights, files


def _run(path, z: torch.Tensor, psi: float, noise: list[torch.Tensor] | None = None) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {"z": z.numpy(), "psi": np.array(psi, np.float32)}
    feeds.update({f"noise_{i}": m.numpy() for i, m in enumerate(noise or [])})
    return session.run(["images"], feeds)[0]


def _torch(generator, z: torch.Tensor, psi: float, **options) -> np.ndarray:
    with torch.no_grad():
        return generator(z, psi=psi, **options).numpy()


def _differ(a: np.ndarray, b: np.ndarray) -> bool:
    return np.abs(a - b).max() > 100 * TOLERANCE


@pytest.fixture(scope="module")
def z():
    return seed_latents(range(8), FAMILIES["stylegan_lite"].presets["tiny"].latent_dim)


def test_psi_is_applied_at_run_time(exported, z):
    generator, _, files = exported
    for psi in (0.5, 1.0):
        got = _run(files["default"], z, psi)
        assert np.abs(got - _torch(generator, z, psi, noise_mode="const")).max() <= TOLERANCE, psi
    assert _differ(_run(files["default"], z, 0.5), _run(files["default"], z, 1.0))


def test_cutoff_truncates_only_the_layers_below_it(exported, z):
    generator, _, files = exported
    for psi in (0.5, 1.0):
        got = _run(files["cutoff"], z, psi)
        assert np.abs(got - _torch(generator, z, psi, cutoff=2, noise_mode="const")).max() <= TOLERANCE, psi
    # psi 1 truncates nothing, whatever the cutoff; at psi 0.5 layers >= 2 keep their own w
    assert np.abs(_run(files["cutoff"], z, 1.0) - _run(files["default"], z, 1.0)).max() <= TOLERANCE
    assert _differ(_run(files["cutoff"], z, 0.5), _run(files["default"], z, 0.5))
    assert _differ(_run(files["cutoff"], z, 0.5), _run(files["cutoff"], z, 1.0))


def test_noise_modes_give_the_generators_images_and_differ(exported, z):
    generator, _, files = exported
    maps = generator.synthesis.make_noise(len(z), generator=torch.Generator().manual_seed(1))
    other = generator.synthesis.make_noise(len(z), generator=torch.Generator().manual_seed(2))
    fed = _run(files["inputs"], z, 0.5, maps)
    assert np.abs(fed - _torch(generator, z, 0.5, cutoff=4, noise=maps)).max() <= TOLERANCE
    assert _differ(fed, _run(files["inputs"], z, 0.5, other))          # the fed maps are used
    none = _run(files["none"], z, 0.5)
    assert np.abs(none - _torch(generator, z, 0.5, noise_mode="none")).max() <= TOLERANCE
    assert _differ(none, _run(files["default"], z, 0.5))               # no noise is not the constant noise


def test_opset_is_the_graphs_and_below_18_is_refused(exported, tmp_path, capsys):
    import onnx

    generator, weights, files = exported
    for name, expected in (("default", OPSET), ("inputs", 20)):
        model = onnx.load(str(files[name]))
        assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [expected], name
        assert {p.key: p.value for p in model.metadata_props}["opset"] == str(expected)
    capsys.readouterr()
    assert export_main(["--weights", str(weights), "--out", str(tmp_path / "old.onnx"), "--opset", "17"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: opset 17 is below 18") and len(err.splitlines()) == 1
    assert not (tmp_path / "old.onnx").exists()


def test_weights_and_metadata_name_the_exported_model(exported, weights, tmp_path, capsys, z):
    import onnx

    generator, source, files = exported
    meta = {p.key: p.value for p in onnx.load(str(files["inputs"])).metadata_props}
    assert (meta["weights"], meta["noise"], meta["cutoff"], meta["resolution"]) == (str(source), "inputs", "4", "16")
    assert _run(files["default"], z, 1.0).shape == (8, 3, 16, 16)     # the tiny model, not the bundled 64 px
    capsys.readouterr()
    assert export_main(["--weights", str(weights["progan"]), "--out", str(tmp_path / "p.onnx"), "--cutoff", "2"]) == 2
    err = capsys.readouterr().err
    assert "cutoff is a StyleGAN-lite truncation option" in err and len(err.splitlines()) == 1
    assert export_main(["--weights", str(source), "--out", str(tmp_path / "c.onnx"), "--cutoff", "7"]) == 2
    assert "cutoff must be between 0 and 6" in capsys.readouterr().err
