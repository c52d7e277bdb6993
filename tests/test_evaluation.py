"""Evaluation: periodic metrics during training (stand-in network) and the evaluate CLI (real Inception)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from accelerate import Accelerator

import data_prep
from families import FAMILIES
from metric_utils import CountingFeatures, StandInFeatures, needs_inception
from progan.metrics.evaluation import PeriodicEvaluator, dataset_key
from progan.hub.export import read_metadata, read_pretrained
from progan.training.options import TrainConfig
from progan.training.trainer import Trainer
from train_utils import ROOT, load_state, make_image_folder, train_env


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(tmp_path, name: str, family: str, *, evaluate: bool) -> tuple[Trainer, object]:
    data = make_image_folder(tmp_path / "images")
    config = TrainConfig(family=family, preset="tiny", data=str(data), out=str(tmp_path / name), kimg=0.2,
                         batch_size=4, fade_kimg=0.04, stable_kimg=0.04, checkpoint_kimg=0.1, sample_kimg=0.1,
                         workers=0, log_every=5, eval_kimg=0.1 if evaluate else 0.0, eval_num=12)
    accelerator = Accelerator(cpu=True, log_with="tensorboard", project_dir=config.out)
    evaluator = (PeriodicEvaluator(accelerator, num=12, data_label=str(data), network=StandInFeatures(),
                                   cache_dir=tmp_path / "fid-stats", batch_size=5) if evaluate else None)
    trainer = Trainer(config, FAMILIES[family], lambda r: data_prep.open_dataset(str(data), r),
                      accelerator=accelerator, evaluator=evaluator)
    return trainer, trainer.train()


def test_periodic_evaluation_logs_exports_best_and_leaves_training_unchanged(tmp_path, family, restore_signals):
    with_eval, export = _train(tmp_path, "with-eval", family.name, evaluate=True)
    records = [json.loads(line) for line in (tmp_path / "with-eval" / "log.jsonl").read_text().splitlines()]
    evals = [r for r in records if "fid" in r]
    # tiny: 4px, then 8px fading in at 0.04 kimg, 16px at 0.12 kimg, stable from 0.16 kimg
    assert [(r["kimg"], r["resolution"]) for r in evals] == [(0.1, 8), (0.2, 16)]
    for r in evals:
        assert r["fid"] > 0 and 0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1 and r["eval_num"] == 12
    # Only the full-resolution, fully faded-in evaluation counts for best/; it holds that model.
    best = read_metadata(tmp_path / "with-eval" / "best")["summary"]
    assert best["fid"] == evals[-1]["fid"] and best["kimg"] == 0.2
    _, best_tensors = read_pretrained(tmp_path / "with-eval" / "best")
    _, final_tensors = read_pretrained(export)
    assert best_tensors.keys() == final_tensors.keys()
    assert all(torch.equal(best_tensors[k], final_tensors[k]) for k in best_tensors)
    assert load_state(tmp_path / "with-eval" / "checkpoints" / "ckpt-000000.200")["best_fid"] == evals[-1]["fid"]
    # Real statistics were cached once per resolution evaluated.
    assert len(list((tmp_path / "fid-stats").glob("real-*.safetensors"))) == 2
    # Evaluating draws no training randomness: the run is bit-identical to one without it.
    without_eval, _ = _train(tmp_path, "without-eval", family.name, evaluate=False)
    assert with_eval.weights_digest() == without_eval.weights_digest()
    assert not (tmp_path / "without-eval" / "best").exists()


def test_dataset_key_follows_contents(tmp_path):
    first = make_image_folder(tmp_path / "a", count=6)
    key = dataset_key(str(first), data_prep.open_dataset(str(first), 16))
    assert key == dataset_key(str(first), data_prep.open_dataset(str(first), 16))
    more = make_image_folder(tmp_path / "b", count=8)
    assert key != dataset_key(str(more), data_prep.open_dataset(str(more), 16))


def test_bad_eval_options_are_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match="--eval-num must be >= 2"):
        TrainConfig(eval_num=1)
    result = subprocess.run([sys.executable, "evaluate.py", "--weights", str(tmp_path / "missing")], cwd=ROOT,
                            env=train_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error:") and len(result.stderr.strip().splitlines()) == 1
    result = subprocess.run([sys.executable, "evaluate.py", "--weights", "weights/progan-openmoji",
                             "--metrics", "fid,is"], cwd=ROOT, env=train_env(), capture_output=True, text=True)
    assert result.returncode == 2 and "--metrics" in result.stderr


@pytest.mark.slow
@needs_inception
def test_evaluate_cli_gives_the_same_result_on_one_and_two_processes(tmp_path):
    torch.manual_seed(0)
    # ProGAN: no per-pixel noise, so sample i is the same image however the work is split
    model = FAMILIES["progan"].generator_cls(FAMILIES["progan"].preset("tiny"))
    model.save_pretrained(tmp_path / "model")
    data = make_image_folder(tmp_path / "images", count=10)
    env = {**train_env(), "GAN_STUDIO_CACHE": str(tmp_path / "cache")}
    common = ["evaluate.py", "--weights", str(tmp_path / "model"), "--data", str(data), "--num", "6",
              "--num-real", "7", "--batch", "4"]
    one = subprocess.run([sys.executable, *common, "--out", str(tmp_path / "one.json")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                          "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                          "--main_process_port", str(_free_port()), *common, "--out", str(tmp_path / "two.json")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-2000:]
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two"))
    assert (a["processes"], b["processes"]) == (1, 2) and a["num_generated"] == b["num_generated"] == 6
    assert a["num_real"] == b["num_real"] == 7
    # Same latents for every sample and the same reals: the same numbers up to float noise of the
    # feature network's batch sizes. A lost or duplicated sample would change them; a reordering
    # would not (every metric treats samples as a set), so test_evaluation_order.py checks the order.
    for metric in ("fid", "kid", "precision", "recall"):
        assert a[metric] == pytest.approx(b[metric], rel=1e-3, abs=1e-6), metric
    # The second run found the real statistics in the cache written by the first.
    assert len(list((tmp_path / "cache" / "fid-stats").glob("real-*.safetensors"))) == 1


def test_evaluate_cli_computes_the_metrics_it_is_asked_for(weights, tmp_path, monkeypatch, capsys):
    """``--metrics`` names what is computed and reported (default fid,kid,pr): the JSON holds exactly
    those scores (pr as precision and recall), none of the others (stand-in feature network)."""
    import evaluate

    data = make_image_folder(tmp_path / "data", count=8)
    monkeypatch.setattr("progan.metrics.inception.load_feature_network", lambda *a, **k: StandInFeatures())
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    scores = {"fid", "kid", "precision", "recall"}
    for metrics, expected in (("fid", {"fid"}), ("kid,pr", {"kid", "precision", "recall"}), (None, scores)):
        capsys.readouterr()
        option = [] if metrics is None else ["--metrics", metrics]
        assert evaluate.main(["--weights", str(weights["progan"]), "--data", str(data), "--num", "8",
                              "--batch", "4", *option]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert scores & summary.keys() == expected, metrics



def test_evaluate_cli_metrics_draw_the_latents_of_their_seed(weights, tmp_path, monkeypatch, capsys):
    """``evaluate.py --seed S``: generated sample i is latent i of seed S (the module docstring), on the
    metrics path too. The loaded generator records the z it is given: seed 7 gives seed 7's latents
    (``latents_for_indices``, what ``evaluate_generator(seed=7)`` draws), not seed 0's; the same seed
    gives the same latents again; the JSON names the seed and its FID follows the latents."""
    import evaluate
    import families
    from progan.metrics.features import latents_for_indices

    data = make_image_folder(tmp_path / "data", count=8)
    monkeypatch.setattr("progan.metrics.inception.load_feature_network", lambda *a, **k: StandInFeatures())
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    seen, load = [], families.load_generator

    def recording_load(*args, **kwargs):
        generator = load(*args, **kwargs)
        generator.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].detach().cpu().clone()))
        return generator

    monkeypatch.setattr(families, "load_generator", recording_load)

    def cli(seed: int) -> tuple[torch.Tensor, dict]:
        seen.clear()
        capsys.readouterr()
        assert evaluate.main(["--weights", str(weights["progan"]), "--data", str(data), "--num", "6", "--batch", "4",
                              "--metrics", "fid", "--seed", str(seed)]) == 0
        return torch.cat(seen), json.loads(capsys.readouterr().out)

    latent_dim = FAMILIES["progan"].presets["tiny"].latent_dim
    (z7, seven), (z0, zero), (again, _) = cli(7), cli(0), cli(7)
    assert z7.shape == (6, latent_dim)
    torch.testing.assert_close(z7, latents_for_indices(range(6), latent_dim, seed=7), rtol=0, atol=0)
    torch.testing.assert_close(z0, latents_for_indices(range(6), latent_dim, seed=0), rtol=0, atol=0)
    assert not torch.allclose(z7, z0)
    assert torch.equal(again, z7)
    assert seven["seed"] == 7 and zero["seed"] == 0 and seven["fid"] != zero["fid"]

def test_a_partial_real_set_is_a_seeded_random_subset_not_the_first_images(tmp_path):
    """A dataset stored in an order that follows its content (first half dark, second half bright):
    statistics of a quarter of it must describe the whole set, not its first quarter."""
    from accelerate import Accelerator

    from metric_utils import StandInFeatures
    from progan.metrics.evaluation import distributed_real_statistics, real_subset

    dataset = [torch.full((3, 8, 8), 20 if i < 40 else 230, dtype=torch.uint8) for i in range(80)]
    network = StandInFeatures()
    acc = Accelerator(cpu=True)
    part = distributed_real_statistics(acc, dataset, network, num=20, dataset_key="ordered", cache_dir=tmp_path)
    whole = distributed_real_statistics(acc, dataset, network, num=80, dataset_key="ordered", cache_dir=tmp_path)
    dark = network(torch.stack(dataset[:1])).numpy()[0]
    # the first 20 are all dark; a random 20 has about half bright images
    assert not np.allclose(part.mu, dark, atol=1e-3)
    assert np.abs(part.mu - whole.mu).max() < 0.35 * np.abs(network(torch.stack(dataset[-1:])).numpy()[0] - dark).max()
    chosen = real_subset(80, 20)
    assert chosen == real_subset(80, 20) and len(set(chosen)) == 20 and 5 <= sum(i >= 40 for i in chosen) <= 15
    assert real_subset(80, 80) is None  # all of them: storage order does not matter


def test_a_cached_real_set_scores_the_same_as_a_computed_one(tmp_path):
    """The generated half must not depend on whether the real statistics came from the cache: computing
    them draws from the global RNG (the loader), loading them does not. A StyleGAN-lite with strong noise
    makes the generated images depend on the noise stream; three evaluations (cold cache, warm cache, no
    cache) must give one FID, and a different evaluation seed another."""
    from progan.metrics.evaluation import evaluate_generator

    family = FAMILIES["stylegan_lite"]
    torch.manual_seed(0)
    generator = family.generator_cls(family.preset("tiny")).eval()
    with torch.no_grad():  # non-zero noise strengths: the images follow the noise draws
        for name, param in generator.named_parameters():
            if "noise" in name:
                param.fill_(0.5)
    reals = torch.randint(0, 256, (40, 3, 16, 16), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)

    class Reals(torch.utils.data.Dataset):
        def __len__(self):
            return len(reals)

        def __getitem__(self, i):
            return reals[i]

    accelerator, network = Accelerator(cpu=True), StandInFeatures()

    def fid(cache_dir, seed=0):
        return evaluate_generator(generator, Reals(), network, accelerator=accelerator, num=20, dataset_key="k",
                                  cache_dir=cache_dir, batch_size=8, metrics=("fid",), seed=seed)["fid"]

    cold, warm, uncached = fid(tmp_path / "cache"), fid(tmp_path / "cache"), fid(None)
    assert (tmp_path / "cache").exists() and any((tmp_path / "cache").iterdir())  # the second run read it
    assert cold == warm == uncached
    assert fid(None, seed=1) != cold  # the noise (and z) stream does reach the images


def test_evaluate_cli_argument_errors_are_one_line_and_compute_nothing(weights, tmp_path, monkeypatch, capsys):
    """evaluate.py refuses bad --num/--num-real/--batch, a bad --background, remote weights without
    --allow-remote-weights and --psi on a ProGAN with exit status 2 and one line naming the option;
    nothing is evaluated and no --out is written."""
    import evaluate

    data = make_image_folder(tmp_path / "data", count=4)
    monkeypatch.setattr("progan.metrics.inception.load_feature_network", lambda *a, **k: StandInFeatures())
    monkeypatch.setattr("progan.metrics.evaluation.evaluate_generator", lambda *a, **k: pytest.fail("evaluated"))
    out = tmp_path / "m.json"
    base = ["--data", str(data), "--out", str(out)]
    style, progan = str(weights["stylegan_lite"]), str(weights["progan"])
    cases = [
        ([style, "--num", "1"], "--num must be >= 2"),
        ([style, "--num-real", "1"], "--num-real 0 or >= 2"),
        ([style, "--num-real=-3"], "--num-real 0 or >= 2"),
        ([style, "--batch", "0"], "--batch >= 1"),
        ([style, "--background", "1,2"], "--background must be R,G,B with values 0..255, got '1,2'"),
        ([style, "--background", "0,0,256"], "--background must be R,G,B with values 0..255, got '0,0,256'"),
        ([style, "--background=-1,0,0"], "--background must be R,G,B"),
        ([style, "--background", "white"], "--background must be R,G,B"),
        (["hf://org/repo"], "--weights is remote; pass --allow-remote-weights"),
        (["https://example.invalid/m.safetensors"], "--weights is remote; pass --allow-remote-weights"),
        ([progan, "--psi", "0.7"], "--psi applies to StyleGAN-lite generators only"),
    ]
    for args, message in cases:
        capsys.readouterr()
        assert evaluate.main(["--weights", *args, *base]) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], (args, err)
        assert not out.exists(), args


def test_evaluation_refuses_a_conditional_generator_without_labels_and_fewer_than_two_images():
    """evaluate_generator needs 2+ generated and 2+ real images (a covariance of one is undefined) and, for a
    conditional generator, labels from somewhere; labels_like_dataset draws only classes the dataset has."""
    import dataclasses
    from types import SimpleNamespace

    from progan.metrics.evaluation import evaluate_generator, labels_like_dataset

    torch.manual_seed(0)
    plain = FAMILIES["progan"].generator_cls(FAMILIES["progan"].presets["tiny"])
    cond = FAMILIES["progan"].generator_cls(dataclasses.replace(FAMILIES["progan"].presets["tiny"],
                                                                class_names=("a", "b", "c")))
    images = [torch.zeros(3, 16, 16, dtype=torch.uint8) for _ in range(4)]
    common = dict(accelerator=Accelerator(cpu=True), dataset_key="k", cache_dir=None, batch_size=2)
    with pytest.raises(ValueError, match=r"^a conditional generator needs a dataset with labels \(or explicit "
                                         r"labels\)$"):
        evaluate_generator(cond, images, StandInFeatures(), num=4, **common)
    for data, num, num_real, shown in ((images, 1, None, "got 1 and 1"), (images[:1], 4, None, "got 4 and 1"),
                                       (images, 4, 1, "got 4 and 1")):
        with pytest.raises(ValueError, match=rf"^need at least 2 generated and 2 real images, {shown}$"):
            evaluate_generator(plain, data, StandInFeatures(), num=num, num_real=num_real, **common)
    assert labels_like_dataset(images, 8) is None
    labelled = SimpleNamespace(labels=np.array([0, 0, 0, 2]), class_names=("a", "b", "c"))
    drawn = labels_like_dataset(labelled, 400, seed=3)
    assert drawn.dtype == torch.int64 and drawn.shape == (400,) and set(drawn.tolist()) == {0, 2}
    assert 250 < int((drawn == 0).sum()) < 350                          # 3 : 1, as in the dataset
    assert torch.equal(drawn, labels_like_dataset(labelled, 400, seed=3))
    assert not torch.equal(drawn, labels_like_dataset(labelled, 400, seed=4))  # the seed picks the draw


def test_evaluate_cli_num_real_sets_how_many_real_images_are_scored(weights, tmp_path, monkeypatch, capsys):
    """``--num-real 5`` of an 8-image folder: the feature network sees 5 real images next to the 4
    generated ones (9 rows), against all 8 reals (12 rows) without the flag or with ``--num-real 50``
    (more than there are); the JSON says how many were used."""
    import evaluate

    data = make_image_folder(tmp_path / "data", count=8)
    network = CountingFeatures()
    rows = network.rows
    monkeypatch.setattr("progan.metrics.inception.load_feature_network", lambda *a, **k: network)
    for option, real in (([], 8), (["--num-real", "5"], 5), (["--num-real", "50"], 8)):
        rows.clear()
        capsys.readouterr()
        monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "-".join(["cache", *option])))   # a cold cache each time
        assert evaluate.main(["--weights", str(weights["progan"]), "--data", str(data), "--num", "4", "--batch", "4",
                              "--metrics", "fid", *option]) == 0
        assert sum(rows) == 4 + real, option
        assert json.loads(capsys.readouterr().out)["num_real"] == real


def test_evaluate_cli_metrics_score_the_truncated_samples_of_psi(weights, tmp_path, monkeypatch, capsys):
    """``--psi`` on the metrics path (the --nearest path has its own test): a fresh StyleGAN-lite has
    w_avg = 0 and zero noise strength, so at psi 0 every sample is the one image of w_avg, while psi 1
    (the default) gives distinct samples. The images the loaded generator returns are recorded."""
    import evaluate
    import families

    data = make_image_folder(tmp_path / "data", count=8)
    monkeypatch.setattr("progan.metrics.inception.load_feature_network", lambda *a, **k: StandInFeatures())
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    drawn, load = [], families.load_generator

    def recording_load(*args, **kwargs):
        generator = load(*args, **kwargs)
        assert float(generator.w_avg.abs().max()) == 0.0
        generator.register_forward_hook(lambda module, inputs, out: drawn.append(out.detach().cpu().clone()))
        return generator

    monkeypatch.setattr(families, "load_generator", recording_load)
    for option, one_image in (([], False), (["--psi", "0"], True)):
        drawn.clear()
        assert evaluate.main(["--weights", str(weights["stylegan_lite"]), "--data", str(data), "--num", "4",
                              "--batch", "4", "--metrics", "fid", *option]) == 0
        images = torch.cat(drawn)
        assert images.shape[0] == 4
        same = [torch.equal(images[0], images[i]) for i in range(1, 4)]
        assert same == [one_image] * 3, option


class _ScriptedFid:
    """An evaluator whose FIDs are given in advance (what the trainer does with them is under test)."""

    num = 12

    def __init__(self, fids):
        self.fids = list(fids)

    def __call__(self, generator, dataset, *, stage, alpha, should_stop):
        return {"fid": self.fids.pop(0)}


def test_best_holds_the_lowest_fid_of_the_final_fully_faded_in_resolution(tmp_path):
    """best/ takes an evaluation only at the full resolution with alpha = 1 (not during its fade-in,
    however low the FID), and only when its FID is below every earlier such one (an equal FID keeps the earlier model)."""
    from progan.training.schedule import Phase

    data = make_image_folder(tmp_path / "images", count=8)
    config = TrainConfig(family="progan", preset="tiny", data=str(data), out=str(tmp_path / "run"), batch_size=4,
                         workers=0, monitor_num=0, eval_kimg=0.1, eval_num=12)
    trainer = Trainer(config, FAMILIES["progan"], lambda r: data_prep.open_dataset(str(data), r),
                      accelerator=Accelerator(cpu=True), evaluator=_ScriptedFid([1.0, 5.0, 7.0, 3.0, 3.0]))
    trainer.out.mkdir(parents=True)                  # what train() does first
    last = trainer.model_config.num_stages - 1
    best = tmp_path / "run" / "best"
    trainer._evaluate(Phase(last, 0.5, 4), 1.0)      # the final resolution still fading in: not best
    assert not best.exists() and trainer.best_fid == float("inf")
    for images_seen, fid in ((100, 5.0), (200, 7.0), (300, 3.0), (400, 3.0)):
        trainer.images_seen = images_seen
        trainer._evaluate(Phase(last, 1.0, 4), 1.0)
        expected = min(f for n, f in ((100, 5.0), (200, 7.0), (300, 3.0), (400, 3.0)) if n <= images_seen)
        summary = read_metadata(best)["summary"]
        assert (trainer.best_fid, summary["fid"]) == (expected, expected)
        assert summary["kimg"] == {5.0: 0.1, 3.0: 0.3}[expected]  # a worse or equal FID leaves best/ as it was


def test_the_periodic_evaluator_loads_its_network_on_the_accelerators_device(monkeypatch):
    """PeriodicEvaluator.load() puts the feature network on the accelerator's device (a GPU in training), not
    load_feature_network's default: seen with an accelerator whose device is one no default would pick."""
    calls = []
    monkeypatch.setattr("progan.metrics.inception.load_feature_network",
                        lambda *a, **k: calls.append((a, k)) or StandInFeatures())

    class OnMeta:
        device = torch.device("meta")

    PeriodicEvaluator(OnMeta(), num=4, data_label="x", network_path="net.pt").load()
    assert len(calls) == 1 and calls[0][1].get("device") == torch.device("meta")
