"""The boundary sweep's survivors (issue 20; scripts/boundary_sweep.py): a comparison's boundary or a min/max
flipped that no covering fast test noticed, each with a direct test at the bound now (docs/testing.md).
Survivors judged equivalent (or cosmetic) are listed in docs/testing.md without a mutant.
"""
from __future__ import annotations

from mutant_base import Mutant, m

SWEEP: list[Mutant] = [
    # stylegan_lite/config.py: w_dim 1 and mapping_layers 1 are the smallest valid values
    m('sweep-config-w-dim-1-refused', 'stylegan_lite/config.py', 'if self.w_dim < 1 or', 'if self.w_dim <= 1 or',
      ('tests/test_networks.py::test_model_configs_refuse_what_no_network_can_be_built_from',)),
    m('sweep-config-mapping-layers-1-refused', 'stylegan_lite/config.py', 'self.mapping_layers < 1:', 'self.mapping_layers <= 1:',
      ('tests/test_networks.py::test_model_configs_refuse_what_no_network_can_be_built_from',)),
    # app/directions.py: k == latent size is the whole eigenbasis; the CLI's ", ..." only beyond five eigenvalues
    m('sweep-directions-k-equal-dim-refused', 'app/directions.py', 'if not 1 <= k <= dim:', 'if not 1 <= k < dim:',
      ('tests/test_directions.py::test_factorize_takes_k_up_to_the_latent_size',)),
    m('sweep-directions-ellipsis-at-five', 'app/directions.py', "if directions.k > 5 else", "if directions.k >= 5 else",
      ('tests/test_directions.py::test_cli_lists_at_most_five_eigenvalues_and_marks_the_rest',)),
    # app/generate.py, app/interpolation.py, app/mixing.py: padding is max(0, n); progress counts frames done
    # per batch and the CLI's bar closes at done == total; the refusal names every range the model has
    m('sweep-generate-mix-padding-min', 'app/generate.py',
      'mixing_figure(row_images, col_images, cells, padding=max(0, args.padding))',
      'mixing_figure(row_images, col_images, cells, padding=min(0, args.padding))',
      ('tests/test_cli_option_paths.py::test_mix_padding_puts_white_gaps_between_the_cells',)),
    m('sweep-generate-onnx-padding-min', 'app/generate.py',
      'make_grid(images, columns=columns, padding=max(0, args.padding)).save(args.out)',
      'make_grid(images, columns=columns, padding=min(0, args.padding)).save(args.out)',
      ('tests/test_onnx.py::test_generate_cli_from_onnx_pads_the_grid',)),
    m('sweep-generate-bar-not-closed-at-total', 'app/generate.py', '        if done >= total:', '        if done > total:',
      ('tests/test_cli_option_paths.py::test_interpolate_progress_counts_frames_per_batch_and_closes_the_bar_at_the_end',)),
    m('sweep-interpolation-progress-max', 'app/interpolation.py', 'progress(min(start + batch_size, frames), frames)',
      'progress(max(start + batch_size, frames), frames)',
      ('tests/test_cli_option_paths.py::test_interpolate_progress_counts_frames_per_batch_and_closes_the_bar_at_the_end',)),
    m('sweep-mixing-present-ranges-skip-lowest', 'app/mixing.py', 'return any(low <= r and', 'return any(low < r and',
      ('tests/test_app.py::test_style_layers_follow_the_paper_ranges',)),
    # app/sampling.py, app/projection/projector.py: cutoff == num_ws and steps == 100000 are the last allowed
    m('sweep-sampling-cutoff-num-ws-refused', 'app/sampling.py', 'and not 0 <= cutoff <= generator.num_ws:',
      'and not 0 <= cutoff < generator.num_ws:', ('tests/test_app_refusals.py::test_the_bounds_themselves_are_accepted',)),
    m('sweep-projector-steps-100000-refused', 'app/projection/projector.py', 'if not 1 <= self.steps <= 100_000:',
      'if not 1 <= self.steps < 100_000:', ('tests/test_app_refusals.py::test_the_bounds_themselves_are_accepted',)),
    # app/projection/loss.py: ``levels`` band-pass levels, not one more
    m('sweep-loss-pyramid-one-level-too-many', 'app/projection/loss.py', '(levels is None or len(out) < levels)',
      '(levels is None or len(out) <= levels)',
      ('tests/test_projection.py::test_laplacian_pyramid_reconstructs_and_lap1_is_a_distance',)),
    # app/ui.py: the status lists up to twelve seeds in full; ", ... (n seeds)" only beyond
    m('sweep-ui-seed-text-count-at-twelve', 'app/ui.py', ' seeds)" if len(seeds) > 12 else "")',
      ' seeds)" if len(seeds) >= 12 else "")',
      ('tests/test_app_launch.py::test_sample_status_lists_twelve_seeds_then_the_count',)),
    # app/ui.py: the seed box opens on at most 16 seeds
    m('sweep-ui-first-seeds-max', 'app/ui.py', 'count = min(16, shared.limits.images_allowed',
      'count = max(16, shared.limits.images_allowed',
      ('tests/test_app_launch.py::test_seed_box_and_steps_open_on_at_most_sixteen_seeds_and_200_steps',)),
    m('sweep-projection-ui-steps-default-max', 'app/projection/ui.py', 'value=min(200, limits.max_projection_steps)',
      'value=max(200, limits.max_projection_steps)',
      ('tests/test_app_launch.py::test_seed_box_and_steps_open_on_at_most_sixteen_seeds_and_200_steps',)),
]
