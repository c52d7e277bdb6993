"""save_pretrained / from_pretrained: bit-exact round trip and one clear error per bad file."""
import json

import pytest
import torch
from safetensors.torch import save_file

from families import FAMILIES, load_generator
from progan.hub.export import CONFIG_NAME, WEIGHTS_NAME, PretrainedError, read_metadata
from script_utils import load_script


def _images(generator, z):
    kw = {"noise_mode": "const"} if generator.config.family == "stylegan_lite" else {}
    return generator(z, **kw)


def test_save_load_is_bit_exact(family, tiny_generator, tmp_path):
    if family.name == "stylegan_lite":
        tiny_generator.w_avg.normal_()  # the tracked mean must survive the round trip
    path = tiny_generator.save_pretrained(tmp_path / "out", summary={"kimg": 12.5, "preset": "tiny"})
    assert path == tmp_path / "out" / WEIGHTS_NAME
    loaded = family.generator_cls.from_pretrained(tmp_path / "out")
    for (ka, va), (kb, vb) in zip(tiny_generator.state_dict().items(), loaded.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    z = torch.randn(3, family.presets["tiny"].latent_dim)
    torch.testing.assert_close(_images(loaded, z), _images(tiny_generator, z), rtol=0, atol=0)
    meta = read_metadata(path)
    assert meta["family"] == family.name and meta["summary"] == {"kimg": 12.5, "preset": "tiny"}
    on_disk = json.loads((tmp_path / "out" / CONFIG_NAME).read_text())
    assert on_disk["config"] == meta["config"] and on_disk["family"] == family.name
    assert on_disk["summary"] == {"kimg": 12.5, "preset": "tiny"}      # the model card reads it from here
    for name in (CONFIG_NAME, WEIGHTS_NAME):                            # shareable, whatever mkstemp made
        assert (tmp_path / "out" / name).stat().st_mode & 0o777 == 0o644, name
    # no stray temp files from the atomic write
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]
    # the family-agnostic loader picks the right class from the header
    assert type(load_generator(path)) is family.generator_cls


def test_w_avg_is_saved(tmp_path):
    family = FAMILIES["stylegan_lite"]
    g = family.generator_cls(family.presets["tiny"])
    g.w_avg.fill_(0.25)
    g.save_pretrained(tmp_path)
    assert torch.all(family.generator_cls.from_pretrained(tmp_path).w_avg == 0.25)


def test_wrong_family_is_refused(tmp_path):
    FAMILIES["progan"].generator_cls(FAMILIES["progan"].presets["tiny"]).save_pretrained(tmp_path)
    with pytest.raises(PretrainedError, match="holds a 'progan' generator, not 'stylegan_lite'"):
        FAMILIES["stylegan_lite"].generator_cls.from_pretrained(tmp_path)


def _rewrite(path, tensors_fn):
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    save_file(tensors_fn(tensors), str(path), metadata=meta)


