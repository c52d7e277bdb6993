"""Fine-tuning (--init-from) and Freeze-D (Mo et al. 2020, section 3): exact loading, frozen blocks, refusals."""
from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
import torch
from accelerate import Accelerator

import data_prep
import progan.training.iteration as iteration_module
import progan.training.resume as resume_module
from families import FAMILIES
from progan.hub.export import PretrainedError
from progan.training.options import TrainConfig
from progan.training.trainer import Trainer
from train_utils import load_state, make_image_folder

TINY = dict(preset="tiny", batch_size=4, fade_kimg=0.02, stable_kimg=0.02, checkpoint_kimg=1.0, sample_kimg=1.0,
            workers=0, log_every=1)


def _trainer(tmp_path, name: str, family: str = "stylegan_lite", **options) -> Trainer:
    data = tmp_path / "images"
    if not data.exists():
        make_image_folder(data)
    config = TrainConfig(family=family, data=str(data), out=str(tmp_path / name), **{"kimg": 0.02, **TINY, **options})
    return Trainer(config, FAMILIES[family], lambda r: data_prep.open_dataset(str(data), r),
                   accelerator=Accelerator(cpu=True))


def _digest(*states: dict) -> str:
    """The trainer's weights digest, computed here from plain state dicts (G, D, G_ema order)."""
    digest = hashlib.sha256()
    for state in states:
        for tensor in state.values():
            digest.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _export(tmp_path, family: str = "stylegan_lite", seed: int = 3, **changes):
    torch.manual_seed(seed)
    config = dataclasses.replace(FAMILIES[family].preset("tiny"), **changes)
    generator = FAMILIES[family].generator_cls(config)
    with torch.no_grad():
        for p in generator.parameters():
            p.add_(torch.randn_like(p))  # far from any fresh initialization
    path = tmp_path / f"export-{family}-{seed}-{len(changes)}"
    generator.save_pretrained(path)
    return path, {k: v.clone() for k, v in generator.state_dict().items()}


def test_fine_tune_from_an_export_loads_it_exactly_before_the_first_step(tmp_path, monkeypatch, capsys):
    source, weights = _export(tmp_path)
    trainer = _trainer(tmp_path, "ft", init_from=str(source), kimg=0.012)
    fresh_d = {k: v.clone() for k, v in trainer.discriminator.state_dict().items()}
    expected = _digest(weights, fresh_d, weights)          # G and G_ema from the export, D as initialized
    seen = []
    real_step = iteration_module.discriminator_step

    def checked_step(ctx, reals):
        if not seen:  # the weights at the very first step of train()
            seen.append(trainer.weights_digest())
            seen.append((ctx.stage, ctx.alpha))
        return real_step(ctx, reals)

    monkeypatch.setattr(iteration_module, "discriminator_step", checked_step)
    export = trainer.train()
    assert seen[0] == expected == trainer.init_digest
    assert seen[1] == (2, 1.0)                              # tiny = 16 px: the final stage, no fade-in
    log = capsys.readouterr().out
    assert "D starts fresh" in log and expected in log
    records = [json.loads(line) for line in (tmp_path / "ft" / "log.jsonl").read_text().splitlines()]
    assert records and all(r["resolution"] == 16 and r["alpha"] == 1.0 for r in records)
    steps = [r for r in records if "g_loss" in r]           # (the monitor's records come at sample steps)
    assert steps[0]["kimg"] == 0.004                        # kimg starts at 0
    summary = json.loads((export / "config.json").read_text())["summary"]
    assert summary["init_from"] == str(source) and summary["freeze_d"] == 0
    assert json.loads((tmp_path / "ft" / "train_config.json").read_text())["init_from"] == str(source)


