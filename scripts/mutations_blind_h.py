"""The seventh, eighth and ninth blind passes (issue 20; H01-H20, 17 of 20 caught; I01-I20, 16 of 20; J01-J20,
nine survivors in the test files a maintainer would name): their survivors, each with a direct test now, and the
bound edge next to one of them (docs/testing.md).
The tenth set (K01-K20, 16 of 20 caught in the files it named): its two app survivors here (K10, K11).
"""
from __future__ import annotations

from mutant_base import Mutant, m

BLIND_H: list[Mutant] = [
    m('blind-h05-projector-w-std-per-coordinate', 'app/projection/projector.py',
      'w_std = float(((w - w_avg).square().sum() / len(w)).sqrt())',
      'w_std = float((w - w_avg).square().mean().sqrt())',
      ('tests/test_projection.py::test_w_std_is_the_typical_length_of_w_minus_its_mean_over_all_w_dims',)),
    m('blind-h16-header-bound-ignores-length-bytes', 'progan/hub/download.py',
      '0 < struct.unpack("<Q", head[:8])[0] <= size - 8',
      '0 < struct.unpack("<Q", head[:8])[0] <= size',
      ('tests/test_hub.py::test_a_body_cut_inside_its_safetensors_header_is_not_cached',)),
    m('blind-h20-export-temp-left-on-ctrl-c', 'progan/hub/export.py',
      '    except BaseException:\n        Path(tmp).unlink(missing_ok=True)',
      '    except Exception:\n        Path(tmp).unlink(missing_ok=True)',
      ('tests/test_export.py::test_ctrl_c_during_an_export_write_leaves_the_old_files_and_no_temp_file',)),
    m('blind-h16-whole-body-header-refused', 'progan/hub/download.py',
      '0 < struct.unpack("<Q", head[:8])[0] <= size - 8', '0 < struct.unpack("<Q", head[:8])[0] < size - 8',
      ('tests/test_hub.py::test_a_header_that_fills_the_whole_body_is_a_complete_file',)),
    # the eighth blind set (I01-I20, 16 of 20 caught in the files it listed): three of its four survivors
    m('blind-i04-video-factor-rounded-down', 'app/video.py',
      '    factor = max(1, math.ceil(min_size / min(frames.shape[1:3])))',
      '    factor = max(1, min_size // min(frames.shape[1:3]))',
      ('tests/test_app_edges.py::test_videos_are_enlarged_by_the_smallest_whole_factor_reaching_min_size',)),
    m('blind-i14-per-class-ignores-psi', 'evaluate.py',
      '                                       cache_dir=cache_root() / "fid-stats", batch_size=args.batch, seed=args.seed,\n                                       generator_kwargs=kwargs, background=background)',
      '                                       cache_dir=cache_root() / "fid-stats", batch_size=args.batch, seed=args.seed,\n                                       background=background)',
      ('tests/test_per_class.py::test_evaluate_cli_per_class_scores_the_truncated_generator_it_is_given',)),
    m('blind-i15-rgba-composite-truncates', 'progan/images.py',
      '    return ((alpha * rgb + (255 - alpha) * bg + 127) // 255).to(torch.uint8)',
      '    return ((alpha * rgb + (255 - alpha) * bg) // 255).to(torch.uint8)',
      ('tests/test_channels.py::test_rgba_compositing_rounds_to_nearest_at_every_alpha',)),
    # the ninth blind set (J01-J20): its nine survivors in the test files a maintainer would name
    m('blind-j01-before-after-loses-its-gap', 'app/projection/target.py',
      'canvas.paste(Image.fromarray(pair[1]), (w + gap, 0))', 'canvas.paste(Image.fromarray(pair[1]), (w, 0))',
      ('tests/test_projection.py::test_before_after_puts_target_left_gap_white_and_reconstruction_right',)),
    m('blind-j15-ssim-window-too-narrow', 'progan/metrics/reconstruction.py',
      '/ (2 * sigma ** 2))', '/ (sigma ** 2))',
      ('tests/test_projection.py::test_ssim_of_one_white_pixel_against_black_weighs_it_by_a_sigma_1_5_gaussian',)),
    m('blind-j03-seed-range-filling-the-cap-refused', 'app/sampling.py',
      'if stop - start + 1 + len(seeds) > max_count:', 'if stop - start + 1 + len(seeds) >= max_count:',
      ('tests/test_app_refusals.py::test_seeds_that_fill_max_count_exactly_are_drawn_and_one_more_is_refused',)),
    m('blind-j04-onnx-refuses-cutoff-num-ws', 'app/onnx/export.py',
      'not 0 <= cutoff <= generator.num_ws:', 'not 0 <= cutoff < generator.num_ws:',
      ('tests/test_onnx_refusals.py::test_the_export_takes_cutoff_num_ws_as_every_layer_and_refuses_one_past_either_end',)),
    m('blind-j08-pruning-keeps-one-more', 'progan/training/checkpoint.py',
      'for old in list_checkpoints(root)[:-keep]:', 'for old in list_checkpoints(root)[:-keep - 1]:',
      ('tests/test_resume_state.py::test_keep_checkpoints_leaves_exactly_the_newest_keep_after_every_save',)),
    m('blind-j10-pad-offsets-swapped', 'data_prep/resize.py',
      'canvas.paste(image, ((side - width) // 2, (side - height) // 2))',
      'canvas.paste(image, ((side - height) // 2, (side - width) // 2))',
      ('tests/test_data_prep_resize.py::test_pad_centres_a_landscape_or_portrait_image_pixel_exactly',)),
    m('blind-j12-class-counts-drop-trailing-empty', 'data_prep/dataset.py',
      'np.bincount(self.labels, minlength=len(self.class_names))', 'np.bincount(self.labels)',
      ('tests/test_data_prep_dataset.py::test_class_counts_has_one_entry_per_class_name_zero_for_trailing_empty_classes',)),
    m('blind-j14-labels-by-batch-position', 'progan/metrics/features.py',
      'kwargs["labels"] = labels[torch.as_tensor(list(chunk), dtype=torch.long)].to(device)',
      'kwargs["labels"] = labels[start : start + batch_size].to(device)',
      ('tests/test_evaluation_order.py::test_sharded_conditional_features_use_each_samples_own_label',)),
    # J19: evaluate_generator caps num_real again, so the scores are the same, but the JSON recorded the 100 asked for
    m('blind-j19-num-real-not-capped-in-the-summary', 'evaluate.py',
      'num_real = min(args.num_real or len(dataset), len(dataset))', 'num_real = args.num_real or len(dataset)',
      ('tests/test_evaluation_options.py::test_evaluate_cli_num_real_above_the_dataset_size_scores_and_records_the_dataset_size',)),
    # the tenth blind set (K01-K20, 16 of 20 caught): a picture transposed into the projection target, and
    # ONNX noise fed by name order (noise_10 before noise_2) instead of layer order
    m('blind-k10-projection-target-transposed', 'app/projection/projector.py',
      '.permute(2, 0, 1).float() - 128.0) / 127.5', '.permute(2, 1, 0).float() - 128.0) / 127.5',
      ('tests/test_projection.py::test_image_to_target_keeps_rows_columns_and_channels_in_place',)),
    m('blind-k11-onnx-noise-in-name-order', 'app/onnx/sampling.py',
      'names = [n for n in self.inputs if n.startswith("noise_")]',
      'names = sorted(n for n in self.inputs if n.startswith("noise_"))',
      ('tests/test_onnx.py::test_random_noise_goes_to_noise_inputs_in_layer_order_past_ten_layers',)),
]
