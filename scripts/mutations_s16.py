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
    m('blind-w10-webp-out-refused', 'app/generate.py',
      '_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")',
      '_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")',
      ('tests/test_generate_cli.py::test_image_commands_write_every_documented_format',)),
    m('blind-w12-oserror-not-a-load-error', 'app/models.py',
      'LOAD_ERRORS = (ValueError, OSError)',
      'LOAD_ERRORS = (ValueError,)',
      ('tests/test_app_launch.py::test_a_missing_weights_file_is_one_line_and_status_2',
       'tests/test_app_model_switch.py::'
       'test_a_missing_file_or_an_unreachable_url_is_a_load_error_and_the_session_keeps_its_model')),
    m('blind-x12-onnx-out-folder-not-made', 'app/generate.py',
      '    seeds = parse_seeds(args.seeds, max_count=limits.images_allowed(model.resolution))\n'
      '    args.out.parent.mkdir(parents=True, exist_ok=True)\n',
      '    seeds = parse_seeds(args.seeds, max_count=limits.images_allowed(model.resolution))\n',
      ('tests/test_onnx.py::test_generate_cli_writes_into_an_out_folder_that_does_not_exist_yet',)),
    m('blind-x15-w-walk-ignores-loop', 'app/interpolation.py',
      'path = keyframe_path(generator.mapping(z_keys), frames, method="lerp", loop=loop)',
      'path = keyframe_path(generator.mapping(z_keys), frames, method="lerp")',
      ('tests/test_app_event_options.py::test_interpolate_event_draws_the_method_space_and_loop_it_is_given',
       'tests/test_generate_cli.py::test_interpolate_loop_returns_through_the_seeds_to_the_first')),
    m('blind-w14-noise-maps-not-moved-to-device', 'app/sampling.py',
      '        device = ws.device\n        return generator.synthesis(ws, noise=[n.to(device) for n in noise_tensors])\n',
      '        return generator.synthesis(ws, noise=list(noise_tensors))\n',
      ('tests/test_device_placement.py::test_the_apps_random_noise_maps_reach_the_synthesis_on_the_generators_device',)),
]
