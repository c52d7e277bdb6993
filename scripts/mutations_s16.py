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
    # the default sweep: defaults no preset reaches (every preset names its sizes)
    m('s16-default-progan-channel-max', 'progan/config.py', 'channel_max: int = 512 ', 'channel_max: int = 513 ', ('tests/test_paper_defaults.py',)),
    m('s16-default-progan-latent-dim', 'progan/config.py', 'latent_dim: int = 512 ', 'latent_dim: int = 513 ', ('tests/test_paper_defaults.py',)),
    m('s16-default-progan-resolution', 'progan/config.py', 'resolution: int = 1024 ', 'resolution: int = 512 ', ('tests/test_paper_defaults.py',)),
    m('s16-default-progan-mbstd-group', 'progan/config.py', 'mbstd_group_size: int = 4 ', 'mbstd_group_size: int = 5 ', ('tests/test_paper_defaults.py',)),
    m('s16-default-stylegan-mapping-layers', 'stylegan_lite/config.py', 'mapping_layers: int = 8 ', 'mapping_layers: int = 9 ', ('tests/test_paper_defaults.py',)),
    m('s16-default-stylegan-w-avg-beta', 'stylegan_lite/config.py', 'w_avg_beta: float = 0.995 ', 'w_avg_beta: float = 0.99 ', ('tests/test_paper_defaults.py',)),
    m('s16-default-pixel-norm-eps', 'progan/layers.py', 'def __init__(self, *, eps: float = 1e-8) -> None:', 'def __init__(self, *, eps: float = 5e-09) -> None:', ('tests/test_paper_defaults.py',)),
    m('s16-default-mbstd-layer-group', 'progan/layers.py', 'def __init__(self, *, group_size: int = 4,', 'def __init__(self, *, group_size: int = 5,', ('tests/test_paper_defaults.py',)),
    m('s16-default-real-loss-gp-lambda', 'progan/losses.py', 'def discriminator_real_loss(\n    name: str,\n    discriminator: Critic,\n    real: torch.Tensor,\n    fake: torch.Tensor,\n    *,\n    gp_lambda: float = 10.0,',
      'def discriminator_real_loss(\n    name: str,\n    discriminator: Critic,\n    real: torch.Tensor,\n    fake: torch.Tensor,\n    *,\n    gp_lambda: float = 5.0,', ('tests/test_loss_defaults.py',)),
    m('s16-default-loss-drift-epsilon', 'progan/losses.py', 'def discriminator_loss(\n    name: str,\n    discriminator: Critic,\n    real: torch.Tensor,\n    fake: torch.Tensor,\n    *,\n    gp_lambda: float = 10.0,\n    drift_epsilon: float = 0.001,',
      'def discriminator_loss(\n    name: str,\n    discriminator: Critic,\n    real: torch.Tensor,\n    fake: torch.Tensor,\n    *,\n    gp_lambda: float = 10.0,\n    drift_epsilon: float = 0.0005,', ('tests/test_loss_defaults.py',)),
    m('s16-default-penalty-r1-gamma', 'progan/losses.py', 'def discriminator_penalty(\n    name: str,\n    discriminator: Critic,\n    real: torch.Tensor,\n    fake: torch.Tensor,\n    *,\n    gp_lambda: float = 10.0,\n    r1_gamma: float = 10.0,',
      'def discriminator_penalty(\n    name: str,\n    discriminator: Critic,\n    real: torch.Tensor,\n    fake: torch.Tensor,\n    *,\n    gp_lambda: float = 10.0,\n    r1_gamma: float = 5.0,', ('tests/test_loss_defaults.py',)),
    m('s16-default-dragan-c', 'progan/losses.py', 'real: torch.Tensor, *, c: float = 0.5,', 'real: torch.Tensor, *, c: float = 0.25,', ('tests/test_loss_defaults.py',)),
    m('s16-default-gp-target', 'progan/losses.py', 'fake: torch.Tensor, *, target: float = 1.0,', 'fake: torch.Tensor, *, target: float = 0.5,', ('tests/test_loss_defaults.py',)),
    m('blind-w01-sigusr1-ignored', 'progan/training/trainer.py',
      'for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT):\n            signal.signal(sig, self._request_stop)',
      'for sig in (signal.SIGTERM, signal.SIGINT):\n            signal.signal(sig, self._request_stop)',
      ('tests/test_trainer_loop.py::test_each_stop_signal_sent_during_training_saves_a_checkpoint_and_ends_the_run',)),
    m('blind-w03-stale-tmp-dir-not-cleared', 'progan/training/checkpoint.py',
      '        shutil.rmtree(tmp, ignore_errors=True)\n        tmp.mkdir()',
      '        tmp.mkdir()',
      ('tests/test_resume_state.py::test_a_save_killed_midway_leaves_a_tmp_dir_that_the_resumed_runs_save_at_that_kimg_replaces',)),
    m('blind-x01-best-fid-never-recorded', 'progan/training/reporting.py',
      '            self.best_fid = results["fid"]\n            summary =',
      '            summary =',
      ('tests/test_run_reports.py::test_best_is_saved_only_for_an_fid_below_every_earlier_full_resolution_one',
       'tests/test_evaluation.py::test_best_holds_the_lowest_fid_of_the_final_fully_faded_in_resolution')),
    m('blind-w05-wide-64-stylegan-default-loss', 'progan/training/options.py',
      '    ("stylegan_lite", "wide-64"): {**_WIDE_64, "loss": "wgan_gp"},',
      '    ("stylegan_lite", "wide-64"): dict(_WIDE_64),',
      ('tests/test_trainer_options.py::test_the_64_px_recipes_train_both_families_with_wgan_gp',
       'tests/test_training.py::test_wide_64_is_the_campaigns_width_and_recipe')),
]
