"""Class-conditional training (issue 22): conditional G, projection D, refusals, train.py under --cond, CLI/ONNX.

Expected values are derived independently: the projection discriminator's score from its closed form
(Miyato & Koyama 2018, eq. 3) with the features taken by a hook, the label distribution of the G step from
the class weights, a dataset's labels from the folders a test wrote. data_prep's label reading (class folders,
labels files, emoji groups) is tested in ``test_data_prep_labels.py``.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import data_prep
from data_prep import DataPrepError
from families import FAMILIES
from image_utils import LABELLED_CLASSES as CLASSES
from image_utils import labelled_source, write_images
from progan.conditioning import bind_class, class_index
from progan.training.conditional import conditional_model_config
from progan.training.step import StepContext, sample_labels


@pytest.fixture
def labelled(tmp_path) -> Path:
    """src/blue: 3 images (blue channel), src/red: 5 images (red channel), one unlabelled at the top."""
    return labelled_source(tmp_path)


def _conditional(family: str, seed: int = 0):
    torch.manual_seed(seed)
    config = dataclasses.replace(FAMILIES[family].presets["tiny"], class_names=CLASSES)
    return FAMILIES[family].generator_cls(config).eval(), FAMILIES[family].discriminator_cls(config).eval()


@pytest.mark.parametrize("family", list(FAMILIES))
def test_conditional_generator_depends_on_the_class(family):
    g, _ = _conditional(family)
    z = torch.randn(4, g.config.latent_dim)
    kwargs = {"noise_mode": "const"} if family == "stylegan_lite" else {}
    blue, red = (g(z, labels=torch.full((4,), c), **kwargs) for c in (0, 1))
    assert torch.equal(blue, g(z, labels=torch.zeros(4, dtype=torch.long), **kwargs))  # deterministic
    assert (blue - red).abs().flatten(1).amax(dim=1).min() > 1e-3                      # every sample differs
    assert torch.equal(bind_class(g, "red")(z, **kwargs), red)


def test_style_mixing_maps_both_latents_with_the_labels():
    """G(z, labels=y, mix_z=z2, crossover=k): layers < k take map(z, y), layers >= k map(z2, y) (stylegan2-ada
    mixes within the class), the ws built here by hand from the mapping output and fed to synthesis."""
    g, _ = _conditional("stylegan_lite")
    z, z2, y = torch.randn(2, g.config.latent_dim), torch.randn(2, g.config.latent_dim), torch.tensor([0, 1])
    crossover = 2
    with torch.no_grad():
        out = g(z, labels=y, mix_z=z2, crossover=crossover, noise_mode="const")
        first, second = g.map(z, y), g.map(z2, y)                                  # [N, w_dim] each
        ws = torch.stack([first if i < crossover else second for i in range(g.num_ws)], dim=1)  # [N, num_ws, w_dim]
        expected = g.synthesis(ws, noise_mode="const")
        other_class = g(z, labels=y, mix_z=z2, crossover=crossover, noise_mode="const") - g(
            z, labels=1 - y, mix_z=z2, crossover=crossover, noise_mode="const")
    assert 0 < crossover < g.num_ws and not torch.allclose(first, second)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    assert other_class.abs().amax() > 1e-3                                          # the class reaches the image


@pytest.mark.parametrize("family", list(FAMILIES))
def test_projection_discriminator_closed_form(family):
    """D(x, y) = psi(phi) + <embed(y), phi> / sqrt(C), psi linear (Miyato & Koyama 2018, eq. 3)."""
    _, d = _conditional(family)
    head = d.blocks[0]
    captured = {}
    head.dense.register_forward_hook(lambda _m, _i, out: captured.__setitem__("phi", F.leaky_relu(out, 0.2)))
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        for y in (torch.tensor([0, 1, 0, 1]), torch.tensor([1, 1, 0, 0])):
            score = d(x, labels=y)
            phi = captured["phi"]                                                  # [N, C]
            channels, classes = phi.shape[1], len(CLASSES)
            unconditional = phi @ head.out.weight.T / math.sqrt(channels) + head.out.bias
            embedding = head.projection.embed.linear.weight.T[y] / math.sqrt(classes)  # one-hot -> column y
            expected = unconditional + (embedding * phi).sum(1, keepdim=True) / math.sqrt(channels)
            torch.testing.assert_close(score, expected, rtol=1e-5, atol=1e-6)
        assert not torch.allclose(d(x, labels=torch.zeros(4, dtype=torch.long)), d(x, labels=torch.ones(4, dtype=torch.long)))


def test_refusals():
    g, d = _conditional("progan")
    with pytest.raises(ValueError, match=r"unknown class 'green'; choose from 'blue', 'red'"):
        class_index(g.config.class_names, "green")
    with pytest.raises(ValueError, match="pass labels"):
        g(torch.randn(2, g.config.latent_dim))
    with pytest.raises(ValueError, match="pass labels"):
        d(torch.randn(2, 3, 16, 16))
    plain = FAMILIES["progan"].generator_cls(FAMILIES["progan"].presets["tiny"])
    with pytest.raises(ValueError, match="unconditional"):
        plain(torch.randn(2, 16), labels=torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="unconditional"):
        bind_class(plain, "red")


def test_cond_needs_a_labelled_dataset(tmp_path):
    write_images(tmp_path / "plain", 4, 0)
    out = data_prep.prepare(tmp_path / "plain", tmp_path / "data", resolution=8, progress=False, workers=1)
    with pytest.raises(DataPrepError, match="has no class labels; prepare it with"):
        data_prep.open_dataset(out, 8, with_labels=True)
    with pytest.raises(ValueError, match="--cond needs a dataset with class labels"):
        conditional_model_config(FAMILIES["progan"].presets["tiny"], data_prep.open_dataset(out, 8))


def test_g_step_labels_follow_the_class_weights_and_the_seed():
    ctx = StepContext(generator=None, discriminator=None, loss="wgan_gp", stage=0, alpha=1.0, latent_dim=4,
                      device=torch.device("cpu"), autocast=None, backward=None,
                      class_weights=torch.tensor([1.0, 0.0, 3.0]))
    torch.manual_seed(5)
    labels = sample_labels(ctx, 4000)
    torch.manual_seed(5)
    assert torch.equal(labels, sample_labels(ctx, 4000))                     # the checkpointed RNG decides
    assert (labels != 1).all()                                              # an empty class is never drawn
    assert abs((labels == 2).float().mean().item() - 0.75) < 0.03            # 3 : 1


def _export(tmp_path, family: str) -> Path:
    g, _ = _conditional(family)
    if family == "stylegan_lite":
        with torch.no_grad():
            g.synthesis.input.weight.normal_()
    g.save_pretrained(tmp_path / family)
    return tmp_path / family


@pytest.mark.parametrize("family", list(FAMILIES))
def test_generate_cli_class(tmp_path, capsys, family):
    from app.generate import main

    weights = _export(tmp_path, family)
    paths = {}
    for name in CLASSES:
        paths[name] = tmp_path / f"{name}.png"
        assert main(["--weights", str(weights), "--class", name, "--seeds", "0-3", "--noise", "none",
                     "--out", str(paths[name])]) == 0
    assert not np.array_equal(np.asarray(Image.open(paths["blue"])), np.asarray(Image.open(paths["red"])))
    assert main(["--weights", str(weights), "--class", "green", "--seeds", "0", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: unknown class 'green'; choose from 'blue', 'red'"]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_onnx_takes_the_class_as_an_input(tmp_path, family):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from app.onnx.export import export_onnx
    from app.onnx.sampling import OnnxModel
    from app.sampling import generate_images
    from families import load_generator

    weights = _export(tmp_path, family)
    path = export_onnx(load_generator(weights), tmp_path / "g.onnx", noise="none" if family == "stylegan_lite" else "const")
    model = OnnxModel(path)
    assert model.class_names == CLASSES and model.inputs[:2] == ["z", "labels"]
    generator = load_generator(weights)
    for name in CLASSES:
        label = model.class_label(name)
        expected = generate_images(bind_class(generator, name), [0, 1, 2], noise="none")
        got = model.images([0, 1, 2], label=label)
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    assert np.abs(model.images([0], label=0).astype(int) - model.images([0], label=1).astype(int)).max() > 0
    with pytest.raises(ValueError, match="unknown class"):
        model.class_label("green")


@pytest.mark.slow
def test_train_cond_end_to_end_and_refusal(labelled, tmp_path):
    from app.generate import main as generate_main
    from families import load_generator
    from train_utils import run_train, train_args

    data = data_prep.prepare(labelled, tmp_path / "data", resolution=16, labels="folders", progress=False, workers=1)
    for family in FAMILIES:
        result = run_train(train_args(family, data, tmp_path / family, cond=True, kimg=0.06))
        assert result.returncode == 0, result.stderr[-2000:]
        generator = load_generator(tmp_path / family / "export")
        assert generator.config.class_names == CLASSES
        assert generate_main(["--weights", str(tmp_path / family / "export"), "--class", "red", "--seeds", "0-1",
                              "--out", str(tmp_path / f"{family}.png")]) == 0
    plain = data_prep.prepare(labelled / "red", tmp_path / "plain", resolution=16, progress=False, workers=1)
    result = run_train(train_args("progan", plain, tmp_path / "refused", cond=True, kimg=0.06))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: dataset") and "no class labels" in result.stderr
    assert not (tmp_path / "refused" / "checkpoints").exists()


@pytest.mark.parametrize("xflip", [False, True])
@pytest.mark.parametrize("cond", [False, True])
def test_train_py_opens_the_data_with_its_xflip_and_cond(labelled, tmp_path, xflip, cond):
    """``train.py --xflip`` / ``--cond`` reach the dataset the trainer reads (``train.dataset_opener``): the
    mirrors double it (index N + i is image i flipped left-right) and labels come with each image."""
    import train
    from progan.training.options import TrainConfig

    out = data_prep.prepare(labelled, tmp_path / "data", resolution=8, labels="folders", progress=False, workers=1)
    config = TrainConfig(family="progan", preset="tiny", data=str(out), xflip=xflip, cond=cond)
    dataset = train.dataset_opener(config, None)(8)
    assert len(dataset) == (16 if xflip else 8)
    items = [dataset[i] for i in range(len(dataset))]
    assert all(isinstance(item, (tuple, list)) == cond for item in items)
    images = [item[0] if cond else item for item in items]
    if xflip:
        for i in range(8):
            assert torch.equal(images[8 + i], images[i].flip(-1))
            assert not cond or int(items[8 + i][1]) == int(items[i][1])


@pytest.mark.parametrize("cond", [False, True])
def test_train_py_asks_for_the_labelled_builtin_set_under_cond(labelled, tmp_path, monkeypatch, cond):
    """Without --data, train.py trains on the built-in OpenMoji set; ``--cond`` must ask for it *with* its
    emoji-group labels (``need_labels``: a cache prepared unlabelled is prepared again), or the run stops on
    "has no class labels". The rendering (``data_prep.builtin.builtin_openmoji``) is stood in for by a cache
    that holds the labelled set only when labels were asked for, like a cache written before labels existed."""
    import types

    import data_prep.builtin
    import train
    from progan.training.options import TrainConfig

    sets = {True: data_prep.prepare(labelled, tmp_path / "with", resolution=16, labels="folders", progress=False,
                                    workers=1),
            False: data_prep.prepare(labelled, tmp_path / "without", resolution=16, progress=False, workers=1)}
    asked = []

    def cached(resolution, *, need_labels=False, **_):
        asked.append((resolution, need_labels))
        return sets[need_labels]

    monkeypatch.setattr(data_prep.builtin, "builtin_openmoji", cached)
    config = TrainConfig(family="progan", preset="tiny", cond=cond)
    assert not config.data
    dataset = train.dataset_opener(config, types.SimpleNamespace(is_local_main_process=True))(16)
    assert asked == [(FAMILIES["progan"].presets["tiny"].resolution, cond)]
    item = dataset[0]
    assert isinstance(item, (tuple, list)) == cond
    if cond:
        assert dataset.class_names == CLASSES


@pytest.mark.parametrize("family", list(FAMILIES))
def test_train_py_under_cond_exports_the_class_names_and_refuses_unlabelled_data(labelled, tmp_path, capsys, family):
    """The fast twin of the slow end-to-end run: ``train.py --cond`` called in-process on a tiny preset.
    On the folders-labelled set (classes ``blue``, ``red``: the fixture's folder names, sorted) the run
    exits 0 and its export is a conditional generator with exactly those class names, so
    ``app.generate --class red`` draws from it; on the same images prepared without labels it exits 1
    with one ``error: dataset ... no class labels`` line and has written no checkpoint."""
    import train
    from app.generate import main as generate_main
    from families import load_generator

    def run(data, out):
        return train.main(["--family", family, "--preset", "tiny", "--data", str(data), "--out", str(out), "--cond",
                           "--kimg", "0.008", "--batch-size", "4", "--workers", "0", "--checkpoint-kimg", "1",
                           "--sample-kimg", "1", "--monitor-num", "0"])

    data = data_prep.prepare(labelled, tmp_path / "data", resolution=16, labels="folders", progress=False, workers=1)
    assert run(data, tmp_path / "run") == 0
    generator = load_generator(str(tmp_path / "run" / "export"), progress=False)
    assert generator.config.class_names == CLASSES == ("blue", "red")
    assert generate_main(["--weights", str(tmp_path / "run" / "export"), "--class", "red", "--seeds", "0-1",
                          "--out", str(tmp_path / "red.png")]) == 0
    plain = data_prep.prepare(labelled / "red", tmp_path / "plain", resolution=16, progress=False, workers=1)
    capsys.readouterr()
    assert run(plain, tmp_path / "refused") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: dataset") and "no class labels" in err[-1], err
    assert not (tmp_path / "refused" / "checkpoints").exists()


def test_a_class_can_be_named_by_its_index():
    """--class takes a name or an index (int or digit string) below the class count; anything else is
    the one-line error listing the names."""
    assert [class_index(CLASSES, c) for c in ("red", "blue", "1", "0", 1, 0)] == [1, 0, 1, 0, 1, 0]
    assert class_index(("7", "3"), "3") == 1                                   # a name wins over an index
    for bad in ("2", 2, "-1", -1, "1.0", ""):
        with pytest.raises(ValueError, match=r"unknown class .*; choose from 'blue', 'red'"):
            class_index(CLASSES, bad)



def test_a_digit_string_that_is_a_class_name_is_that_class_before_it_is_an_index():
    """Classes named by numbers sort as strings ('0', '1', '10', '2', ..., '9' for eleven): --class 2 is the
    class named '2' (index 3), not index 2 (named '10'), here and through ``bind_class``; an int stays an
    index. With names ('2', '0', 'cat'): '2' and '0' are names (0 and 1), '1' is not, so it is index 1."""
    from types import SimpleNamespace

    from torch import nn

    numbers = tuple(sorted(str(i) for i in range(11)))
    assert numbers[:4] == ("0", "1", "10", "2")
    by_name = {"0": 0, "1": 1, "10": 2, "2": 3, "5": 6, "9": 10}  # counted by hand in the sorted order
    assert {name: class_index(numbers, name) for name in by_name} == by_name
    assert [class_index(numbers, i) for i in (0, 2, 10)] == [0, 2, 10]   # ints are indices
    mixed = ("2", "0", "cat")
    assert [class_index(mixed, c) for c in ("2", "0", "1", "cat", 2, 0)] == [0, 1, 1, 2, 2, 0]
    for bad in ("3", 3, "-1", "dog"):
        with pytest.raises(ValueError, match="unknown class"):
            class_index(mixed, bad)

    class Stub(nn.Module):  # what bind_class reads of a conditional generator
        config = SimpleNamespace(class_names=numbers, num_classes=len(numbers))

    assert [bind_class(Stub(), c).label for c in ("2", "10", 2)] == [3, 2, 2]

def test_wrong_labels_and_a_class_index_out_of_range_are_one_line():
    """A conditional generator takes integer labels [N]; a bound class index lies in [0, num_classes)."""
    from progan.conditioning import ClassBound

    torch.manual_seed(0)
    config = dataclasses.replace(FAMILIES["progan"].presets["tiny"], class_names=("a", "b"))
    g = FAMILIES["progan"].generator_cls(config).eval()
    z = torch.randn(4, config.latent_dim)
    for labels, shown in ((torch.zeros(4), "torch.float32 (4,)"), (torch.zeros(4, 1, dtype=torch.long),
                                                                   "torch.int64 (4, 1)"),
                          (torch.zeros(3, dtype=torch.long), "torch.int64 (3,)")):
        with pytest.raises(ValueError, match=rf"^labels must be integer class indices of shape \[4\], "
                                             rf"got {shown.replace('(', '[(]').replace(')', '[)]')}$"):
            g(z, labels=labels)
    assert g(z, labels=torch.tensor([0, 1, 1, 0])).shape == (4, 3, 16, 16)
    for bad in (-1, 2):
        with pytest.raises(ValueError, match=rf"^class index must be in \[0, 2\), got {bad}$"):
            ClassBound(g, bad)
    torch.testing.assert_close(ClassBound(g, 1)(z), g(z, labels=torch.ones(4, dtype=torch.long)))


def test_a_conditional_trainer_draws_g_step_labels_in_the_datasets_class_proportions(labelled, tmp_path, monkeypatch):
    """``--cond`` on classes of unequal size (3 blue, 5 red as written by the fixture): every G step draws
    its fake labels from weights 3 : 5 (uniform weights would look the same on classes of equal size)."""
    from accelerate import Accelerator

    import progan.training.step
    from progan.training.options import TrainConfig
    from progan.training.trainer import Trainer

    data = data_prep.prepare(labelled, tmp_path / "data", resolution=16, labels="folders", progress=False, workers=1)
    weights, original = [], progan.training.step.sample_labels

    def spy(ctx, batch_size):
        weights.append(ctx.class_weights.tolist())
        return original(ctx, batch_size)

    monkeypatch.setattr(progan.training.step, "sample_labels", spy)
    config = TrainConfig(family="progan", preset="tiny", data=str(data), out=str(tmp_path / "run"), batch_size=4,
                         workers=0, monitor_num=0, cond=True, kimg=0.012, checkpoint_kimg=1.0, sample_kimg=1.0)
    Trainer(config, FAMILIES["progan"], lambda r: data_prep.open_dataset(str(data), r, with_labels=True),
            accelerator=Accelerator(cpu=True)).train()
    assert len(weights) >= 3 and all(w == [3.0, 5.0] for w in weights)


@pytest.mark.parametrize("family", ["progan", "stylegan_lite"])
def test_the_generators_class_embedding_reaches_the_network_at_unit_rms(family):
    """G reads ``[normalize(z), normalize(e(y))]`` (stylegan2-ada's mapping): whatever scale the embedding
    layer's weights and biases have (here x7 and nonzero), e(y) has RMS 1 over its features for every
    class, and it equals the raw one-hot layer ``W[:, y] / sqrt(K) + b`` divided by its own RMS."""
    generator, _ = _conditional(family)
    embed = generator.embed if family == "progan" else generator.mapping.embed
    with torch.no_grad():
        embed.linear.weight.mul_(7.0)
        embed.linear.bias.normal_(0.0, 3.0)
    labels = torch.arange(len(CLASSES))
    raw = embed.linear.weight.double()[:, labels].T / math.sqrt(len(CLASSES)) + embed.linear.bias.double()
    expected = raw / raw.square().mean(dim=1, keepdim=True).sqrt()
    e = embed(labels).double()
    torch.testing.assert_close(e.square().mean(dim=1), torch.ones(len(CLASSES), dtype=torch.float64))
    torch.testing.assert_close(e, expected, rtol=1e-5, atol=1e-6)


def test_cond_refuses_a_dataset_with_an_empty_class():
    """A class with no image cannot be drawn from (its G-step weight would be 0): refused in one line;
    the smallest class may hold a single image."""
    class Labelled:
        class_names = ("blue", "red")

        def __init__(self, counts):
            self.counts = counts

        def class_counts(self):
            return self.counts

    tiny = FAMILIES["progan"].presets["tiny"]
    with pytest.raises(ValueError, match=r"dataset class counts \[3, 0\] do not match its 2 classes"):
        conditional_model_config(tiny, Labelled([3, 0]))
    config, counts = conditional_model_config(tiny, Labelled([3, 1]))
    assert config.class_names == ("blue", "red") and counts == [3, 1]


@pytest.mark.parametrize("family", ["progan", "stylegan_lite"])
def test_bind_class_takes_index_zero_as_an_int(family):
    """``bind_class(g, 0)`` (an int, as the app passes a dropdown index) binds class 0, not 'no class'."""
    generator, _ = _conditional(family)
    z = torch.randn(3, generator.latent_dim)
    bound = bind_class(generator, 0)
    assert bound is not generator and bound.label == 0
    kwargs = {} if family == "progan" else {"noise_mode": "const"}
    torch.testing.assert_close(bound(z, **kwargs), generator(z, labels=torch.zeros(3, dtype=torch.long), **kwargs))


def test_conditional_progan_reads_normalized_z_next_to_normalized_embedding():
    """ProGAN's first dense layer sees ``[normalize(z), normalize(e(y))]`` (each half at unit RMS on its
    own), caught by a hook; z is drawn 3x too large, so normalizing the concatenation instead shows."""
    generator, _ = _conditional("progan")
    seen = []
    generator.blocks[0].dense.register_forward_hook(lambda module, args, out: seen.append(args[0].detach()))
    z, labels = torch.randn(4, generator.latent_dim, dtype=torch.float64) * 3.0, torch.tensor([1, 0, 0, 1])
    generator(z.float(), labels=labels)
    embed = generator.embed.linear
    e = embed.weight.double()[:, labels].T / math.sqrt(len(CLASSES)) + embed.bias.double()

    def unit_rms(v):
        return v / v.square().mean(dim=1, keepdim=True).sqrt()

    torch.testing.assert_close(seen[0].double(), torch.cat([unit_rms(z), unit_rms(e)], dim=1), rtol=1e-5, atol=1e-6)
