"""Session 16's mutants (issue 20): survivors of the default and statement sweeps and of the training blind
sets, each with the test that now kills it; docs/testing.md.
"""
from __future__ import annotations

from mutant_base import SG, Mutant, m  # noqa: F401 (SG: shorthand for stylegan_lite/networks.py)

S16: list[Mutant] = [
    m('s16-upload-cap-under-1-mib-named-0-mib', 'app/projection/ui.py',
      '    if n < 2**20:\n        return f"{n:,} bytes"\n',
      '',
      ('tests/test_app_project.py::test_an_upload_cap_that_is_not_whole_mib_is_named_as_it_is',)),
    m('blind-w06-noise-before-augment', 'progan/training/step.py',
      '        if augment is not None:\n            images = augment(images)\n'
      '        if sigma > 0:  # torch RNG: saved per rank, so a resumed run draws the same noise\n'
      '            images = images + sigma * torch.randn_like(images)\n',
      '        if sigma > 0:  # torch RNG: saved per rank, so a resumed run draws the same noise\n'
      '            images = images + sigma * torch.randn_like(images)\n'
      '        if augment is not None:\n            images = augment(images)\n',
      ('tests/test_augment_training.py::test_instance_noise_goes_on_after_the_augmentation',)),
    m('blind-x05-w-avg-not-averaged', 'progan/training/iteration.py',
      "        all_reduce_mean_(setup.averaged_buffers, **setup.reduce_options)  # w_avg, tracked on each rank's latents\n",
      '\n',
      ('tests/test_iteration.py::test_w_avg_is_averaged_over_processes_after_the_g_step',)),
    m('blind-x07-ada-interval-default', 'progan/training/options.py',
      'ada_interval: int = _opt(4,', 'ada_interval: int = _opt(8,',
      ('tests/test_trainer_options.py::test_ada_defaults_adjust_p_every_4_minibatches_at_500_kimg_towards_0_6',)),
    m('blind-x10-hinge-g-loss-is-lsgan', 'progan/losses.py',
      '    if adversarial == "hinge":\n        return hinge_generator_loss(fake_scores)\n'
      '    return lsgan_generator_loss(fake_scores)\n',
      '    return lsgan_generator_loss(fake_scores)\n',
      ('tests/test_stabilization.py::test_each_loss_matches_its_closed_form[hinge]',)),
]
