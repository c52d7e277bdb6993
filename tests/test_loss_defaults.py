"""The loss API's defaults are the papers' constants: WGAN-GP's lambda = 10 (Gulrajani et al. 2017,
section 4), ProGAN's drift epsilon = 0.001 (Karras et al. 2018, appendix A.1), R1's gamma = 10 (StyleGAN,
Karras et al. 2019, appendix C; Mescheder et al. 2018), DRAGAN's perturbation c = 0.5 and unit target
norm (Kodali et al. 2017), no label smoothing and the penalty on.

The trainer passes every one of these explicitly, so a default changed in a signature reached no test
(the default sweep, docs/testing.md); a user or script calling the functions gets it. Each default is
compared with the paper's value passed explicitly under the same random draws, and each value is checked
to matter (a different one changes the loss), with a critic that is not linear in its input.
"""
from __future__ import annotations

import pytest
import torch

from progan.losses import discriminator_loss, discriminator_penalty, discriminator_real_loss, dragan_penalty, \
    gradient_penalty

PAPER = {"gp_lambda": 10.0, "drift_epsilon": 0.001, "r1_gamma": 10.0, "dragan_c": 0.5, "label_smoothing": 0.0,
         "penalty": True}
OTHER = {"gp_lambda": 5.0, "drift_epsilon": 0.01, "r1_gamma": 2.0, "dragan_c": 2.0, "label_smoothing": 0.1,
         "penalty": False}
# which keywords change the value of each loss (the rest are read by another loss only)
READ = {"wgan_gp": ("gp_lambda", "drift_epsilon", "penalty"), "logistic_r1": ("r1_gamma", "label_smoothing", "penalty"),
        "logistic+dragan": ("gp_lambda", "dragan_c", "label_smoothing", "penalty")}


def critic(x: torch.Tensor) -> torch.Tensor:
    flat = x.flatten(1)
    return torch.tanh(flat * 3).sum(1) + 0.5 * flat.square().sum(1)


def _call(fn, name, **kw):
    torch.manual_seed(7)
    real = torch.rand(4, 1, 3, 3, dtype=torch.float64)
    fake = torch.rand(4, 1, 3, 3, dtype=torch.float64) - 0.5
    if fn is discriminator_penalty:
        kw = {k: v for k, v in kw.items() if k in ("gp_lambda", "r1_gamma", "dragan_c")}
    out = fn(name, critic, real, fake, **kw)
    return out[0].item()


@pytest.mark.parametrize("fn", [discriminator_loss, discriminator_real_loss, discriminator_penalty])
@pytest.mark.parametrize("name", list(READ))
def test_loss_defaults_are_the_papers_constants_and_each_one_matters(fn, name):
    assert _call(fn, name) == _call(fn, name, **PAPER)
    for key in READ[name]:
        if fn is discriminator_penalty and key not in ("gp_lambda", "r1_gamma", "dragan_c"):
            continue
        assert _call(fn, name, **{**PAPER, key: OTHER[key]}) != _call(fn, name, **PAPER), key


def test_penalty_functions_default_to_unit_target_and_half_std_box():
    torch.manual_seed(3)
    real = torch.rand(4, 1, 3, 3, dtype=torch.float64)
    fake = torch.rand(4, 1, 3, 3, dtype=torch.float64)

    def seeded(fn, *args, **kw):
        torch.manual_seed(11)
        return fn(critic, *args, **kw).item()

    assert seeded(gradient_penalty, real, fake) == seeded(gradient_penalty, real, fake, target=1.0)
    assert seeded(gradient_penalty, real, fake) != seeded(gradient_penalty, real, fake, target=0.5)
    assert seeded(dragan_penalty, real) == seeded(dragan_penalty, real, c=0.5, target=1.0)
    assert seeded(dragan_penalty, real) != seeded(dragan_penalty, real, c=0.25)
    assert seeded(dragan_penalty, real) != seeded(dragan_penalty, real, target=0.5)
