"""The first four blind bug-planting passes (sets B to E; docs/testing.md): the bugs no test caught, or caught
only indirectly, each with a direct test now. The later blind sets' survivors are in mutations_blind_h.py.
"""
from __future__ import annotations

from mutant_base import Mutant, m, CK, NET, RNG_T, SAMP, SG, UI

# The blind bug-planting exercise: two bugs no test caught (the Generate event's cutoff, the format
# version check) and two caught only indirectly (per-seed noise, by an ONNX comparison; the per-rank
# RNG file, by a slow resume test); each now has a direct test of its own.
BLIND: list[Mutant] = [
    m("ui-sample-ignores-cutoff", UI, "images = generate_images(generator, seed_list, psi=psi, cutoff=cutoff, noise=noise,",
      "images = generate_images(generator, seed_list, psi=psi, noise=noise,",
      ("tests/test_truncation_paths.py::test_sample_event_honours_the_cutoff_slider",)),
    m("export-format-version-unchecked", "progan/hub/export.py",
      "    if header.get(\"format_version\") != str(FORMAT_VERSION):\n"
      "        raise PretrainedError(f\"{path}: unsupported format_version {header.get('format_version')!r}\")\n", "",
      ("tests/test_export.py::test_unknown_format_version_is_refused",)),
    m("seed-noise-repeats-z", SAMP,
      "        torch.randn(1, generator.config.latent_dim, generator=rng)  # skip z: noise follows it in the stream\n", "",
      ("tests/test_app.py::test_seed_noise_continues_each_seeds_stream_after_z",)),
    m("checkpoint-rng-name-on-load", CK, 'rank_file = path / f"rng-rank{rank}.pt"', 'rank_file = path / f"rng-{rank}.pt"',
      RNG_T),
    m("checkpoint-rng-name-on-save", CK, '_save_synced(rank_state, tmp / f"rng-rank{rank}.pt")',
      '_save_synced(rank_state, tmp / f"rng-{rank}.pt")', RNG_T),
]

# The second blind bug-planting pass: three survivors (mixing without the labels, Lap1's level weights,
# the ONNX rounding) and two caught only by accident (a crop that crashed PIL rather than a centring
# check; --background dropped, seen only through an RNG bug since fixed); each has a direct test now.
BLIND += [
    m("blind-c10-mixing-labels", SG, "ws = self.mix(ws, self.broadcast(self.map(mix_z, labels)), crossover)",
      "ws = self.mix(ws, self.broadcast(self.map(mix_z)), crossover)",
      ("tests/test_conditional.py::test_style_mixing_maps_both_latents_with_the_labels",
       NET + "test_style_mixing_uses_each_w_where_it_should")),
    m("blind-c14-lap1-weights", "app/projection/loss.py", "total = total + (a - b).abs().mean() * 4.0 ** -j",
      "total = total + (a - b).abs().mean() * 2.0 ** -j",
      ("tests/test_projection.py::test_lap1_weights_level_j_by_four_to_the_minus_j",
       "tests/test_projection.py::test_laplacian_pyramid_reconstructs_and_lap1_is_a_distance")),
    m("blind-c15-onnx-rounding", "app/onnx/sampling.py", "images_to_uint8(torch.from_numpy(images))",
      "torch.from_numpy(images * 127.5 + 127.5).clamp(0, 255).to(torch.uint8)", ("tests/test_onnx.py::test_onnx_images_round_like_the_app",)),
    m("blind-c16-crop-offsets-swapped", "data_prep/resize.py", "left, top = (width - side) // 2, (height - side) // 2",
      "left, top = (height - side) // 2, (width - side) // 2",
      ("tests/test_data_prep_decode.py::test_center_crop_takes_the_central_square",
       "tests/test_data_prep_decode.py::test_center_crop_and_pad")),
    m("blind-c20-background-dropped", "evaluate.py", "progress=acc.is_local_main_process, background=background)",
      "progress=acc.is_local_main_process)",
      ("tests/test_channels.py::test_evaluate_cli_background_reaches_the_metric",)),
]

