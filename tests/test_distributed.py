"""The real `accelerate launch` with 2 CPU processes: checkpoint, identical ranks, resume, export; and (fast)
the per-rank latent stream, built as each rank without launching processes."""
import socket
import subprocess
import sys

import pytest
import torch

from progan.training.checkpoint import list_checkpoints
from progan.hub.export import read_pretrained

from metric_utils import needs_inception
from train_utils import ROOT, make_image_folder, run_train, train_args, train_env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(args: list[str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(_free_port()), str(ROOT / "train.py"), *args]
    return subprocess.run(command, cwd=ROOT, env=train_env(), capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("family_name", ["stylegan_lite"])
def test_accelerate_launch_two_cpu_processes(tmp_path, family_name):
    data = make_image_folder(tmp_path / "data")
    out = tmp_path / "run"
    first = _launch(train_args(family_name, data, out, kimg=0.096, **{"checkpoint-kimg": 0.048}))
    assert first.returncode == 0, first.stderr[-4000:]
    ckpts = list_checkpoints(out / "checkpoints")
    # 2 processes x batch 4 = 8 images per step: checkpoints land on multiples of 8 images
    assert [p.name for p in ckpts] == ["ckpt-000000.048", "ckpt-000000.096"]
    for ckpt in ckpts:
        ranks = [torch.load(ckpt / f"rng-rank{r}.pt", weights_only=True) for r in (0, 1)]
        assert ranks[0]["weights_digest"] == ranks[1]["weights_digest"]      # both ranks hold identical weights
        assert not torch.equal(ranks[0]["torch_rng"], ranks[1]["torch_rng"])  # but draw different latents
        state = torch.load(ckpt / "state.pt", weights_only=True)
        assert state["world_size"] == 2
    meta, _ = read_pretrained(out / "export")
    assert meta["summary"]["processes"] == 2 and meta["summary"]["images_seen"] == 96

    second = _launch(train_args(family_name, data, out, kimg=0.144, **{"checkpoint-kimg": 0.048}))
    assert second.returncode == 0, second.stderr[-4000:]
    assert "resumed from" in second.stdout + second.stderr
    assert read_pretrained(out / "export")[0]["summary"]["images_seen"] == 144
    last = list_checkpoints(out / "checkpoints")[-1]
    ranks = [torch.load(last / f"rng-rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0]["weights_digest"] == ranks[1]["weights_digest"]

    # Resume the 2-process run on 1 process: a warning, not a failure; the stream continues at the
    # global position (2 x 72 images per rank -> 144), so the run ends at the requested kimg.
    third = run_train(train_args(family_name, data, out, kimg=0.176, **{"checkpoint-kimg": 0.016}))
    assert third.returncode == 0, third.stderr[-4000:]
    assert "process count changed" in third.stdout + third.stderr
    state = torch.load(list_checkpoints(out / "checkpoints")[-1] / "state.pt", weights_only=True)
    assert state["world_size"] == 1 and state["images_seen"] == 176
    assert state["consumed"] == 144 + 32  # rescaled from 72 per process, then 8 steps of 4


@pytest.mark.slow
@needs_inception
def test_periodic_evaluation_on_two_processes(tmp_path, monkeypatch):
    """Every rank joins each evaluation (a collective): no hang, one log record, best/ exported."""
    import json

    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    data = make_image_folder(tmp_path / "data")
    out = tmp_path / "run"
    # tiny: 16x16 is fully faded in from 0.16 kimg; 2 processes x batch 4 = 8 images per step
    result = _launch(train_args("progan", data, out, kimg=0.176, **{"eval-kimg": 0.088, "eval-num": 4,
                                                                    "checkpoint-kimg": 0.176}))
    assert result.returncode == 0, result.stderr[-4000:]
    evals = [r for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "fid" in r]
    assert [(r["kimg"], r["resolution"]) for r in evals] == [(0.088, 8), (0.176, 16)]
    meta, _ = read_pretrained(out / "best")
    assert meta["summary"]["fid"] == evals[-1]["fid"] and meta["summary"]["processes"] == 2
    ranks = [torch.load(out / "checkpoints" / "ckpt-000000.176" / f"rng-rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0]["weights_digest"] == ranks[1]["weights_digest"]


def test_each_rank_seeds_its_own_latent_stream_over_identical_weights(tmp_path):
    """Without processes: the trainer built as ranks 0..3 of four (``process_index`` set by hand, the one
    thing a rank changes here). Every rank starts from the same weights (the --seed), but the stream the steps
    draw latents and noise from is the rank's own: four ranks draw four different latent batches, so the ranks
    do not train on duplicated fakes; and a rank built again draws its batch again (a rerun is reproducible)."""
    from accelerate import Accelerator

    from data_prep import open_dataset
    from families import FAMILIES
    from progan.training.options import TrainConfig
    from progan.training.trainer import Trainer

    data = make_image_folder(tmp_path / "data", count=8)
    config = TrainConfig(family="stylegan_lite", preset="tiny", data=str(data), out=str(tmp_path / "run"),
                         batch_size=4, workers=0, monitor_num=0, seed=3)

    def built_as(rank: int) -> tuple[dict, torch.Tensor]:
        class RankAccelerator(Accelerator):
            process_index = property(lambda self: rank)
            num_processes = property(lambda self: 4)

        trainer = Trainer(config, FAMILIES["stylegan_lite"], lambda r: open_dataset(str(data), r),
                          accelerator=RankAccelerator(cpu=True))
        assert trainer.accelerator.process_index == rank
        return trainer.generator.state_dict(), torch.randn(4, trainer.model_config.latent_dim)  # a step's z

    built = [built_as(rank) for rank in range(4)]
    for weights, _ in built[1:]:
        assert weights.keys() == built[0][0].keys()
        assert all(torch.equal(weights[k], built[0][0][k]) for k in weights)  # identical initial weights
    latents = [z for _, z in built]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not torch.allclose(latents[i], latents[j]), (i, j)  # each rank its own fakes
    torch.testing.assert_close(built_as(2)[1], latents[2], rtol=0, atol=0)


def test_images_seen_counts_every_processs_reals_per_step(tmp_path):
    """Without processes: the trainer built as rank 0 of two (``num_processes`` set by hand). One step takes
    batch_size * grad_accum reals on each of the two ranks, so the run has seen 2 * 4 * 2 = 16 images after it;
    counting one rank's 8 would make two processes train twice as long as --kimg and stretch the fade-ins."""
    from accelerate import Accelerator

    from data_prep import open_dataset
    from families import FAMILIES
    from progan.training.options import TrainConfig
    from progan.training.trainer import Trainer

    data = make_image_folder(tmp_path / "data", count=16)
    config = TrainConfig(family="stylegan_lite", preset="tiny", data=str(data), out=str(tmp_path / "run"),
                         batch_size=4, grad_accum=2, workers=0, monitor_num=0, seed=3)

    class TwoProcessAccelerator(Accelerator):
        num_processes = property(lambda self: 2)

    trainer = Trainer(config, FAMILIES["stylegan_lite"], lambda r: open_dataset(str(data), r),
                      accelerator=TwoProcessAccelerator(cpu=True))
    phase = trainer.schedule.phase(0)
    assert phase.batch_size == 4
    trainer._train_step(phase, *trainer._next_minibatch(phase))
    assert trainer.images_seen == 2 * 4 * 2


@pytest.mark.parametrize("message", [
    "[../third_party/gloo/gloo/transport/tcp/unbound_buffer.cc:81] Timed out waiting 5000ms for recv operation to complete",
    "Watchdog caught collective operation timeout: WorkNCCL(SeqNum=7, OpType=ALLREDUCE) ran for 5000 milliseconds",
], ids=["gloo", "nccl"])
def test_a_collective_timeout_becomes_one_line_naming_the_phase(message):
    """``collective_phase`` turns a timed-out collective into a DistributedError that names the rank (0
    without a process group), what the loop was doing and --dist-timeout, whichever wording the backend
    uses: gloo's "Timed out ..." and NCCL's "... timeout ...". Messages taken from those backends."""
    from progan.training.distributed import DistributedError, collective_phase

    with pytest.raises(DistributedError) as info:
        with collective_phase("saving a checkpoint", timeout=5):
            raise RuntimeError(message)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("rank 0:") and "--dist-timeout 5 s while saving a checkpoint" in text
    assert str(info.value.__cause__) == message


def test_an_unrelated_runtime_error_passes_through_a_collective_phase_unchanged():
    """Only timeouts are reworded: any other RuntimeError inside ``collective_phase`` comes out as itself."""
    from progan.training.distributed import collective_phase

    error = RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    with pytest.raises(RuntimeError) as info:
        with collective_phase("saving a checkpoint", timeout=5):
            raise error
    assert info.value is error
