"""``python -m app.generate``: grid, interpolation (MP4 + GIF) and style mixing in a subprocess (slow: each
run imports torch); error handling in-process through ``main`` (fast)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from app.generate import main
from families import FAMILIES
from image_utils import read_frames

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.generate", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("module, prog, option", [
    ("app.project", "app.project", "--w-plus"), ("app.projection.cli", "app.project", "--w-plus"),
    ("app.export_onnx", "app.export_onnx", "--noise"), ("app.onnx.export", "app.export_onnx", "--noise"),
])
def test_documented_commands_run_from_their_names(module, prog, option):
    # the README's `python -m app.project` / `app.export_onnx` outlived the move into app/projection and
    # app/onnx (thin modules); the packages' own paths work too
    done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: python -m {prog} ") and option in done.stdout


def test_the_grid_shorthand_reads_sys_argv_in_process(weights, tmp_path, monkeypatch):
    """``python -m app.generate --seeds ... --out grid.png`` (no command: the README's shorthand for ``grid``)
    runs ``main()`` with no argv, so the arguments come from ``sys.argv``: the grid it writes is the one the
    explicit ``grid`` command writes, pixel for pixel (the subprocess test of this is slow)."""
    args = ["--weights", str(weights["progan"]), "--seeds", "0-5", "--psi", "0.7"]
    explicit = tmp_path / "explicit.png"
    assert main(["grid", *args, "--out", str(explicit)]) == 0
    short = tmp_path / "short.png"
    monkeypatch.setattr(sys, "argv", ["python -m app.generate", *args, "--out", str(short)])
    assert main() == 0
    with Image.open(short) as a, Image.open(explicit) as b:
        assert a.size == (3 * 16, 2 * 16) and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("module, prog, option", [
    ("app.project", "app.project", "--w-plus"), ("app.projection.cli", "app.project", "--w-plus"),
    ("app.export_onnx", "app.export_onnx", "--noise"), ("app.onnx.export", "app.export_onnx", "--noise"),
    ("app.generate", "app.generate", "interpolate"),
])
def test_documented_commands_run_main_as_their_names_in_process(module, prog, option, monkeypatch, capsys):
    """The fast twin of the subprocess test above: ``python -m MODULE --help`` run in this process
    (``runpy`` executes the module as ``__main__``, as ``python -m`` does) reaches the command's ``main``:
    exit 0 and the usage line the README documents, ``usage: python -m PROG``, naming one of its options.
    A thin module that imported ``main`` but never called it would exit 0 and print nothing."""
    import runpy
    import warnings

    monkeypatch.setattr(sys, "argv", [module, "--help"])
    with warnings.catch_warnings(), pytest.raises(SystemExit) as info:
        warnings.simplefilter("ignore", RuntimeWarning)    # "found in sys.modules": the module was imported already
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m {prog} ") and option in out


@pytest.mark.slow
@pytest.mark.parametrize("family_name", list(FAMILIES))
def test_grid(weights, tmp_path, family_name):
    out = tmp_path / "grid.png"
    done = _run("--weights", str(weights[family_name]), "--seeds", "0-5", "--psi", "0.7", "--out", str(out))
    assert done.returncode == 0, done.stderr
    with Image.open(out) as image:
        assert image.size == (3 * 16, 2 * 16)                                  # 6 images: 3 columns, 2 rows


@pytest.mark.slow
def test_interpolate_mp4_and_gif(weights, tmp_path):
    import imageio_ffmpeg

    mp4, gif = tmp_path / "walk.mp4", tmp_path / "walk.gif"
    base = ["interpolate", "--weights", str(weights["stylegan_lite"]), "--seeds", "1,2,3", "--frames", "12"]
    done = _run(*base, "--space", "w", "--method", "lerp", "--out", str(mp4))
    assert done.returncode == 0, done.stderr
    assert mp4.read_bytes()[4:8] == b"ftyp"
    frames, _seconds = imageio_ffmpeg.count_frames_and_secs(str(mp4))
    assert frames == 12
    done = _run(*base, "--method", "slerp", "--loop", "--out", str(gif))
    assert done.returncode == 0, done.stderr
    with Image.open(gif) as image:
        assert image.n_frames == 12 and image.size == (256, 256)               # 16 px upscaled x16, nearest


@pytest.mark.slow
def test_mix(weights, tmp_path):
    out = tmp_path / "mix.png"
    done = _run("mix", "--weights", str(weights["stylegan_lite"]), "--rows", "1,2", "--cols", "3-5",
                "--styles", "middle", "--out", str(out))
    assert done.returncode == 0, done.stderr
    with Image.open(out) as image:
        assert image.size == (4 * 16, 3 * 16)                                  # corner + 3 columns, top row + 2 rows


@pytest.mark.parametrize("args, message", [
    (["mix", "--styles", "fine"], "no fine layers"),
    (["--seeds", "9-1"], "runs backwards"),
    (["--psi", "5"], "psi must be between"),
    (["interpolate", "--seeds", "1", "--frames", "4"], "at least two seeds"),
])
def test_errors_are_one_line(weights, tmp_path, capsys, args, message):
    suffix = ".gif" if args[0] == "interpolate" else ".png"
    assert main([*args, "--weights", str(weights["stylegan_lite"]), "--out", str(tmp_path / f"x{suffix}")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_bad_weights_file(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    assert main(["--weights", str(bad), "--out", str(tmp_path / "x.png")]) == 2
    assert "not a valid safetensors" in capsys.readouterr().err


def test_out_suffix_is_checked(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["interpolate", "--out", str(tmp_path / "x.png")])
    assert info.value.code == 2  # argparse's usage error, not any exit
    assert "--out must end in .mp4, .gif for interpolate" in capsys.readouterr().err


@pytest.mark.parametrize("command, extra", [
    ("grid", ["--seeds", "0-1"]), ("mix", ["--rows", "1", "--cols", "2"]),
    ("edit", ["--seeds", "0", "--directions", "0", "--k", "2", "--steps", "2"]),
])
def test_image_commands_write_every_documented_format(weights, tmp_path, command, extra):
    """``--help`` of grid, mix and edit: ".png/.jpg/.webp" (and .jpeg, JPEG's other name). Each suffix, in
    either case, is accepted and the file written is in that format (read back by its header, not its name)."""
    formats = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".WEBP": "WEBP"}
    for suffix, fmt in formats.items():
        out = tmp_path / f"{command}{suffix}"
        assert main([command, "--weights", str(weights["stylegan_lite"]), *extra, "--out", str(out)]) == 0, suffix
        with Image.open(out) as image:
            assert image.format == fmt, suffix


# --- --latent: a projected image (app.project's latent.safetensors) wherever a seed goes -------------------------

@pytest.fixture(scope="module")
def latents(weights, tmp_path_factory):
    """A few projection steps per tiny model, saved like ``app.project`` saves them: ``{family: (path, pixels)}``."""
    import numpy as np

    from app.projection import ProjectionOptions, image_to_target, project, reconstruction_pixels
    from families import load_generator

    out, root = {}, tmp_path_factory.mktemp("latents")
    target = np.full((16, 16, 3), 255, np.uint8)
    target[4:12, 4:12] = (230, 180, 30)
    for name, path in weights.items():
        generator = load_generator(str(path))
        projection = project(generator, image_to_target(target), ProjectionOptions(steps=5, w_avg_samples=200))
        projection.metadata["weights"] = str(path)
        out[name] = (projection.save(root / f"{name}.safetensors"), reconstruction_pixels(projection.render(generator)))
    return out


@pytest.mark.parametrize("family_name", list(FAMILIES))
def test_latent_in_a_grid_is_its_reconstruction(weights, latents, tmp_path, family_name):
    import numpy as np

    latent, reconstruction = latents[family_name]
    out = tmp_path / "grid.png"
    assert main(["--weights", str(weights[family_name]), "--latent", str(latent), "--seeds", "3,image",
                 "--out", str(out)]) == 0
    with Image.open(out) as image:
        assert image.size == (2 * 16, 16)
        grid = np.asarray(image.convert("RGB"))
    assert np.array_equal(grid[:, 16:], reconstruction)                       # the pixels app.project wrote
    assert not np.array_equal(grid[:, :16], reconstruction)


def test_latent_in_interpolation_and_mixing(weights, latents, tmp_path):
    import numpy as np

    latent, reconstruction = latents["stylegan_lite"]
    sg = ["--weights", str(weights["stylegan_lite"]), "--latent", str(latent)]
    gif = tmp_path / "walk.gif"
    assert main(["interpolate", *sg, "--seeds", "image,1", "--frames", "4", "--space", "w", "--method", "lerp",
                 "--min-size", "16", "--out", str(gif)]) == 0
    with Image.open(gif) as image:
        assert image.n_frames == 4 and image.size == (16, 16)
        first = np.asarray(image.convert("RGB"), dtype=int)
    assert np.abs(first - reconstruction).mean() < 3          # the walk starts at the image (up to the GIF palette)
    mix = tmp_path / "mix.png"
    assert main(["mix", *sg, "--rows", "2", "--cols", "image,1", "--out", str(mix)]) == 0
    with Image.open(mix) as image:
        assert image.size == (3 * 16, 2 * 16)
        figure = np.asarray(image.convert("RGB"), dtype=int)
    assert np.abs(figure[:16, 16:32] - reconstruction).max() <= 1             # column "image" heads its column
    pg = ["--weights", str(weights["progan"]), "--latent", str(latents["progan"][0])]
    assert main(["interpolate", *pg, "--seeds", "image,1", "--frames", "4", "--out", str(tmp_path / "z.gif")]) == 0


def _latent_file(tmp_path, kind: str):
    from app.projection import Projection

    path = tmp_path / f"{kind}.safetensors"
    if kind == "text":
        path.write_text("not a latent")
    elif kind == "weights":                                                    # safetensors, but a generator
        FAMILIES["progan"].generator_cls(FAMILIES["progan"].presets["tiny"]).save_pretrained(tmp_path / "g")
        path = tmp_path / "g" / "model.safetensors"
    elif kind == "shape":
        Projection("stylegan_lite", "w", torch.zeros(1, 7)).save(path)
    elif kind == "resolution":                                                 # a 32 px model's noise maps
        noise = [torch.zeros(1, 1, r, r) for r in (4, 8, 16, 32) for _ in range(2)]
        Projection("stylegan_lite", "w", torch.zeros(1, 16), noise).save(path)
    return path


@pytest.mark.parametrize("kind, message", [
    ("text", "not a projection file"),
    ("weights", "not a projection file written by app.project"),
    ("progan", "belongs to a progan model, not stylegan_lite"),
    ("shape", "latent of shape (1, 7) does not fit this model"),
    ("resolution", "noise maps do not fit this model's resolution"),
    ("missing", "no such file"),
])
def test_latent_that_does_not_fit_is_one_line(weights, latents, tmp_path, capsys, kind, message):
    path = latents["progan"][0] if kind == "progan" else _latent_file(tmp_path, kind)
    args = ["--weights", str(weights["stylegan_lite"]), "--latent", str(path), "--seeds", "image,1"]
    assert main([*args, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("args, message", [
    (["--seeds", "image,1"], '"image" in the seeds needs --latent PATH'),
    (["--seeds", "1,2", "--latent", "x.safetensors"], "no seed list names it"),
    (["--onnx", "m.onnx", "--seeds", "image", "--latent", "x.safetensors"], "--latent needs --weights"),
])
def test_image_token_and_latent_go_together(tmp_path, capsys, args, message):
    assert main([*args, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_latent_from_other_weights_of_the_same_shape_runs_with_a_note(weights, latents, tmp_path, capsys):
    import shutil

    other = shutil.copytree(weights["progan"], tmp_path / "progan-copy")
    assert main(["--weights", str(other), "--latent", str(latents["progan"][0]), "--seeds", "image",
                 "--out", str(tmp_path / "x.png")]) == 0
    assert f"was projected with {weights['progan']}; drawing it with {other}" in capsys.readouterr().err


@pytest.fixture(scope="module")
def noisy_weights(tmp_path_factory):
    """Tiny StyleGAN-lite weights whose noise changes pixels (a fresh model's noise strengths are 0)."""
    family = FAMILIES["stylegan_lite"]
    torch.manual_seed(0)
    generator = family.generator_cls(family.presets["tiny"])
    with torch.no_grad():
        generator.synthesis.input.weight.normal_()
        for layer in generator.synthesis.layers:
            layer.noise.weight.fill_(0.5)
    path = tmp_path_factory.mktemp("noisy")
    generator.save_pretrained(path)
    return path


@pytest.mark.parametrize("command,extra,suffix,default,other", [
    ("grid", ["--seeds", "0-3"], ".png", "random", "fixed"),
    ("interpolate", ["--seeds", "1,2", "--frames", "4", "--min-size", "16"], ".gif", "fixed", "random"),
    ("mix", ["--rows", "1,2", "--cols", "3,4"], ".png", "fixed", "random"),
])
def test_each_command_draws_its_documented_default_noise(noisy_weights, tmp_path, command, extra, suffix, default,
                                                         other):
    """``--help``: "default: random for grid, fixed for videos and mixing". No --noise gives exactly the
    pixels of that mode, and the other mode's pixels differ (so the comparison can fail)."""
    import numpy as np

    def pixels(*noise: str) -> np.ndarray:
        out = tmp_path / f"{command}{'-'.join(('',) + noise)}{suffix}"
        assert main([command, "--weights", str(noisy_weights), *extra, *noise, "--out", str(out)]) == 0
        return read_frames(out)

    unset = pixels()
    assert np.array_equal(unset, pixels("--noise", default))
    assert not np.array_equal(unset, pixels("--noise", other))


@pytest.mark.parametrize("command,extra,suffix", [
    ("grid", ["--seeds", "0-4"], ".png"),
    ("interpolate", ["--seeds", "1,2", "--frames", "5", "--min-size", "16"], ".gif"),
])
def test_batch_size_bounds_the_images_per_forward_pass(noisy_weights, tmp_path, command, extra, suffix):
    """``--batch-size`` ("images per forward pass", the knob for a small GPU's memory): no module of the
    generator sees more than that many images at once, and the pixels are those of the default batch
    (every image is seeded on its own, so batching cannot change them)."""
    import numpy as np

    def draw(*batch: str) -> tuple[np.ndarray, int]:
        widest = []
        hook = torch.nn.modules.module.register_module_forward_hook(
            lambda module, args, output: widest.append(output.shape[0]) if isinstance(output, torch.Tensor) else None)
        out = tmp_path / f"{command}{'-'.join(('',) + batch)}{suffix}"
        try:
            assert main([command, "--weights", str(noisy_weights), *extra, *batch, "--out", str(out)]) == 0
        finally:
            hook.remove()
        return read_frames(out), max(widest)

    whole, widest = draw()
    assert widest == 5                                                # the default 16 takes all five at once
    batched, widest = draw("--batch-size", "2")
    assert widest == 2
    assert np.array_equal(batched, whole)


@pytest.mark.parametrize("space", ["z", "w"])
def test_interpolate_loop_returns_through_the_seeds_to_the_first(noisy_weights, tmp_path, space):
    """``interpolate --loop``: the walk through seeds A, B goes A -> B -> back towards A, its frames spread
    evenly over the closed path (the last is one step before A, so the clip repeats seamlessly). With two
    seeds and F = 6 frames the looped clip sits at 0, 1/3, ..., 5/3 of the way A -> B -> A: frame F/2 is B and
    frame k mirrors frame F - k (the same point walked back). Without --loop the last frame is B itself. The
    same in W (the keys mapped first, a separate code path)."""
    import numpy as np

    def clip(*loop: str) -> np.ndarray:
        out = tmp_path / f"walk{'-'.join(('',) + loop)}.gif"
        assert main(["interpolate", "--weights", str(noisy_weights), "--seeds", "1,2", "--frames", "6",
                     "--space", space, "--method", "lerp", "--min-size", "16", *loop, "--out", str(out)]) == 0
        return read_frames(out).astype(int)

    plain, looped = clip(), clip("--loop")
    assert len(plain) == len(looped) == 6
    seed_a, seed_b = plain[0], plain[-1]                                  # plain walk: A first, B last
    assert np.abs(seed_a - seed_b).mean() > 10                            # so the comparisons below can fail
    assert np.array_equal(looped[0], seed_a)
    assert np.abs(looped[3] - seed_b).max() <= 2                          # halfway round the loop: B
    for k in (1, 2):                                                      # the way back retraces the way there
        assert np.abs(looped[6 - k] - looped[k]).max() <= 2, k
    assert np.abs(looped[-1] - seed_b).mean() > 5                         # it does not end on the last seed
    assert np.abs(looped[-1] - seed_a).mean() < np.abs(seed_b - seed_a).mean()   # but on the way back to A


# --- argument errors and notes with no other fast test ------------------------------------------------------------

def _pixels(path: Path):
    import numpy as np

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_batch_size_zero_is_a_usage_error(weights, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--weights", str(weights["progan"]), "--batch-size", "0", "--out", str(tmp_path / "x.png")])
    assert info.value.code == 2 and "--batch-size must be at least 1" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
    assert main(["--weights", str(weights["progan"]), "--seeds", "0", "--batch-size", "1",
                 "--out", str(tmp_path / "one.png")]) == 0                      # 1 is allowed


def test_progan_ignores_psi_and_cutoff_with_a_note(weights, tmp_path, capsys):
    """ProGAN has no W space: --psi/--cutoff change nothing (same pixels) and a note says so."""
    common = ["--weights", str(weights["progan"]), "--seeds", "0-3", "--noise", "none"]
    assert main([*common, "--out", str(tmp_path / "plain.png")]) == 0
    assert "note:" not in capsys.readouterr().err
    for extra in (["--psi", "0.5"], ["--cutoff", "1"]):
        out = tmp_path / f"{extra[0][2:]}.png"
        assert main([*common, *extra, "--out", str(out)]) == 0
        assert "note: ProGAN has no W space; --psi and --cutoff are ignored" in capsys.readouterr().err, extra
        assert (_pixels(out) == _pixels(tmp_path / "plain.png")).all(), extra


def test_a_conditional_model_without_class_draws_its_first_class_and_says_so(tmp_path, capsys):
    import dataclasses

    torch.manual_seed(0)
    config = dataclasses.replace(FAMILIES["progan"].presets["tiny"], class_names=("cat", "dog"))
    FAMILIES["progan"].generator_cls(config).save_pretrained(tmp_path / "cond")
    common = ["--weights", str(tmp_path / "cond"), "--seeds", "0-1"]
    assert main([*common, "--out", str(tmp_path / "default.png")]) == 0
    assert "note: conditional model; drawing class 'cat' (--class: 'cat', 'dog')" in capsys.readouterr().err
    for name in ("cat", "dog"):
        assert main([*common, "--class", name, "--out", str(tmp_path / f"{name}.png")]) == 0
        assert "note:" not in capsys.readouterr().err
    assert (_pixels(tmp_path / "default.png") == _pixels(tmp_path / "cat.png")).all()
    assert not (_pixels(tmp_path / "default.png") == _pixels(tmp_path / "dog.png")).all()


def test_onnx_and_weights_together_are_refused(weights, tmp_path, capsys):
    assert main(["--onnx", str(tmp_path / "g.onnx"), "--weights", str(weights["progan"]),
                 "--out", str(tmp_path / "x.png")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == ["error: give --onnx or --weights, not both"]
    assert not (tmp_path / "x.png").exists()


def test_a_directions_file_of_other_weights_is_refused_and_its_own_is_used(tmp_path, capsys):
    from app.directions import compute_directions

    family = FAMILIES["stylegan_lite"]
    generators = {}
    for seed in (0, 1):
        torch.manual_seed(seed)
        generators[seed] = family.generator_cls(family.presets["tiny"])
        generators[seed].save_pretrained(tmp_path / f"g{seed}")
        compute_directions(generators[seed], layers="0-3", k=3).save(tmp_path / f"d{seed}.safetensors")
    common = ["edit", "--weights", str(tmp_path / "g0"), "--seeds", "0", "--directions", "0", "--steps", "3"]
    out = tmp_path / "edit.png"
    assert main([*common, "--directions-file", str(tmp_path / "d1.safetensors"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "these directions were computed from other weights" in err[0]
    assert not out.exists()
    assert main([*common, "--directions-file", str(tmp_path / "d0.safetensors"), "--out", str(out)]) == 0
    assert out.exists()
