"""--mixed-precision bf16 on a CPU that would emulate it: train.py warns before the first step.

Without AVX512-BF16 or AMX, PyTorch emulates bf16 on the CPU: measured on a 2-core AMD EPYC (AVX2),
a conv's forward + backward ran 22x slower than in fp32, so a run that was 1.6x faster on an Intel
Xeon with AVX512-BF16 crawls on the next machine unless it says so."""
from __future__ import annotations

import itertools

import accelerate
import pytest

import train


@pytest.mark.parametrize("precision,cuda,native", list(itertools.product(("no", "bf16", "fp16"), (False, True),
                                                                          (False, True))))
def test_the_warning_is_given_for_bf16_on_a_cpu_without_native_bf16_only(precision, cuda, native):
    message = train.emulated_bf16_warning(precision, cuda, native)
    expected = precision == "bf16" and not cuda and not native
    assert (message is not None) == expected
    if expected:
        assert message.startswith("warning:") and "--mixed-precision no" in message and "\n" not in message


class _Stop(Exception):
    pass


def _stop(*args, **kwargs):
    raise _Stop


@pytest.mark.parametrize("native", [False, True])
def test_train_prints_it_before_building_anything(native, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(train, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr(accelerate, "Accelerator", _stop)  # stop where training would start
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(_Stop):
        train.main(["--family", "progan", "--preset", "tiny", "--out", str(tmp_path / "run"),
                    "--mixed-precision", "bf16"])
    err = capsys.readouterr().err
    assert ("without native bf16" in err) == (not native)


def test_the_cpu_check_reads_the_cpus_bf16_flags(monkeypatch):
    import torch

    for avx512_bf16, amx in itertools.product((False, True), repeat=2):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        assert train.cpu_has_native_bf16() == (avx512_bf16 or amx)


@pytest.mark.parametrize("precision", ["bf16", "no"])
def test_train_runs_the_trainer_with_the_accelerator_it_configured(precision, monkeypatch, tmp_path):
    """The Trainer gets the Accelerator train.py built (CPU, --dist-timeout on its process group), at the
    --mixed-precision asked for: bf16 autocasts, "no" does not."""
    from datetime import timedelta

    import torch

    import progan.training.trainer

    built, given = [], {}

    class Recording(accelerate.Accelerator):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self)

    class Trainer:
        def __init__(self, config, family, open_dataset, *, accelerator=None, **kwargs):
            given["accelerator"] = accelerator

        def train(self):
            return "recorded"

    monkeypatch.setattr(accelerate, "Accelerator", Recording)
    monkeypatch.setattr(progan.training.trainer, "Trainer", Trainer)
    monkeypatch.setattr(train, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(train, "dataset_opener", lambda config, accelerator: None)   # no data needed
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    accelerate.state.AcceleratorState._reset_state(True)              # a fresh precision for this run
    try:
        assert train.main(["--family", "progan", "--preset", "tiny", "--out", str(tmp_path / "run"),
                           "--mixed-precision", precision, "--dist-timeout", "77"]) == 0
        (acc,) = built
        assert given["accelerator"] is acc
        assert acc.mixed_precision == precision and acc.device == torch.device("cpu")
        assert acc.init_handler.timeout == timedelta(seconds=77)
        with acc.autocast():
            assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == (torch.bfloat16 if precision == "bf16"
                                                                 else torch.float32)
    finally:
        accelerate.state.AcceleratorState._reset_state(True)
