"""ONNX export (``app.export_onnx``) checked with onnxruntime against PyTorch, both families.

The acceptance check of issue 12: max |onnx - torch| <= 1e-4 over 16 seeds, at batch 16 and batch 1
(the batch axis is dynamic), with run-time psi and, for StyleGAN-lite, baked or explicit noise.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from families import FAMILIES

ort = pytest.importorskip("onnxruntime", reason='onnxruntime is not installed (pip install -e ".[onnx]")')
pytest.importorskip("onnxscript", reason='onnxscript is not installed (pip install -e ".[onnx]")')

from app.onnx.export import OPSET, OnnxGenerator, export_onnx  # noqa: E402
from app.generate import main as generate_main  # noqa: E402
from app.onnx.sampling import OnnxModel  # noqa: E402
from app.sampling import generate_images, seed_latents  # noqa: E402

TOLERANCE = 1e-4
CASES = [("progan", "const"), ("stylegan_lite", "const"), ("stylegan_lite", "inputs"), ("stylegan_lite", "none")]


def _tiny(name: str, **changes) -> torch.nn.Module:
    torch.manual_seed(0)
    config = dataclasses.replace(FAMILIES[name].presets["tiny"], **changes)
    generator = FAMILIES[name].generator_cls(config).eval()
    if name == "stylegan_lite":  # as after training: non-zero w_avg and noise strength (psi and noise matter)
        with torch.no_grad():  # and a non-constant 4x4 input (all ones makes the first AdaIN divide ~0 by ~0)
            generator.w_avg.normal_(0, 0.5)
            generator.synthesis.input.weight.normal_()
            for layer in generator.synthesis.layers:
                layer.noise.weight.normal_(0, 0.1)
    return generator


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = {}
    for name, noise in CASES:
        path = tmp_path_factory.mktemp("onnx") / f"{name}-{noise}.onnx"
        generator = _tiny(name)
        export_onnx(generator, path, noise=noise)
        out[name, noise] = generator, path
    return out


@pytest.mark.parametrize("name, noise", CASES)
def test_onnxruntime_matches_pytorch_on_16_seeds(exported, name, noise):
    generator, path = exported[name, noise]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    z = seed_latents(range(16), generator.config.latent_dim)
    module = OnnxGenerator(generator, noise=noise)
    for psi in ([0.5, 1.0] if name == "stylegan_lite" else [None]):
        feeds, args = {"z": z.numpy()}, [z]
        if psi is not None:
            feeds["psi"] = np.array(psi, np.float32)
            args.append(torch.tensor(psi))
        if noise == "inputs":
            maps = generator.synthesis.make_noise(16, generator=torch.Generator().manual_seed(1))
            feeds.update({f"noise_{i}": m.numpy() for i, m in enumerate(maps)})
            args += maps
        with torch.no_grad():
            expected = module(*args).numpy()
        got = session.run(["images"], feeds)[0]
        assert got.shape == expected.shape == (16, 3, 16, 16)
        assert np.abs(got - expected).max() <= TOLERANCE
        one = {k: (v[:1] if v.ndim else v) for k, v in feeds.items()}  # dynamic batch: 1 works too
        assert np.abs(session.run(["images"], one)[0] - expected[:1]).max() <= TOLERANCE


def test_metadata_names_the_opset_and_inputs(exported):
    _, path = exported["stylegan_lite", "inputs"]
    model = OnnxModel(path)
    assert model.metadata["opset"] == str(OPSET) and model.metadata["family"] == "stylegan_lite"
    assert model.inputs[:2] == ["z", "psi"] and len([n for n in model.inputs if n.startswith("noise_")]) == 6
    import onnx

    assert any(o.domain in ("", "ai.onnx") and o.version == OPSET for o in onnx.load(str(path)).opset_import)


@pytest.mark.parametrize("name, noise", [("progan", "const"), ("stylegan_lite", "const"), ("stylegan_lite", "inputs")])
def test_generate_cli_samples_from_onnx_like_pytorch(exported, tmp_path, name, noise):
    generator, path = exported[name, noise]
    out = tmp_path / "grid.png"
    assert generate_main(["--onnx", str(path), "--seeds", "0-7", "--psi", "0.7", "--out", str(out)]) == 0
    from PIL import Image

    onnx_grid = np.asarray(Image.open(out), dtype=int)
    mode = "random" if noise == "inputs" else "fixed"  # explicit noise inputs are fed each seed's stream
    images = generate_images(generator, list(range(8)), psi=0.7, noise=mode)
    from app.sampling import make_grid

    assert np.abs(onnx_grid - np.asarray(make_grid(images), dtype=int)).max() <= 1



def test_generate_cli_from_onnx_pads_the_grid(tmp_path):
    """``--onnx F --columns 2 --padding 3`` for 4 seeds: 2 rows of 2, seed i's PyTorch image at
    ((i // 2) * 19, (i % 2) * 19), 3 white pixels between cells; a negative padding is none."""
    from PIL import Image

    generator, path = _tiny("progan"), tmp_path / "progan.onnx"
    export_onnx(generator, path, noise="const")
    size, step, out = 16, 19, tmp_path / "grid.png"
    assert generate_main(["--onnx", str(path), "--seeds", "0-3", "--columns", "2", "--padding", "3",
                          "--out", str(out)]) == 0
    grid = np.asarray(Image.open(out).convert("RGB"), dtype=int)
    assert grid.shape == (size + step, size + step, 3)
    for i, image in enumerate(generate_images(generator, [0, 1, 2, 3], noise="fixed")):
        top, left = (i // 2) * step, (i % 2) * step
        assert np.abs(grid[top:top + size, left:left + size] - np.asarray(image, dtype=int)).max() <= 1, i
    assert (grid[size:step] == 255).all() and (grid[:, size:step] == 255).all()
    assert generate_main(["--onnx", str(path), "--seeds", "0-3", "--columns", "2", "--padding", "-3",
                          "--out", str(out)]) == 0
    with Image.open(out) as image:
        assert image.size == (2 * size, 2 * size)


def test_generate_cli_writes_into_an_out_folder_that_does_not_exist_yet(tmp_path):
    """``--out new/deeper/grid.png``: the folders are made, by the ONNX path as by the PyTorch one, and the
    two files hold the same grid (the model's images for seeds 0-3, fixed noise, within 1 level)."""
    from PIL import Image

    generator, path = _tiny("progan"), tmp_path / "progan.onnx"
    export_onnx(generator, path, noise="const")
    generator.save_pretrained(tmp_path / "weights")
    grids = {}
    for source in (["--onnx", str(path)], ["--weights", str(tmp_path / "weights")]):
        out = tmp_path / source[0].strip("-") / "deeper" / "grid.png"
        assert not out.parent.exists()
        assert generate_main([*source, "--seeds", "0-3", "--out", str(out)]) == 0, source[0]
        grids[source[0]] = np.asarray(Image.open(out).convert("RGB"), dtype=int)
    assert grids["--onnx"].shape == grids["--weights"].shape == (32, 32, 3)       # 4 seeds: 2 x 2 of 16 px
    assert np.abs(grids["--onnx"] - grids["--weights"]).max() <= 1


@pytest.mark.parametrize("name", ["progan", "stylegan_lite"])
def test_generate_cli_class_from_onnx_follows_the_models_class_order(tmp_path, name):
    """Class names not in alphabetical order: `app.generate --onnx F --class NAME` draws the class the
    PyTorch model has under that name (its index in the model's own order), for every class."""
    from PIL import Image

    from app.sampling import make_grid
    from progan.conditioning import bind_class

    classes = ("red", "blue", "green")
    generator = _tiny(name, class_names=classes)
    path = export_onnx(generator, tmp_path / "cond.onnx", noise="const")
    assert OnnxModel(path).class_names == classes
    grids = {}
    for cls in classes:
        out = tmp_path / f"{cls}.png"
        assert generate_main(["--onnx", str(path), "--seeds", "0-3", "--class", cls, "--out", str(out)]) == 0
        grids[cls] = np.asarray(Image.open(out), dtype=int)
        expected = generate_images(bind_class(generator, cls), [0, 1, 2, 3], noise="fixed")  # PyTorch, by name
        assert np.abs(grids[cls] - np.asarray(make_grid(expected), dtype=int)).max() <= 1
    assert np.abs(grids["red"] - grids["blue"]).max() > 0


class _StubSession:
    """Stands in for an onnxruntime session whose graph returns fixed ``images`` (one input, ``z``)."""

    def __init__(self, images: np.ndarray) -> None:
        self.images, self.done = images, 0

    def get_inputs(self):
        return [type("Input", (), {"name": "z", "shape": ["batch", 4]})()]

    def run(self, names, feeds):  # the next len(z) images, batch after batch
        self.done += len(feeds["z"])
        return [self.images[self.done - len(feeds["z"]):self.done]]


def test_onnx_images_round_like_the_app():
    """OnnxModel turns the graph's floats into the bytes progan.images.images_to_uint8 gives (NVIDIA's
    rounding: floor(x * 127.5 + 128), i.e. halves of a step round up), so ONNX and PyTorch pixels agree."""
    from progan.images import images_to_uint8

    known = {-1.5: 0, -1.0: 0, -0.5: 64, 0.0: 128, 0.5: 191, 1.0: 255, 1.5: 255}  # 0 -> 127.5 + 0.5, -0.5 -> 63.75 + 0.5
    steps = (np.arange(-1, 257, dtype=np.float32) + 0.5) / 127.5 - 1            # half-step boundaries and beyond
    values = np.concatenate([np.array(list(known), np.float32), steps])
    values = np.resize(values, 2 * 3 * 4 * 4 * 6).reshape(12, 3, 4, 4)          # [N, 3, R, R]
    model = object.__new__(OnnxModel)
    model.session, model.inputs, model.latent_dim, model.resolution = _StubSession(values), ["z"], 4, 4
    got = model.images(list(range(12)), batch_size=5)                             # [N, R, R, 3], three batches
    want = images_to_uint8(torch.from_numpy(values)).permute(0, 2, 3, 1).numpy()
    assert got.dtype == np.uint8 and np.array_equal(got, want), np.argwhere(got != want)[:3]
    flat = got.transpose(0, 3, 1, 2).reshape(-1)
    assert flat[:len(known)].tolist() == list(known.values())


def test_noise_inputs_are_fed_per_batch_when_seeds_outnumber_the_batch():
    """7 seeds at batch size 3 (batches of 3, 3, 1) into a stand-in graph with inputs z [N, 3] and noise_0
    [N, 1, 4, 4] that, like onnxruntime, refuses feeds of different batch sizes and returns each row's noise
    map as its image: row i must hold seed i's map, drawn by hand after z from manual_seed(seed)."""
    from types import SimpleNamespace

    inputs = [SimpleNamespace(name="z", shape=["N", 3]), SimpleNamespace(name="noise_0", shape=["N", 1, 4, 4])]

    def run(names, feeds):
        assert feeds["noise_0"].shape[0] == feeds["z"].shape[0], "onnxruntime: cannot broadcast the batch"
        return [np.clip(np.repeat(feeds["noise_0"], 3, axis=1) / 4, -1, 1)]

    model = object.__new__(OnnxModel)
    model.session = SimpleNamespace(get_inputs=lambda: inputs, run=run)
    model.inputs, model.latent_dim, model.resolution = ["z", "noise_0"], 3, 4
    seeds = [10, 11, 12, 13, 14, 15, 16]
    got = model.images(seeds, batch_size=3)
    for row, seed in enumerate(seeds):
        rng = torch.Generator("cpu").manual_seed(seed)
        torch.randn(1, 3, generator=rng)                                        # z comes first
        expected = torch.randn(4, 4, generator=rng).clamp(-4, 4) / 4            # the map, as the stand-in scales it
        want = np.floor(expected.numpy() * 127.5 + 128).clip(0, 255)             # NVIDIA's rounding
        np.testing.assert_array_equal(got[row, :, :, 0], want)


def test_bad_onnx_file_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    assert generate_main(["--onnx", str(bad), "--out", str(tmp_path / "x.png")]) == 2
    assert "not a loadable ONNX model" in capsys.readouterr().err


@pytest.mark.parametrize("name, noise", CASES)
def test_metadata_records_each_export_as_it_was_made(exported, name, noise):
    """The metadata ``app.generate --onnx`` reads: family, resolution, latent size, the graph's inputs, and the
    noise actually in the graph ("none" for a ProGAN, which has no noise, whatever --noise said)."""
    generator, path = exported[name, noise]
    meta = OnnxModel(path).metadata
    config = generator.config
    assert meta["family"] == name and meta["resolution"] == str(config.resolution)
    assert meta["latent_dim"] == str(config.latent_dim) and meta["cutoff"] == ""
    assert meta["noise"] == (noise if name == "stylegan_lite" else "none")
    layers = 2 * config.num_stages
    expected_inputs = ["z"] if name == "progan" else ["z", "psi", *(f"noise_{i}" for i in range(layers) if noise == "inputs")]
    assert json.loads(meta["inputs"]) == expected_inputs


def test_random_noise_goes_to_noise_inputs_in_layer_order_past_ten_layers():
    """A stand-in session with inputs z, psi, noise_0 .. noise_11 (layer order, sides 4, 4, 8, 8, ..., 128, 128):
    for each seed the stream is manual_seed(seed), z [1, 3], then one [1, 1, r, r] map per layer in layer order
    (app.sampling.seed_noise), so noise_10 gets the eleventh map drawn, not the third (name order)."""
    from types import SimpleNamespace

    sides = [4, 4, 8, 8, 16, 16, 32, 32, 64, 64, 128, 128]
    names = ["z", "psi"] + [f"noise_{i}" for i in range(12)]
    shapes = [["N", 3], []] + [["N", 1, r, r] for r in sides]
    session = SimpleNamespace(get_inputs=lambda: [SimpleNamespace(name=n, shape=s) for n, s in zip(names, shapes)])
    model = object.__new__(OnnxModel)
    model.session, model.inputs, model.latent_dim = session, names, 3
    seeds = [5, 12]
    feeds = model._noise(seeds)
    assert sorted(feeds) == sorted(names[2:])
    for row, seed in enumerate(seeds):
        rng = torch.Generator("cpu").manual_seed(seed)
        torch.randn(1, 3, generator=rng)                                        # z comes first
        for layer, side in enumerate(sides):
            expected = torch.randn(1, 1, side, side, generator=rng)[0].numpy()
            assert feeds[f"noise_{layer}"].shape == (len(seeds), 1, side, side)
            np.testing.assert_array_equal(feeds[f"noise_{layer}"][row], expected)


def test_export_cli_reports_the_files_size_in_megabytes(weights, tmp_path, capsys):
    """``python -m app.export_onnx`` says what it wrote: the file's byte count / 10^6 to 2 decimals, "MB"."""
    from app.onnx.export import main as export_main

    path = tmp_path / "g.onnx"
    assert export_main(["--weights", str(weights["progan"]), "--out", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"({path.stat().st_size / 10**6:.2f} MB)" in out and path.stat().st_size > 10**4


def test_export_cli_refuses_an_out_that_is_not_onnx(weights, tmp_path, capsys):
    """``--out`` names the .onnx file: any other suffix is a usage error (exit 2, one line naming it) and
    nothing is written, rather than an ONNX graph under a name nothing will open as one."""
    from app.onnx.export import main as export_main

    for name in ("g.txt", "g.onnx.bak", "g"):
        with pytest.raises(SystemExit) as info:
            export_main(["--weights", str(weights["progan"]), "--out", str(tmp_path / name)])
        assert info.value.code == 2
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert last.endswith(f"--out must end in .onnx, got {str(tmp_path / name)!r}"), last
    assert not list(tmp_path.iterdir())


def test_export_cli_cutoff_truncates_only_the_layers_below_it(tmp_path, capsys):
    """``python -m app.export_onnx --cutoff 2`` (fast; the other options: tests/test_onnx_options.py, slow):
    the graph pulls only style layers 0 and 1 towards ``w_avg`` (``w' = w_avg + psi (w - w_avg)`` below the
    cutoff, StyleGAN appendix B), so at psi 0.5 onnxruntime gives ``generator(z, psi=0.5, cutoff=2)``, which
    differs from the all-layer truncation an export without the cutoff would bake in; the metadata records
    the cutoff, and a cutoff past the model's 6 style layers is refused before anything is exported."""
    from app.onnx.export import main as export_main

    generator = _tiny("stylegan_lite")
    generator.save_pretrained(tmp_path / "weights")
    path = tmp_path / "cutoff.onnx"
    assert export_main(["--weights", str(tmp_path / "weights"), "--out", str(path), "--cutoff", "2"]) == 0
    assert OnnxModel(path).metadata["cutoff"] == "2"
    z = seed_latents(range(4), generator.config.latent_dim)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["images"], {"z": z.numpy(), "psi": np.array(0.5, np.float32)})[0]
    with torch.no_grad():
        expected = generator(z, psi=0.5, cutoff=2, noise_mode="const").numpy()
        every_layer = generator(z, psi=0.5, noise_mode="const").numpy()
    assert np.abs(every_layer - expected).max() > 100 * TOLERANCE  # the cutoff matters for this model
    assert np.abs(got - expected).max() <= TOLERANCE
    capsys.readouterr()
    assert export_main(["--weights", str(tmp_path / "weights"), "--out", str(tmp_path / "c.onnx"), "--cutoff", "7"]) == 2
    assert "cutoff must be between 0 and 6" in capsys.readouterr().err and not (tmp_path / "c.onnx").exists()


def test_a_generator_left_in_training_mode_is_exported_as_in_eval_mode(tmp_path):
    """``export_onnx`` exports the generator as it samples (on the CPU, in eval mode) whatever mode it is
    handed in: in training mode StyleGAN-lite mixes styles at random and tracks w_avg in its forward, which a
    trace would bake into the graph. So onnxruntime's images of a generator passed in ``train()`` mode equal
    the eval-mode PyTorch images, and w_avg is unchanged by the export."""
    generator = _tiny("stylegan_lite")
    w_avg = generator.w_avg.clone()
    path = export_onnx(generator.train(), tmp_path / "g.onnx", noise="const")
    assert not generator.training
    torch.testing.assert_close(generator.w_avg, w_avg, rtol=0, atol=0)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    z = seed_latents(range(6), generator.config.latent_dim)
    with torch.no_grad():
        expected = OnnxGenerator(generator.eval(), noise="const")(z, torch.tensor(0.7)).numpy()
    got = session.run(["images"], {"z": z.numpy(), "psi": np.array(0.7, np.float32)})[0]
    assert np.abs(got - expected).max() <= TOLERANCE


def test_export_cli_passes_noise_opset_and_weights_on(weights, tmp_path, capsys):
    """``python -m app.export_onnx --noise inputs --opset 20`` in-process (fast; the slow end-to-end runs are in
    tests/test_onnx_options.py): the file the CLI writes has the graph the options ask for, not the defaults.

    - ``--opset 20``: the graph's own ``ai.onnx`` opset import is 20 (the default would be 18), and so is the
      metadata; ``--opset 17`` is below the exporter's lowest (18): exit 2, one ``error:`` line, no file;
    - ``--noise inputs``: one ``noise_i`` input per synthesis layer (2 per stage: 2 * 3 = 6 for the 16 px
      tiny preset, sides 4, 4, 8, 8, 16, 16), and the maps fed there are the ones used: the output equals
      ``generator(z, psi=0.5, noise=maps)``, different maps give a different image;
    - ``--weights``: the named model (16 px, recorded in the metadata as given);
    - ``--cutoff`` on a ProGAN: refused in one line, no file."""
    import onnx

    from app.onnx.export import main as export_main

    generator = _tiny("stylegan_lite")
    source = tmp_path / "weights"
    generator.save_pretrained(source)
    path = tmp_path / "inputs.onnx"
    assert export_main(["--weights", str(source), "--out", str(path), "--noise", "inputs", "--opset", "20"]) == 0
    model = onnx.load(str(path))
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [20]
    meta = {p.key: p.value for p in model.metadata_props}
    assert (meta["opset"], meta["noise"], meta["weights"], meta["resolution"]) == ("20", "inputs", str(source), "16")
    names = [i.name for i in model.graph.input]
    assert names == ["z", "psi", *(f"noise_{i}" for i in range(6))]
    z = seed_latents(range(3), generator.config.latent_dim)
    maps = [torch.randn(3, 1, side, side, generator=torch.Generator().manual_seed(i))
            for i, side in enumerate((4, 4, 8, 8, 16, 16))]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(noise):
        feeds = {"z": z.numpy(), "psi": np.array(0.5, np.float32), **{f"noise_{i}": m.numpy() for i, m in enumerate(noise)}}
        return session.run(["images"], feeds)[0]

    got = run(maps)
    with torch.no_grad():
        expected = generator(z, psi=0.5, noise=maps).numpy()
    assert np.abs(got - expected).max() <= TOLERANCE
    assert np.abs(got - run([torch.zeros_like(m) for m in maps])).max() > 100 * TOLERANCE   # the fed maps count
    capsys.readouterr()
    for args, message in ((["--weights", str(source), "--opset", "17"], "error: opset 17 is below 18"),
                          (["--weights", str(weights["progan"]), "--cutoff", "2"],
                           "error: cutoff is a StyleGAN-lite truncation option")):
        refused = tmp_path / "refused.onnx"
        assert export_main([*args, "--out", str(refused)]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith(message) and len(err.splitlines()) == 1, err
        assert not refused.exists()