def test_fine_tune_from_a_checkpoint_loads_g_d_and_g_ema(tmp_path):
    first = _trainer(tmp_path, "source", family="progan", kimg=0.008)
    first.train()
    state = load_state(sorted((tmp_path / "source" / "checkpoints").iterdir())[-1])
    tuned = _trainer(tmp_path, "ft", family="progan", init_from=str(tmp_path / "source"), seed=5)
    assert tuned.weights_digest() != _digest(state["generator"], state["discriminator"], state["generator_ema"])
    tuned.initialize_from(str(tmp_path / "source"))
    assert tuned.init_digest == _digest(state["generator"], state["discriminator"], state["generator_ema"])
    assert tuned.images_seen == 0 and tuned.step == 0 and not tuned.opt_d.state   # fresh optimizers


def test_freeze_d_keeps_the_first_blocks_from_the_image_side_bit_identical(tmp_path):
    source, _ = _export(tmp_path, family="progan")
    steps, frozen_blocks = 4, 2
    trainer = _trainer(tmp_path, "ft", family="progan", init_from=str(source), freeze_d=frozen_blocks,
                       kimg=steps * 4 / 1000)
    trainer.initialize_from(str(source))
    before = {k: v.clone() for k, v in trainer.discriminator.state_dict().items()}
    trainer.train()
    last = trainer.model_config.num_stages - 1              # 2 for tiny (4, 8, 16 px)
    frozen = {f"from_rgb.{s}" for s in range(last, last - frozen_blocks, -1)} | {
        f"blocks.{s}" for s in range(last, last - frozen_blocks, -1)}
    assert set(trainer.frozen_d) == frozen
    optimized = {id(p) for group in trainer.opt_d.param_groups for p in group["params"]}
    after = trainer.discriminator.state_dict()
    trained = []
    for name, param in trainer.discriminator.named_parameters():
        module = ".".join(name.split(".")[:2])             # "blocks.2", "from_rgb.1"
        if module in frozen:
            assert torch.equal(after[name], before[name]), name
            # still frozen after G steps (which toggle D's requires_grad) and never in the optimizer
            assert not param.requires_grad and id(param) not in optimized, name
        elif module != "from_rgb.0" and module != "from_rgb.1":  # lower fromRGBs are unused at the final stage
            assert not torch.equal(after[name], before[name]), name
            trained.append(name)
    assert any(n.startswith("blocks.0") for n in trained)   # the output block always trains