@pytest.mark.parametrize("damage, message", [
    (lambda t: {k: v for k, v in t.items() if "to_rgb.0" not in k}, "missing keys"),
    (lambda t: {**t, "extra.weight": torch.zeros(2)}, "unexpected keys"),
    (lambda t: {k: (torch.zeros(v.numel() + 1) if k == next(iter(t)) else v) for k, v in t.items()}, "has shape"),
])
def test_mismatched_weights_are_refused(family, tiny_generator, tmp_path, damage, message):
    path = tiny_generator.save_pretrained(tmp_path)
    _rewrite(path, damage)
    with pytest.raises(PretrainedError, match=message) as info:
        family.generator_cls.from_pretrained(tmp_path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("count, shown", [(5, "['k0', 'k1', 'k2', 'k3', 'k4']"),
                                          (6, "['k0', 'k1', 'k2', 'k3', 'k4'] ...")])
def test_a_key_mismatch_lists_five_keys_and_marks_more_with_an_ellipsis(count, shown):
    """Exactly 5 missing (or unexpected) keys are all listed, without "..."; 6 list the first 5 and then "..."."""
    from torch import nn

    from progan.hub.export import load_state_strict

    keys = [f"k{i}" for i in range(count)]
    module = nn.Module()
    for key in keys:
        module.register_buffer(key, torch.zeros(1))
    with pytest.raises(PretrainedError) as info:
        load_state_strict(module, {}, source="m")
    assert str(info.value) == f"m: weights do not match the config: missing keys {shown}"
    with pytest.raises(PretrainedError) as info:
        load_state_strict(nn.Module(), {key: torch.zeros(1) for key in keys}, source="m")
    assert str(info.value) == f"m: weights do not match the config: unexpected keys {shown}"

def test_truncated_file_is_refused(family, tiny_generator, tmp_path):
    path = tiny_generator.save_pretrained(tmp_path)
    data = path.read_bytes()
    for cut in (len(data) // 2, 20, 4):
        path.write_bytes(data[:cut])
        with pytest.raises(PretrainedError, match="truncated or corrupt"):
            family.generator_cls.from_pretrained(path)


def test_non_safetensors_and_foreign_files_are_refused(tmp_path):
    cls = FAMILIES["progan"].generator_cls
    bad = tmp_path / "bad" / WEIGHTS_NAME
    bad.parent.mkdir()
    bad.write_bytes(b"PK\x03\x04 this is a zip, not safetensors" * 10)
    with pytest.raises(PretrainedError, match="truncated or corrupt"):
        cls.from_pretrained(bad)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))  # valid safetensors, not ours
    with pytest.raises(PretrainedError, match="not a gan-studio generator"):
        cls.from_pretrained(foreign)


def test_invalid_config_in_header_is_refused(tmp_path):
    g = FAMILIES["progan"].generator_cls(FAMILIES["progan"].presets["tiny"])
    path = g.save_pretrained(tmp_path)
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    meta["config"] = json.dumps({**json.loads(meta["config"]), "resolution": 17})
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(PretrainedError, match="invalid config: resolution must be a power of two"):
        FAMILIES["progan"].generator_cls.from_pretrained(path)


def _hand_written(path, generator, **version):
    """A weights file whose header is written here, field by field, not by save_pretrained."""
    from progan.config import config_to_dict

    header = {"format": "gan-studio", "family": generator.config.family, "summary": "{}",
              "config": json.dumps(config_to_dict(generator.config)), **version}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in generator.state_dict().items()}, str(path), metadata=header)
    return path


@pytest.mark.parametrize("version, named", [({"format_version": "2"}, "format_version '2'"),  # a future format
                                            ({}, "format_version None")])               # none at all
def test_unknown_format_version_is_refused(family, tiny_generator, tmp_path, version, named):
    good = _hand_written(tmp_path / "v1" / WEIGHTS_NAME, tiny_generator, format_version="1")
    loaded = load_generator(good)  # the hand-written header is otherwise valid: version 1 loads, bit for bit
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), tiny_generator.state_dict().values()))
    bad = _hand_written(tmp_path / "other" / WEIGHTS_NAME, tiny_generator, **version)
    for load in (load_generator, family.generator_cls.from_pretrained):   # the loaders a user calls
        with pytest.raises(PretrainedError, match="unsupported " + named) as info:
            load(bad.parent)
        assert "\n" not in str(info.value) and str(bad) in str(info.value)


def test_truncate_to_trained_resolution_matches_the_stage_output(family, tiny_generator):
    from progan.hub.export import truncate_to_resolution

    small = truncate_to_resolution(tiny_generator, 8)
    assert small.config.resolution == 8
    z = torch.randn(2, family.presets["tiny"].latent_dim)
    kw = {"noise_mode": "const"} if family.name == "stylegan_lite" else {}
    torch.testing.assert_close(small(z, **kw), tiny_generator(z, stage=1, **kw), rtol=0, atol=0)



