"""fp16 safety on CPU (simulated with CPU autocast in float16) and bf16, and the exact divergence rule.

CPU autocast runs convolutions and linear layers in fp16 like CUDA autocast does, so what overflows or
underflows in fp16 on a GPU does so here too: eps=1e-8 vanishing in fp16, squares above 65504,
activations beyond fp16's range.
"""
from __future__ import annotations

import pytest
import torch

from progan.layers import FP16_CLAMP, MinibatchStdDev, PixelNorm, clamp_fp16
from progan.losses import gradient_penalty, r1_penalty
from stylegan_lite.layers import AdaIN


def _fp16():
    return torch.autocast("cpu", dtype=torch.float16)


def test_pixel_norm_in_fp16_survives_zero_and_huge_vectors():
    x = torch.zeros(2, 8, 4, 4, dtype=torch.float16)
    x[1] = 300.0                                    # 300**2 = 90000 > 65504: overflows if squared in fp16
    y = PixelNorm()(x)
    assert y.dtype == torch.float16 and torch.isfinite(y).all()
    assert torch.equal(y[0], torch.zeros_like(y[0]))
    torch.testing.assert_close(y[1].float(), torch.ones(8, 4, 4))       # unit RMS, not 300 / inf = 0
    naive = x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)  # what fp16 statistics give
    assert torch.isnan(naive[0]).all() and (naive[1] == 0).all()


def test_adain_in_fp16_survives_a_constant_feature_map():
    torch.manual_seed(0)
    adain = AdaIN(8, 16)
    x = torch.full((2, 8, 4, 4), 3.0, dtype=torch.float16)             # zero variance per channel
    with _fp16():
        y = adain(x, torch.randn(2, 16))
    assert torch.isfinite(y).all()


def test_clamp_acts_on_fp16_only():
    big = torch.tensor([1e4, -1e4, 5.0])
    assert torch.equal(clamp_fp16(big), big)                           # fp32: untouched (bit-exact training)
    assert torch.equal(clamp_fp16(big.bfloat16()), big.bfloat16())
    assert clamp_fp16(big.half()).tolist() == [FP16_CLAMP, -FP16_CLAMP, 5.0]


def test_minibatch_stddev_statistics_in_fp32():
    x = torch.full((4, 8, 4, 4), 400.0, dtype=torch.float16)
    x[::2] = -400.0                                 # variance 160000: inf in fp16
    y = MinibatchStdDev()(x)
    assert torch.isfinite(y).all() and y[0, -1, 0, 0].item() == pytest.approx(400.0, rel=1e-3)


def test_networks_under_fp16_autocast_stay_finite_on_extreme_inputs(family):
    """z = 0 (PixelNorm's worst case) through G, and images 100x out of range through D and both penalties."""
    torch.manual_seed(0)
    config = family.presets["tiny"]
    g, d = family.generator_cls(config), family.discriminator_cls(config)
    with _fp16():
        images = g(torch.zeros(4, config.latent_dim), stage=2)
    assert images.dtype == torch.float16 and torch.isfinite(images).all()
    reals = torch.randn(4, 3, 16, 16) * 100
    with _fp16():
        scores = d(reals, stage=2)
        gp = gradient_penalty(lambda x: d(x, stage=2), reals, images.float(), grad_scale=2.0**16)
        r1, _ = r1_penalty(lambda x: d(x, stage=2), reals, grad_scale=2.0**16)
    assert torch.isfinite(scores).all() and torch.isfinite(gp) and torch.isfinite(r1)
    assert gp.dtype == r1.dtype == torch.float32                        # penalties finish in fp32
    (gp + r1).backward()
    assert all(torch.isfinite(p.grad).all() for p in d.parameters() if p.grad is not None)


def test_penalty_gradient_is_taken_outside_autocast(monkeypatch):
    seen = []
    real_grad = torch.autograd.grad

    def spy(*args, **kwargs):
        seen.append(torch.is_autocast_enabled("cpu"))
        return real_grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", spy)
    d = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(1))
    x = torch.randn(2, 3, 8, 8)
    d(x)
    with _fp16():
        r1_penalty(d, x)
    assert seen == [False]


# --- the divergence rule (item 5): only the penalty depends on the fp16 loss scale --------------------

def _finite_terms():
    return {"d_loss": torch.tensor(1.0), "d_gp": torch.tensor(0.1)}, {"g_loss": torch.tensor(0.3)}


@pytest.mark.parametrize("bad_term,d_skipped,diverged", [
    ("d_gp", True, False),          # penalty overflowed at this scale and D's step was skipped: a skip
    ("d_gp", False, True),          # penalty non-finite but D stepped anyway: divergence
    ("g_loss", True, True),         # G's loss never depends on the scale: a skipped D step excuses nothing
    ("d_wasserstein", True, True),  # neither do D's adversarial terms
    (None, False, False),
])
def test_only_a_skipped_d_step_excuses_a_non_finite_penalty(bad_term, d_skipped, diverged):
    from progan.training.health import RunFlags
    from progan.training.iteration import IterationTerms

    flags = RunFlags(torch.device("cpu"))
    d_terms = {"d_loss": torch.tensor(1.0), "d_wasserstein": torch.tensor(0.5), "d_gp": torch.tensor(0.1),
               "real_sign": torch.tensor(0.2)}
    g_terms = {"g_loss": torch.tensor(0.3)}
    if bad_term:
        (g_terms if bad_term == "g_loss" else d_terms)[bad_term] = torch.tensor(float("inf"))
    d_terms["d_loss"] = torch.tensor(float("nan")) if bad_term else d_terms["d_loss"]  # the sum is ignored
    flags.note(IterationTerms(d_terms, g_terms, d_skipped), images_seen=1234)
    flags.note(IterationTerms(*_finite_terms(), False), images_seen=1238)  # a later healthy step forgets nothing
    stop, bad, first = flags.agree(stop_requested=False, images_seen=1238)
    assert (stop, bad) == (False, diverged)
    assert first == (1234 if diverged else -1)