def test_a_mismatched_init_from_is_refused_naming_the_first_tensor(tmp_path, capsys):
    run = _trainer(tmp_path, "ft", family="progan", init_from="x")
    own = run.generator.state_dict()
    cases = {"width": {"channel_max": 8}, "resolution": {"resolution": 8}, "channels": {"image_channels": 1}}
    for what, changes in cases.items():
        source, weights = _export(tmp_path, family="progan", **changes)
        first = next(k for k in own if k not in weights or weights[k].shape != own[k].shape) if any(
            k not in weights or weights[k].shape != own[k].shape for k in own) else next(
            k for k in weights if k not in own)
        with pytest.raises(PretrainedError, match=rf"generator tensor {first} ") as info:
            run.initialize_from(str(source))
        assert "\n" not in str(info.value), what
    source, _ = _export(tmp_path, family="stylegan_lite")
    with pytest.raises(PretrainedError, match=r"the source is a stylegan_lite model, this run trains progan; "
                                              r"generator tensor \S+ "):
        run.initialize_from(str(source))
    # the CLI: one error line, exit status 1, nothing trained
    import train

    width, _ = _export(tmp_path, family="progan", seed=9, channel_max=8)
    code = train.main(["--family", "progan", "--preset", "tiny", "--data", str(tmp_path / "images"),
                       "--out", str(tmp_path / "cli"), "--init-from", str(width), "--workers", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("error: --init-from") and "tensor" in err[0]
    assert not (tmp_path / "cli" / "checkpoints").exists()


def test_a_resumed_fine_tune_does_not_reload_the_source(tmp_path, monkeypatch):
    source, _ = _export(tmp_path, family="progan")
    _trainer(tmp_path, "ft", family="progan", init_from=str(source), kimg=0.008, checkpoint_kimg=0.004).train()
    monkeypatch.setattr(resume_module, "read_init_source",
                        lambda *_: pytest.fail("--init-from applied again on resume"))
    again = _trainer(tmp_path, "ft", family="progan", init_from=str(source), kimg=0.012, checkpoint_kimg=0.004)
    again.train()
    assert again.images_seen == 12 and again.init_digest is None


def test_fine_tuning_options_are_validated():
    with pytest.raises(ValueError, match="--freeze-d needs --init-from"):
        TrainConfig(freeze_d=1)
    with pytest.raises(ValueError, match="--init-regrow needs --init-from"):
        TrainConfig(init_regrow=True)
    with pytest.raises(ValueError, match="--freeze-d must be >= 0"):
        TrainConfig(init_from="x", freeze_d=-1)


def test_freeze_d_beyond_the_output_block_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"--freeze-d must be between 0 and 2"):
        _trainer(tmp_path, "ft", family="progan", init_from="x", freeze_d=3)


def test_init_from_a_ckpt_directory_itself_and_a_run_without_checkpoints(tmp_path):
    """README: --init-from takes a ``ckpt-*`` directory itself (that checkpoint, G, G_ema and D), and a run
    directory whose checkpoints/ holds no complete checkpoint is one line naming that folder."""
    from progan.training.checkpoint import save_checkpoint
    from progan.training.finetune import read_init_source

    torch.manual_seed(0)
    tensors = {name: {"w": torch.randn(3, 2)} for name in ("generator", "generator_ema", "discriminator")}
    run = tmp_path / "run"
    paths = [save_checkpoint(run / "checkpoints", images_seen=n, rank_state={}, rank=0, barrier=lambda: None, keep=5,
                             state={"family": "progan", **({k: {"w": v["w"] + n} for k, v in tensors.items()})})
             for n in (4, 8)]
    older = paths[0]                                    # not the latest: the directory given is the one read
    source = read_init_source(older)
    assert source.kind == "checkpoint" and source.path == str(older) and source.family == "progan"
    for name in tensors:
        assert torch.equal(getattr(source, name)["w"], tensors[name]["w"] + 4), name
    assert torch.equal(read_init_source(run).generator_ema["w"], tensors["generator_ema"]["w"] + 8)  # run: latest

    empty = tmp_path / "empty-run"
    (empty / "checkpoints" / ".tmp-ckpt-000000.004").mkdir(parents=True)   # a save that never completed
    with pytest.raises(FileNotFoundError) as info:
        read_init_source(empty)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"--init-from {empty}:")
    assert f"no complete checkpoint under {empty / 'checkpoints'}" in message


