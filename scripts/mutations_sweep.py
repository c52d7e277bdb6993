"""The boundary sweep's survivors (issue 20; scripts/boundary_sweep.py): a comparison's boundary or a min/max
flipped that no covering fast test noticed, each with a direct test at the bound now (docs/testing.md).
Survivors judged equivalent (or cosmetic) are listed in docs/testing.md without a mutant.
"""
from __future__ import annotations

from mutant_base import Mutant, m

SWEEP: list[Mutant] = [
    # progan/metrics/evaluation.py
    m('sweep-evaluation-two-generated', 'progan/metrics/evaluation.py', 'if num < 2 or num_real < 2:',
      'if num <= 2 or num_real < 2:', ('tests/test_evaluation_bounds.py::test_two_generated_and_two_real_images_are_scored_and_one_is_refused',)),
    m('sweep-evaluation-two-real', 'progan/metrics/evaluation.py', 'if num < 2 or num_real < 2:',
      'if num < 2 or num_real <= 2:', ('tests/test_evaluation_bounds.py::test_two_generated_and_two_real_images_are_scored_and_one_is_refused',)),
    m('sweep-evaluation-shard-one-per-process', 'progan/metrics/evaluation.py', 'if num < accelerator.num_processes:',
      'if num <= accelerator.num_processes:',
      ('tests/test_evaluation_bounds.py::test_a_shard_needs_one_image_per_process_and_as_many_as_processes_is_enough',)),
    m('sweep-evaluation-agree-always-true', 'progan/metrics/evaluation.py', 'from_process=0)[0] > 0)',
      'from_process=0)[0] >= 0)', ('tests/test_evaluation_bounds.py::test_the_main_processs_cache_flag_reaches_every_process_as_it_was',)),
    # progan/metrics/features.py
    m('sweep-features-count-max', 'progan/metrics/features.py', 'else min(num, len(images))',
      'else max(num, len(images))', ('tests/test_metrics_features.py::test_compute_features_of_a_dataset_reads_only_the_first_num_images',)),
    m('sweep-features-one-batch-too-many', 'progan/metrics/features.py', 'and seen >= num:', 'and seen > num:',
      ('tests/test_metrics_features.py::test_compute_features_stops_pulling_batches_once_num_images_are_seen',)),
    m('sweep-features-real-two', 'progan/metrics/features.py', '    if count < 2:', '    if count <= 2:',
      ('tests/test_metrics_features.py::test_real_statistics_of_exactly_two_images_and_one_is_refused',)),
    m('sweep-features-index-num-accepted', 'progan/metrics/features.py', 'not 0 <= i < num for',
      'not 0 <= i <= num for', ('tests/test_metrics_features.py::test_generated_features_indices_lie_in_zero_to_num',)),
    # progan/metrics/scores.py
    m('sweep-scores-two-samples', 'progan/metrics/scores.py', '    if x.shape[0] < 2:', '    if x.shape[0] <= 2:',
      ('tests/test_metrics.py::test_feature_statistics_of_two_samples_and_one_is_refused',)),
    m('sweep-scores-one-kid-subset', 'progan/metrics/scores.py', 'if num_subsets < 1:', 'if num_subsets <= 1:',
      ('tests/test_metrics.py::test_kid_with_one_subset_is_the_unbiased_mmd_of_the_whole_sets_and_zero_subsets_are_refused',)),
    # progan/metrics/floor.py
    m('sweep-floor-two-held-out', 'progan/metrics/floor.py', 'if not 2 <= num_held_out', 'if not 2 < num_held_out',
      ('tests/test_real_floor.py::test_the_held_out_count_leaves_at_least_two_images_on_each_side',)),
    m('sweep-floor-two-reference', 'progan/metrics/floor.py', 'num_held_out <= num - 2:', 'num_held_out < num - 2:',
      ('tests/test_real_floor.py::test_the_held_out_count_leaves_at_least_two_images_on_each_side',)),
    m('sweep-floor-kid-subset-max', 'progan/metrics/floor.py', 'kid_subset_size=min(kid_subset_size',
      'kid_subset_size=max(kid_subset_size',
      ('tests/test_real_floor.py::test_kid_subsets_of_the_floor_are_the_smallest_of_the_size_asked_and_both_sides',)),
    # progan/metrics/nearest.py
    m('sweep-nearest-exclude-self-two-rows', 'progan/metrics/nearest.py', 'or reference.shape[0] < 2):',
      'or reference.shape[0] <= 2):', ('tests/test_nearest.py::test_nearest_neighbours_at_their_smallest_sets',)),
    m('sweep-nearest-one-reference-row', 'progan/metrics/nearest.py', 'if reference.shape[0] < 1:',
      'if reference.shape[0] <= 1:', ('tests/test_nearest.py::test_nearest_neighbours_at_their_smallest_sets',)),
    m('sweep-nearest-two-reals', 'progan/metrics/nearest.py', 'if real.shape[0] < 2:', 'if real.shape[0] <= 2:',
      ('tests/test_nearest.py::test_memorization_of_two_reals_counts_samples_strictly_below_the_threshold',)),
    m('sweep-nearest-at-threshold-counted', 'progan/metrics/nearest.py', '(distances < threshold)',
      '(distances <= threshold)', ('tests/test_nearest.py::test_memorization_of_two_reals_counts_samples_strictly_below_the_threshold',)),
    m('sweep-nearest-one-sample', 'progan/metrics/nearest.py', 'if num < 1 or pairs < 0:', 'if num <= 1 or pairs < 0:',
      ('tests/test_nearest.py::test_check_generator_takes_one_sample_and_zero_pairs_and_refuses_less',)),
    m('sweep-nearest-zero-pairs', 'progan/metrics/nearest.py', 'if num < 1 or pairs < 0:', 'if num < 1 or pairs <= 0:',
      ('tests/test_nearest.py::test_check_generator_takes_one_sample_and_zero_pairs_and_refuses_less',)),
    # progan/metrics/per_class.py
    m('sweep-per-class-label-count-accepted', 'progan/metrics/per_class.py', 'if not 0 <= label < len',
      'if not 0 <= label <= len', ('tests/test_per_class.py::test_class_indices_run_from_zero_to_one_below_the_class_count',)),
    m('sweep-per-class-two-reals-skipped', 'progan/metrics/per_class.py', 'if reals < 2:', 'if reals <= 2:',
      ('tests/test_per_class.py::test_a_class_of_two_images_is_scored_and_a_class_of_one_is_skipped',)),
    # progan/minibatch_discrimination.py
    m('sweep-minibatch-one-kernel', 'progan/minibatch_discrimination.py', 'if kernels < 1 or dim < 1:',
      'if kernels <= 1 or dim < 1:', ('tests/test_tricks.py::test_minibatch_discrimination_option_is_parsed_and_checked',)),
    m('sweep-minibatch-dimension-one', 'progan/minibatch_discrimination.py', 'if kernels < 1 or dim < 1:',
      'if kernels < 1 or dim <= 1:', ('tests/test_tricks.py::test_minibatch_discrimination_option_is_parsed_and_checked',)),
    # progan/networks.py (and StyleGAN-lite's fade-in, the same check)
    m('sweep-networks-stage-count-accepted', 'progan/networks.py', 'if not 0 <= stage < config.num_stages:',
      'if not 0 <= stage <= config.num_stages:', ('tests/test_networks.py::test_stages_run_from_zero_to_one_below_the_stage_count',)),
    m('sweep-networks-d-skip-at-alpha-one', 'progan/networks.py', '            if alpha < 1.0:',
      '            if alpha <= 1.0:', ('tests/test_networks.py::test_a_finished_fade_in_leaves_the_previous_stages_rgb_layers_without_gradient',)),
    m('sweep-networks-g-skip-at-alpha-one', 'progan/networks.py', '        if alpha >= 1.0:', '        if alpha > 1.0:',
      ('tests/test_networks.py::test_a_finished_fade_in_leaves_the_previous_stages_rgb_layers_without_gradient',)),
    m('sweep-stylegan-g-skip-at-alpha-one', 'stylegan_lite/networks.py', 'or alpha >= 1.0:', 'or alpha > 1.0:',
      ('tests/test_networks.py::test_a_finished_fade_in_leaves_the_previous_stages_rgb_layers_without_gradient',)),
    # progan/hub/export.py (cosmetic: the ellipsis after the first 5 keys)
    m('sweep-export-missing-ellipsis-at-five', 'progan/hub/export.py', "if len(missing) > 5", "if len(missing) >= 5",
      ('tests/test_export.py::test_a_key_mismatch_lists_five_keys_and_marks_more_with_an_ellipsis',)),
    m('sweep-export-extra-ellipsis-at-five', 'progan/hub/export.py', "if len(extra) > 5", "if len(extra) >= 5",
      ('tests/test_export.py::test_a_key_mismatch_lists_five_keys_and_marks_more_with_an_ellipsis',)),
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
    # app/projection/ui.py: an upload of exactly max_upload_bytes is read; w_avg from 1000..10,000 samples
    m('sweep-projection-ui-upload-at-cap-refused', 'app/projection/ui.py', 'if size > limits.max_upload_bytes:',
      'if size >= limits.max_upload_bytes:',
      ('tests/test_app_project.py::test_upload_exactly_at_the_byte_cap_is_accepted_one_byte_more_refused',)),
    m('sweep-projection-ui-w-avg-samples-cap-max', 'app/projection/ui.py', 'w_avg_samples=min(10_000, max(1000,',
      'w_avg_samples=max(10_000, max(1000,',
      ('tests/test_app_project.py::test_w_avg_samples_scale_with_the_model_between_1000_and_10000',)),
    m('sweep-projection-ui-w-avg-samples-floor-min', 'app/projection/ui.py', 'w_avg_samples=min(10_000, max(1000,',
      'w_avg_samples=min(10_000, min(1000,',
      ('tests/test_app_project.py::test_w_avg_samples_scale_with_the_model_between_1000_and_10000',)),
    # app/projection/cli.py: a file of exactly MAX_FILE_BYTES is read
    m('sweep-projection-cli-file-at-cap-refused', 'app/projection/cli.py',
      'if args.image.stat().st_size > MAX_FILE_BYTES:', 'if args.image.stat().st_size >= MAX_FILE_BYTES:',
      ('tests/test_projection_cli_options.py::test_a_file_exactly_at_the_size_cap_is_read_one_byte_more_refused',)),
    # app/projection/projector.py: the noise penalty's last level is 8 px; the w-noise ramps down to 0 and stays
    m('sweep-projector-noise-penalty-level-below-8', 'app/projection/projector.py', 'if n.shape[-1] <= 8:',
      'if n.shape[-1] < 8:', ('tests/test_projection.py::test_noise_penalty_stops_at_the_8_px_level',)),
    m('sweep-projector-w-noise-ramp-min', 'app/projection/projector.py', 'max(0.0, 1.0 - t / options.noise_ramp)',
      'min(0.0, 1.0 - t / options.noise_ramp)',
      ('tests/test_projection.py::test_w_noise_decays_to_zero_at_the_ramp_and_stays_zero',)),
    # data_prep/dataset.py: index -len(dataset) is the first image
    m('sweep-dataset-minus-len-refused', 'data_prep/dataset.py', 'if not -len(self) <= index < len(self):',
      'if not -len(self) < index < len(self):', ('tests/test_data_prep_dataset.py::test_items_are_contiguous_uint8_chw',)),
    # data_prep/decode.py: exactly max_pixels is decoded
    m('sweep-decode-max-pixels-exact-refused', 'data_prep/decode.py', 'if width * height > max_pixels:',
      'if width * height >= max_pixels:', ('tests/test_data_prep_decode.py::test_max_pixels_limit',)),
    # data_prep/pipeline.py: max_bytes 1 is a cap; workers at least 1 and otherwise as asked; chunk 1..32
    m('sweep-pipeline-max-bytes-one-refused', 'data_prep/pipeline.py', 'if max_bytes < 1:', 'if max_bytes <= 1:',
      ('tests/test_data_prep_limits.py::test_max_bytes_of_one_is_a_cap_and_zero_is_refused',)),
    m('sweep-pipeline-workers-min', 'data_prep/pipeline.py', 'else max(1, int(workers))', 'else min(1, int(workers))',
      ('tests/test_data_prep_pipeline.py::test_workers_are_at_least_one_and_otherwise_as_asked',)),
    m('sweep-pipeline-chunk-floor-min', 'data_prep/pipeline.py', 'chunk = max(1, min(32,', 'chunk = min(1, min(32,',
      ('tests/test_data_prep_pipeline.py::test_chunks_hold_about_4_mib_of_pixels_and_at_most_32_images',)),
    m('sweep-pipeline-chunk-cap-max', 'data_prep/pipeline.py', 'chunk = max(1, min(32,', 'chunk = max(1, max(32,',
      ('tests/test_data_prep_pipeline.py::test_chunks_hold_about_4_mib_of_pixels_and_at_most_32_images',)),
    # data_prep/sources.py: an archive member of exactly max_bytes is read
    m('sweep-sources-tar-member-at-cap-skipped', 'data_prep/sources.py', 'if member.size > max_bytes:',
      'if member.size >= max_bytes:', ('tests/test_data_prep_limits.py::test_a_tar_or_zip_member_of_exactly_the_cap_is_read_one_byte_less_cap_skips_it',)),
    m('sweep-sources-zip-member-at-cap-skipped', 'data_prep/sources.py', 'if declared > max_bytes:',
      'if declared >= max_bytes:', ('tests/test_data_prep_limits.py::test_a_tar_or_zip_member_of_exactly_the_cap_is_read_one_byte_less_cap_skips_it',)),
]
