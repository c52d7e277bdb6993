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
    # blind set W25/X23/X25: a default no test left at its value, a failure path the tests never took
    m('blind-w25-timelapse-temp-gif-left', 'scripts/timelapse.py',
      '        for tmp in (tmp_mp4, tmp_gif):\n            tmp.unlink(missing_ok=True)',
      '        for tmp in (tmp_mp4,):\n            tmp.unlink(missing_ok=True)',
      ('tests/test_timelapse.py::test_a_run_that_fails_part_way_leaves_neither_temporary_file',)),
    m('blind-x23-timelapse-fps-default', 'scripts/timelapse.py',
      'parser.add_argument("--fps", type=float, default=12.0,', 'parser.add_argument("--fps", type=float, default=24.0,',
      ('tests/test_timelapse.py::test_the_default_fps_is_12',)),
    m('blind-x25-finetune-benchmark-freeze-d-default', 'scripts/finetune_benchmark.py',
      'parser.add_argument("--freeze-d", type=int, default=2,', 'parser.add_argument("--freeze-d", type=int, default=1,',
      ('tests/test_finetune_benchmark.py::test_the_freeze_d_arm_freezes_two_d_blocks_by_default',)),
]