# The third blind pass (20 bugs, 13 caught): the seven survivors, each with a direct test now. Four are
# the pattern of the earlier passes (a value passed through a layer with no arrival check: the mapping
# lr multiplier, --xflip into the dataset, a saved best_fid, a documented default), two are edges of a
# bound (psi above 1, the capped read's one extra byte) and one an error path (the export's temp file).
BLIND += [
    m("blind-d05-best-fid-not-resumed", "progan/training/resume.py",
      'self.best_fid = state.get("best_fid", math.inf)', "self.best_fid = math.inf",
      ("tests/test_resume_state.py::test_every_saved_entry_arrives_back_on_resume",)),
    m("blind-d07-mapping-lr-multiplier", "stylegan_lite/layers.py",
      "EqualizedLinear(dims[i], dims[i + 1], lr_multiplier=lr_multiplier) for i in range(num_layers)",
      "EqualizedLinear(dims[i], dims[i + 1]) for i in range(num_layers)",
      (NET + "test_the_mapping_network_learns_at_its_lr_multiplier",)),
    m("blind-d10-psi-above-one-ignored", SG, "if not isinstance(psi, torch.Tensor) and psi == 1.0:",
      "if not isinstance(psi, torch.Tensor) and psi >= 1.0:", ("tests/test_truncation_paths.py",)),
    m("blind-d13-capped-read-short", "data_prep/sources.py", "data = handle.read(max_bytes + 1)",
      "data = handle.read(max_bytes)",
      ("tests/test_data_prep_limits.py::test_a_file_longer_than_its_size_said_is_still_capped",)),
    m("blind-d15-grid-default-noise", "app/generate.py", 'noise=args.noise or "random",', 'noise=args.noise or "fixed",',
      ("tests/test_generate_cli.py::test_each_command_draws_its_documented_default_noise",)),
    m("blind-d16-export-temp-left", "progan/hub/export.py", "        Path(tmp).unlink(missing_ok=True)\n", "",
      ("tests/test_export.py::test_a_failed_export_write_leaves_the_old_files_and_no_temp_file",)),
    m("blind-d17-xflip-not-passed", "train.py", "open_dataset(path, resolution, xflip=config.xflip, with_labels",
      "open_dataset(path, resolution, with_labels",
      ("tests/test_conditional.py::test_train_py_opens_the_data_with_its_xflip_and_cond",)),
]

# The fourth blind pass (20 bugs): six of its eleven survivors, each with a direct test now. Two were
# features tested only apart (truncation with style mixing, random noise within one batch), two
# layers whose tests used the layer itself as the reference (the conditional mapping, AdaIN's A),
# and two pass-throughs that no test reached (evaluate.py --seed for the metrics, the export script).
BLIND += [
    m("blind-e06-truncate-before-mixing", SG,
      "        ws = self.broadcast(w)                                            # [N, num_ws, w_dim]\n"
      "        if mix_z is not None:\n"
      "            if crossover is None:\n"
      "                raise ValueError(\"mix_z needs a crossover layer\")\n"
      "            ws = self.mix(ws, self.broadcast(self.map(mix_z, labels)), crossover)  # same class (stylegan2-ada)\n"
      "        ws = self.truncate(ws, psi=psi, cutoff=cutoff)\n",
      "        ws = self.truncate(self.broadcast(w), psi=psi, cutoff=cutoff)    # [N, num_ws, w_dim]\n"
      "        if mix_z is not None:\n"
      "            if crossover is None:\n"
      "                raise ValueError(\"mix_z needs a crossover layer\")\n"
      "            ws = self.mix(ws, self.broadcast(self.map(mix_z, labels)), crossover)  # same class (stylegan2-ada)\n",
      (NET + "test_truncation_applies_to_the_mixed_in_layers_too",)),
    m("blind-e07-conditional-mapping-raw-z", "stylegan_lite/layers.py",
      "x = torch.cat([x, self.embed(labels).to(x.dtype)], dim=1)     # [N, latent_dim + w_dim]",
      "x = torch.cat([z, self.embed(labels).to(x.dtype)], dim=1)     # [N, latent_dim + w_dim]",
      ("tests/test_layers.py::test_conditional_mapping_reads_the_normalized_z_and_embedding",)),
    m("blind-e08-one-noise-map-per-batch", SG,
      "return torch.randn(x.shape[0], 1, r, r, device=x.device, dtype=x.dtype)",
      "return torch.randn(1, 1, r, r, device=x.device, dtype=x.dtype)",
      (NET + "test_random_noise_is_drawn_for_each_sample_of_a_batch",)),
    m("blind-e09-adain-affine-he-gain", "stylegan_lite/layers.py",
      "self.affine = EqualizedLinear(w_dim, 2 * channels, gain=1.0)",
      "self.affine = EqualizedLinear(w_dim, 2 * channels)",
      ("tests/test_layers.py::test_adain_by_hand_from_the_raw_parameters",)),
    m("blind-e19-evaluate-seed-dropped", "evaluate.py",
      "batch_size=args.batch, seed=args.seed, generator_kwargs=kwargs, metrics=metrics,",
      "batch_size=args.batch, generator_kwargs=kwargs, metrics=metrics,",
      ("tests/test_evaluation.py::test_evaluate_cli_metrics_draw_the_latents_of_their_seed",)),
    m("blind-e20-export-raw-generator", "scripts/export_checkpoint.py",
      'generator.load_state_dict(state["generator_ema"])', 'generator.load_state_dict(state["generator"])',
      ("tests/test_export.py::test_export_checkpoint_script_exports_the_ema_generator",)),
]
