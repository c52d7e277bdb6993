"""train.py's promise for a run that cannot go on: one ``error:`` line on stderr, exit status 1, no
traceback. Checked for the missing files a user gives (a --data path, an --init-from export that does not
exist) through the real Trainer, and for each other exception kind train.py lists, raised by a stand-in
Trainer. Split from tests/test_cli_option_paths.py (generation options checked against pixels)."""
from __future__ import annotations

import pytest

import train
from train_utils import make_image_folder


def _run(tmp_path, *flags: str) -> int:
    return train.main(["--family", "progan", "--preset", "tiny", "--out", str(tmp_path / "run"), "--workers", "0",
                       "--kimg", "0.004", *flags])


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_a_missing_data_path_is_one_error_line_and_exit_1(tmp_path, capsys, restore_signals):
    missing = tmp_path / "no-such-folder"
    assert _run(tmp_path, "--data", str(missing)) == 1
    assert str(missing) in _one_error_line(capsys)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_missing_init_from_export_is_one_error_line_and_exit_1(tmp_path, capsys, restore_signals):
    data = make_image_folder(tmp_path / "data", count=8)
    missing = tmp_path / "no-such-export"
    assert _run(tmp_path, "--data", str(data), "--init-from", str(missing)) == 1
    assert str(missing) in _one_error_line(capsys)
    assert not (tmp_path / "run" / "checkpoints").exists()


def _kinds():
    from progan.metrics.inception import FeatureNetworkError
    from progan.training.compiled import CompileError
    from progan.training.distributed import DistributedError
    from progan.training.health import TrainingDiverged

    return [TrainingDiverged, DistributedError, FeatureNetworkError, CompileError, ValueError, FileNotFoundError,
            TimeoutError]


@pytest.mark.parametrize("kind", _kinds(), ids=lambda k: k.__name__)
def test_each_exception_kind_the_trainer_raises_is_one_error_line_and_exit_1(kind, tmp_path, capsys, monkeypatch,
                                                                             restore_signals):
    from progan.training import trainer as trainer_module

    message = f"the {kind.__name__} message"

    class Failing:
        def __init__(self, *args, **kwargs):
            pass

        def train(self):
            raise kind(message)

    monkeypatch.setattr(trainer_module, "Trainer", Failing)
    data = make_image_folder(tmp_path / "data", count=8)
    assert _run(tmp_path, "--data", str(data)) == 1
    assert _one_error_line(capsys) == f"error: {message}"