def _export_checkpoint_script(tmp_path, monkeypatch, family, raw, ema, images_seen: int, step: int,
                              *options: str, data: str = "") -> None:
    """Write a checkpoint holding ``raw`` and ``ema`` (as train.py saves one), then run
    scripts/export_checkpoint.py on it into ``tmp_path/out`` with ``options``; it must exit 0."""
    from progan.training.options import TrainConfig

    checkpoint = tmp_path / f"ckpt-{images_seen / 1000:010.3f}"
    checkpoint.mkdir()
    train = TrainConfig(family=family.name, preset="tiny", data=data, out=str(tmp_path / "run"))
    torch.save({"generator": raw.state_dict(), "generator_ema": ema.state_dict(), "family": family.name,
                "train_config": train.to_json(), "images_seen": images_seen, "step": step}, checkpoint / "state.pt")
    script = load_script("export_checkpoint")
    monkeypatch.setattr("sys.argv", ["export_checkpoint.py", str(checkpoint), "--out", str(tmp_path / "out"), *options])
    assert script.main() == 0


def test_export_checkpoint_script_exports_the_ema_generator(family, tmp_path, monkeypatch, capsys):
    """scripts/export_checkpoint.py exports a checkpoint's EMA generator (its docstring, the README, the
    trainer's own export), not the raw training generator. A checkpoint whose two generators are
    different random networks: the exported weights and images are generator_ema's, bit for bit; without
    --resolution the summary records the full resolution."""
    config = family.presets["tiny"]
    torch.manual_seed(1)
    raw = family.generator_cls(config).eval()
    torch.manual_seed(2)
    ema = family.generator_cls(config).eval()
    if family.name == "stylegan_lite":
        ema.w_avg.normal_()  # the tracked mean travels with the EMA weights
    _export_checkpoint_script(tmp_path, monkeypatch, family, raw, ema, 1234, 309)
    exported = load_generator(tmp_path / "out").eval()
    differs = False
    for (key, value), (key_raw, value_raw), (key_ema, value_ema) in zip(
            exported.state_dict().items(), raw.state_dict().items(), ema.state_dict().items()):
        assert key == key_raw == key_ema and torch.equal(value, value_ema), key
        differs = differs or not torch.equal(value, value_raw)
    assert differs
    z = torch.randn(3, config.latent_dim)
    assert torch.equal(_images(exported, z), _images(ema, z)) and not torch.allclose(_images(exported, z), _images(raw, z))
    summary = read_metadata(tmp_path / "out" / WEIGHTS_NAME)["summary"]
    assert summary["kimg"] == 1.234 and summary["steps"] == 309 and summary["images_seen"] == 1234
    # without --resolution the export is the full 16 px generator, and its summary says so (not 0)
    assert config.resolution == exported.config.resolution == summary["exported_resolution"] == 16

def test_export_checkpoint_script_exports_at_the_resolution_and_with_the_note_it_is_given(family, tmp_path,
                                                                                         monkeypatch, capsys):
    """``--resolution 8`` exports the EMA generator cut at 8 px: its images are the full EMA generator's
    stage-1 output (the network called directly, not truncate_to_resolution), the config and summary say
    8 px; ``--note`` is stored in the summary as given."""
    config = family.presets["tiny"]
    torch.manual_seed(3)
    ema = family.generator_cls(config).eval()
    _export_checkpoint_script(tmp_path, monkeypatch, family, ema, ema, 500, 10,
                              "--resolution", "8", "--note", "one H200, campaign 3")
    exported = load_generator(tmp_path / "out").eval()
    assert exported.config.resolution == 8
    z = torch.randn(3, config.latent_dim)
    kw = {"noise_mode": "const"} if family.name == "stylegan_lite" else {}
    with torch.no_grad():
        stage_one = ema(z, stage=1, **kw)                                  # [3, C, 8, 8]
    assert stage_one.shape[-1] == 8 and torch.equal(_images(exported, z), stage_one)
    summary = read_metadata(tmp_path / "out" / WEIGHTS_NAME)["summary"]
    assert summary["exported_resolution"] == 8 and summary["note"] == "one H200, campaign 3"
    assert json.loads((tmp_path / "out" / CONFIG_NAME).read_text())["config"]["resolution"] == 8