def test_a_stop_request_and_a_scale_below_one_are_agreed_on():
    from progan.training.health import RunFlags
    from progan.training.iteration import IterationTerms

    class Scaler:  # the GradScaler after overflows at every scale down to 2**-1
        def get_scale(self):
            return 0.5

    flags = RunFlags(torch.device("cpu"))
    flags.note(IterationTerms(*_finite_terms(), False), images_seen=40)
    assert flags.agree(stop_requested=True, images_seen=44) == (True, False, -1)
    assert flags.agree(stop_requested=False, images_seen=44, scaler=Scaler()) == (False, True, 44)


def test_a_scale_of_exactly_one_is_not_yet_divergence():
    """The GradScaler halves its scale on each overflow; at 1.0 the next step is unscaled and has not yet
    failed, so only a scale below 1 (an unscaled step overflowed too) counts as non-finite."""
    from progan.training.health import RunFlags
    from progan.training.iteration import IterationTerms

    for scale, expected in ((1.0, (False, False, -1)), (0.5, (False, True, 44))):
        flags = RunFlags(torch.device("cpu"))
        flags.note(IterationTerms(*_finite_terms(), False), images_seen=40)
        scaler = type("Scaler", (), {"get_scale": lambda self, s=scale: s})()
        assert flags.agree(stop_requested=False, images_seen=44, scaler=scaler) == expected, scale


def test_fp16_only_in_the_four_highest_resolutions(family):
    """stylegan2-ada's num_fp16_res = 4: at 128 px, convolutions at 4 and 8 px run in fp32 under fp16 autocast."""
    torch.manual_seed(0)
    config = type(family.presets["tiny"])(**{**family.presets["tiny"].__dict__, "resolution": 128})
    g, d = family.generator_cls(config), family.discriminator_cls(config)
    if family.name == "progan":  # the first convolution of each resolution
        g_convs = [g.blocks[0].conv.conv] + [b.conv1.conv for b in g.blocks[1:]]
    else:
        g_convs = [layer.conv for layer in g.synthesis.layers[1::2]]
    d_convs = [d.blocks[0].conv] + [b.conv1 for b in d.blocks[1:]]
    dtypes: dict[str, dict[int, torch.dtype]] = {"g": {}, "d": {}}
    for net, convs in (("g", g_convs), ("d", d_convs)):
        for stage, conv in enumerate(convs):
            conv.register_forward_hook(lambda _m, _i, out, net=net, res=4 * 2**stage: dtypes[net].update({res: out.dtype}))
    with _fp16():
        images = g(torch.randn(2, config.latent_dim))
        d(images.float())
    half, full = torch.float16, torch.float32
    expected = {4: full, 8: full, 16: half, 32: half, 64: half, 128: half}
    assert dtypes["g"] == expected and dtypes["d"] == expected
    g(torch.randn(2, config.latent_dim))  # without autocast everything stays fp32
    assert set(dtypes["g"].values()) == {full}


def test_bf16_autocast_keeps_every_resolution_in_bf16(family):
    """The fp16 rule (fp32 below the four highest resolutions) is for fp16 only: bf16 has fp32's range,
    so under bf16 autocast the 4 and 8 px convolutions of a 128 px model run in bf16 like the rest."""
    torch.manual_seed(0)
    config = type(family.presets["tiny"])(**{**family.presets["tiny"].__dict__, "resolution": 128})
    g, d = family.generator_cls(config), family.discriminator_cls(config)
    dtypes: dict[tuple[str, int], torch.dtype] = {}
    g_first = g.blocks[0].conv.conv if family.name == "progan" else g.synthesis.layers[1].conv
    for key, conv in ((("g", 4), g_first), (("d", 4), d.blocks[0].conv), (("d", 8), d.blocks[1].conv1)):
        conv.register_forward_hook(lambda _m, _i, out, key=key: dtypes.update({key: out.dtype}))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        d(g(torch.randn(2, config.latent_dim)).float())
    assert dtypes == {("g", 4): torch.bfloat16, ("d", 4): torch.bfloat16, ("d", 8): torch.bfloat16}



def test_the_trainer_agrees_on_divergence_with_its_accelerators_grad_scaler(tmp_path):
    """With fp16 (a CUDA run) the Accelerator holds the GradScaler: the trainer's agreement reads that
    scaler, so a scale fallen below 1 stops the run as non-finite at the images seen (here a stand-in
    scaler: CPU runs have none)."""
    import data_prep
    from accelerate import Accelerator
    from families import FAMILIES
    from image_utils import labelled_source
    from progan.training.options import TrainConfig
    from progan.training.trainer import Trainer

    data = data_prep.prepare(labelled_source(tmp_path), tmp_path / "data", resolution=16, progress=False, workers=1)
    config = TrainConfig(family="progan", preset="tiny", data=str(data), out=str(tmp_path / "run"), batch_size=4,
                         workers=0, monitor_num=0, kimg=0.012, checkpoint_kimg=1.0, sample_kimg=1.0)
    trainer = Trainer(config, FAMILIES["progan"], lambda r: data_prep.open_dataset(str(data), r),
                      accelerator=Accelerator(cpu=True))
    trainer.images_seen = 44
    for scale, expected in ((1.0, (False, False, -1)), (0.5, (False, True, 44))):
        trainer.accelerator.scaler = type("Scaler", (), {"get_scale": lambda self, s=scale: s})()
        assert trainer._agree() == expected, scale
