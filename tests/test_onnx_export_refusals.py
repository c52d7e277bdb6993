"""``app.onnx.export`` refusals that need neither onnx nor an export run, so they are checked on every install:
an unknown noise mode given to the exported module, the install hint when the ``[onnx]`` extra is missing,
and ``python -m app.onnx.export`` exiting with main's status."""
from __future__ import annotations

import runpy
import sys

import pytest

from app.onnx.export import OnnxGenerator, main


def test_the_exported_module_refuses_an_unknown_noise_mode(weights):
    """The CLI's --noise choices stop a typo there; the module itself (the Python API) names the modes."""
    from families import load_generator

    generator = load_generator(str(weights["stylegan_lite"]), progress=False)
    with pytest.raises(ValueError) as info:
        OnnxGenerator(generator, noise="random")
    assert str(info.value) == "noise must be one of const, inputs, none; got 'random'"
    for mode in ("const", "inputs", "none"):
        assert OnnxGenerator(generator, noise=mode).noise == mode


def test_export_without_the_onnx_extra_names_the_install_command(weights, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)    # `import onnx` raises ModuleNotFoundError
    out = tmp_path / "g.onnx"
    assert main(["--weights", str(weights["progan"]), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == 'error: onnx is not installed: pip install -e ".[onnx]"'
    assert not out.exists()


def test_python_m_app_onnx_export_exits_with_mains_status(weights, tmp_path, monkeypatch, capsys):
    """A refused export (``--cutoff`` on a ProGAN, which has no style layers) is exit status 2 from the shell too."""
    pytest.importorskip("onnx")
    monkeypatch.setattr(sys, "argv", ["export", "--weights", str(weights["progan"]), "--out", str(tmp_path / "g.onnx"),
                                      "--cutoff", "1"])
    monkeypatch.delitem(sys.modules, "app.onnx.export")   # run_module warns when it re-runs an imported module
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module("app.onnx.export", run_name="__main__")
    assert exit_.value.code == 2 and "cutoff is a StyleGAN-lite truncation option" in capsys.readouterr().err