def test_init_weights_extra_tensor_config_warning_and_dataset_channels(tmp_path):
    """An extra source tensor is refused by name (nothing copied); a source whose config differs only where
    shapes agree loads with a warning naming those fields; a dataset sets 1/3/4 image channels, else refuses."""
    from types import SimpleNamespace

    from progan.training.finetune import InitSource, load_init_weights, model_config_for_dataset

    family = FAMILIES["progan"]
    config = family.preset("tiny")
    torch.manual_seed(0)
    g, g_ema, d = (family.generator_cls(config), family.generator_cls(config), family.discriminator_cls(config))
    before = {k: v.clone() for k, v in g.state_dict().items()}
    source_weights = {k: torch.randn_like(v) for k, v in before.items()}
    extra = {**source_weights, "zz.weight": torch.zeros(2, 3)}
    source = InitSource("src", "src", "export", "progan", extra, extra, None, {})
    with pytest.raises(PretrainedError, match=r"the source's generator tensor zz\.weight \(2, 3\) has no place in "
                                              r"this run") as info:
        load_init_weights(source, family="progan", generator=g, generator_ema=g_ema, discriminator=d)
    assert "\n" not in str(info.value)
    assert all(torch.equal(g.state_dict()[k], v) for k, v in before.items())          # nothing copied

    own = json.loads(json.dumps(dataclasses.asdict(config)))
    source = InitSource("src", "src", "export", "progan", source_weights, source_weights, None,
                        {**own, "use_pixel_norm": not config.use_pixel_norm, "mbstd_group_size": 2, "unknown": 1})
    notes = load_init_weights(source, family="progan", generator=g, generator_ema=g_ema, discriminator=d)
    assert notes[-1].startswith("warning: the source's model config differs in mbstd_group_size, use_pixel_norm ")
    assert all(torch.equal(g_ema.state_dict()[k], v) for k, v in source_weights.items())
    same = InitSource("src", "src", "export", "progan", source_weights, source_weights, None, own)
    assert not any("warning" in n for n in load_init_weights(same, family="progan", generator=g, generator_ema=g_ema,
                                                             discriminator=d))

    for channels, shape_only in ((1, False), (4, False), (3, False), (1, True), (4, True)):
        image = torch.zeros(channels, 16, 16, dtype=torch.uint8)
        dataset = [image] if shape_only else SimpleNamespace(channels=channels)   # a list has no .channels
        got, opened = model_config_for_dataset(config, lambda r, ds=dataset: ds)
        assert got.image_channels == channels and opened is dataset
        assert dataclasses.replace(got, image_channels=3) == config                    # nothing else changes
    for channels in (2, 5):
        with pytest.raises(ValueError, match=rf"^the dataset has {channels} image channels; gan-studio trains 1, 3 "
                                             r"or 4$"):
            model_config_for_dataset(config, lambda r: SimpleNamespace(channels=channels))
    assert model_config_for_dataset(config, lambda r: None) == (config, None)


@pytest.mark.parametrize("regrow", [False, True])
def test_init_regrow_grows_from_4x4_again_and_without_it_the_final_stage_trains(tmp_path, monkeypatch, regrow):
    """--init-regrow: the fine-tune restarts progressive growing at 4 px (stage 0) and fades in each
    higher resolution; without it every step is the final stage (tiny: 16 px) at alpha 1."""
    source, _ = _export(tmp_path)
    trainer = _trainer(tmp_path, f"ft-{regrow}", init_from=str(source), init_regrow=regrow, kimg=0.1)
    stages = []
    real_step = iteration_module.discriminator_step

    def recorded_step(ctx, reals):
        stages.append((ctx.stage, ctx.alpha, reals[0].shape[-1]))  # reals: the micro-batches
        return real_step(ctx, reals)

    monkeypatch.setattr(iteration_module, "discriminator_step", recorded_step)
    trainer.train()
    if regrow:
        # TINY: 0.02 kimg fade + 0.02 stable per resolution, batch 4: 4 px for 5 steps, then 8 px fading in
        assert stages[0] == (0, 1.0, 4) and {s[2] for s in stages} == {4, 8, 16}
        assert any(0 < alpha < 1 for stage, alpha, _ in stages if stage > 0)
    else:
        assert {(stage, alpha, size) for stage, alpha, size in stages} == {(2, 1.0, 16)}


def test_the_config_warning_names_the_differing_fields_sorted():
    """The warning lists the fields that differ in alphabetical order, whatever order the source's config
    has (here reversed: a JSON file written by another tool), and only those that differ."""
    from progan.training.finetune import InitSource, load_init_weights

    family = FAMILIES["progan"]
    config = family.preset("tiny")
    g, g_ema, d = (family.generator_cls(config), family.generator_cls(config), family.discriminator_cls(config))
    own = json.loads(json.dumps(dataclasses.asdict(config)))
    changed = {**own, "use_pixel_norm": not config.use_pixel_norm, "mbstd_num_features": 2, "channel_base": 64}
    weights = g.state_dict()
    source = InitSource("src", "src", "export", "progan", weights, weights, None, dict(reversed(changed.items())))
    notes = load_init_weights(source, family="progan", generator=g, generator_ema=g_ema, discriminator=d)
    assert notes[-1].startswith("warning: the source's model config differs in channel_base, mbstd_num_features, "
                                "use_pixel_norm (")
