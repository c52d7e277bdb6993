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
    # fix16d: training blind set survivors W15, W16, W21, X08, X14 (each with its direct test)
    m('blind-w15-gif-ignored', 'data_prep/sources.py',
      '".jpg .jpeg .jpe .jfif .png .gif .bmp', '".jpg .jpeg .jpe .jfif .png .bmp',
      ('tests/test_data_prep_sources.py::test_every_image_extension_is_listed_in_folders_zips_and_tars_in_either_case',)),
    m('blind-w16-sigterm-handler-not-installed', 'data_prep/__main__.py',
      '    signal.signal(signal.SIGTERM, _exit_on_sigterm)\n', '',
      ('tests/test_data_prep_cli.py::test_sigterm_cleans_up_says_interrupted_and_exits_130',)),
    m('blind-w21-hf-weights-not-remote', 'evaluate.py',
      '("http://", "https://", "hf://"))', '("http://", "https://"))',
      ('tests/test_evaluate_cli.py::test_remote_weights_of_every_scheme_need_allow_remote_weights',)),
    m('blind-w21-remote-scheme-case-sensitive', 'evaluate.py',
      'remote = args.weights.lower().startswith(', 'remote = args.weights.startswith(',
      ('tests/test_evaluate_cli.py::test_remote_weights_of_every_scheme_need_allow_remote_weights',)),
    m('blind-x08-generator-noise-default-const', SG,
      '        noise_mode: NoiseMode = "random",\n        update_w_avg', '        noise_mode: NoiseMode = "const",\n        update_w_avg',
      ('tests/test_networks.py::test_random_noise_is_drawn_for_each_sample_of_a_batch',)),
    m('blind-x14-progan-z-off-sphere', 'app/projection/projector.py',
      '            if not stylegan:\n                latent *= scale / latent.norm().clamp_min(1e-8)\n', '',
      ('tests/test_projection.py::test_progan_projection_keeps_z_on_the_sphere_of_radius_sqrt_dim_after_every_step',)),
]