def _blurs(generator):
    from progan.layers import Blur
    return [m for m in generator.modules() if isinstance(m, Blur)]


def test_blur_padding_round_trips_and_changes_the_images(tmp_path):
    import dataclasses

    family = FAMILIES["stylegan_lite"]
    torch.manual_seed(0)
    zero = family.generator_cls(dataclasses.replace(family.presets["tiny"], blur_padding="zero")).eval()
    path = zero.save_pretrained(tmp_path / "zero")
    assert read_metadata(path)["config"]["blur_padding"] == "zero"
    assert json.loads((tmp_path / "zero" / CONFIG_NAME).read_text())["config"]["blur_padding"] == "zero"
    loaded = load_generator(path)
    assert loaded.config.blur_padding == "zero"
    assert len(_blurs(loaded)) == 2 and {b.padding for b in _blurs(loaded)} == {"zero"}  # 8 and 16 px layers
    z = torch.randn(3, family.presets["tiny"].latent_dim)
    torch.testing.assert_close(_images(loaded, z), _images(zero, z), rtol=0, atol=0)
    # the same weights with the default padding draw other border pixels: the field is not decorative
    replicate = family.generator_cls(family.presets["tiny"]).eval()
    replicate.load_state_dict(zero.state_dict())
    assert replicate.config.blur_padding == "replicate"
    assert not torch.equal(_images(replicate, z), _images(zero, z))


def test_config_without_blur_padding_loads_as_replicate(tmp_path):
    """Exports written before the field existed (the bundled weights among them) keep their blur."""
    family = FAMILIES["stylegan_lite"]
    torch.manual_seed(0)
    g = family.generator_cls(family.presets["tiny"]).eval()
    path = g.save_pretrained(tmp_path)
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    old = json.loads(meta["config"])
    del old["blur_padding"]
    save_file(tensors, str(path), metadata={**meta, "config": json.dumps(old)})
    loaded = load_generator(path)
    assert loaded.config.blur_padding == "replicate" and {b.padding for b in _blurs(loaded)} == {"replicate"}
    z = torch.randn(3, family.presets["tiny"].latent_dim)
    torch.testing.assert_close(_images(loaded, z), _images(g, z), rtol=0, atol=0)
    with pytest.raises(ValueError, match="blur_padding must be one of"):
        family.config_cls(**{**old, "blur_padding": "reflect"})


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failed_export_write_leaves_the_old_files_and_no_temp_file(family, tiny_generator, tmp_path, monkeypatch,
                                                                     failing):
    """A write that fails (disk full at fsync, a rename refused) must leave the previous export intact and
    no ``.model.safetensors.*.tmp`` behind: the directory lists exactly what it did before."""
    import progan.hub.export as export

    out = tmp_path / "out"
    tiny_generator.save_pretrained(out, summary={"kimg": 1.0})
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def refuse(*_args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(export.os, failing, refuse)
    with torch.no_grad():
        next(iter(tiny_generator.parameters())).add_(1.0)  # other weights: a complete write would differ
    with pytest.raises(OSError, match="No space left"):
        tiny_generator.save_pretrained(out, summary={"kimg": 2.0})
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_ctrl_c_during_an_export_write_leaves_the_old_files_and_no_temp_file(family, tiny_generator, tmp_path,
                                                                            monkeypatch):
    """Ctrl-C (KeyboardInterrupt, not an Exception) while the new weights are being flushed: the interrupt
    goes on up, the previous export is intact and no hidden ``.tmp`` file is left next to it."""
    import progan.hub.export as export

    out = tmp_path / "out"
    tiny_generator.save_pretrained(out, summary={"kimg": 1.0})
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def ctrl_c(*_args):
        raise KeyboardInterrupt
    monkeypatch.setattr(export.os, "fsync", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        tiny_generator.save_pretrained(out, summary={"kimg": 2.0})
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_missing_file_and_damaged_header_are_one_line_errors(tmp_path):
    cls = FAMILIES["progan"].generator_cls
    with pytest.raises(PretrainedError, match=r"empty/model\.safetensors: no such weights file"):
        (tmp_path / "empty").mkdir() or read_metadata(tmp_path / "empty")
    g = cls(FAMILIES["progan"].presets["tiny"])
    good = g.save_pretrained(tmp_path / "good")
    from safetensors import safe_open
    with safe_open(str(good), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    for name, header in (("config", {**meta, "config": "{"}), ("summary", {**meta, "summary": "[1,"}),
                         ("family", {k: v for k, v in meta.items() if k != "family"})):
        path = tmp_path / f"{name}.safetensors"
        save_file(tensors, str(path), metadata=header)
        with pytest.raises(PretrainedError, match=rf"{name}\.safetensors: damaged header"):
            cls.from_pretrained(path)


def test_an_unknown_family_by_name_or_in_a_file_is_one_line(tmp_path):
    """families.py picks from the fixed mapping: an unknown name lists the known ones, and a weights file
    naming another family is a PretrainedError naming the file and the family, not a KeyError."""
    import re

    from safetensors import safe_open

    from families import get_family

    with pytest.raises(ValueError, match=r"^unknown model family 'biggan'; choose from progan, stylegan_lite$"):
        get_family("biggan")
    assert get_family("stylegan_lite") is FAMILIES["stylegan_lite"]
    torch.manual_seed(0)
    FAMILIES["progan"].generator_cls(FAMILIES["progan"].presets["tiny"]).save_pretrained(tmp_path / "g")
    with safe_open(str(tmp_path / "g" / "model.safetensors"), framework="pt") as f:
        header, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    foreign = tmp_path / "other" / "model.safetensors"
    foreign.parent.mkdir()
    save_file(tensors, str(foreign), metadata={**header, "family": "biggan"})
    with pytest.raises(PretrainedError, match=rf"^{re.escape(str(foreign))}: unknown model family 'biggan'$"):
        load_generator(foreign)


def test_export_checkpoint_summary_names_the_runs_own_data(family, tmp_path, monkeypatch, capsys):
    """A run trained on its own dataset records that dataset in the exported summary ("openmoji" is only
    the name of the built-in set that an empty --data means), with the preset and family it trained."""
    torch.manual_seed(4)
    ema = family.generator_cls(family.presets["tiny"]).eval()
    _export_checkpoint_script(tmp_path, monkeypatch, family, ema, ema, 2000, 20, data="datasets/cats-32")
    summary = read_metadata(tmp_path / "out" / WEIGHTS_NAME)["summary"]
    assert summary["data"] == "datasets/cats-32"
    assert summary["preset"] == "tiny" and summary["family"] == family.name


def test_export_checkpoint_help_keeps_its_usage_example_on_its_own_line(monkeypatch, capsys):
    """--help prints the module docstring as written (RawDescriptionHelpFormatter): the example command
    stays one indented line instead of being reflowed into the paragraph around it."""
    script = load_script("export_checkpoint")
    monkeypatch.setattr("sys.argv", ["export_checkpoint.py", "--help"])
    with pytest.raises(SystemExit) as exited:
        script.main()
    (example,) = [line for line in script.__doc__.splitlines() if line.startswith("    python ")]
    assert exited.value.code == 0 and example in capsys.readouterr().out.splitlines()
