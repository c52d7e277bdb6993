"""Session 17's mutants (issue 20): survivors of the blind sets Y, Z (measured at the session's start), the
training sets TA, TB and the statement sweep, each with the test that now kills it; docs/testing.md.
"""
from __future__ import annotations

from mutant_base import Mutant, m  # noqa: F401

S17: list[Mutant] = [
    m('blind-z11-export-cli-drops-cutoff', 'app/onnx/export.py',
      '        path = export_onnx(generator, args.out, noise=args.noise, cutoff=args.cutoff, opset=args.opset,',
      '        path = export_onnx(generator, args.out, noise=args.noise, opset=args.opset,',
      ('tests/test_onnx.py::test_export_cli_cutoff_truncates_only_the_layers_below_it',)),
    # Y05, Y19, Z02, Z05, Z17: already killed by fast tests outside the files their planter ran
    m('blind-y05-grad-accum-fake-half-summed', 'progan/training/step.py',
      '        ctx.backward(fake_loss / len(reals))  # frees the fake graph before the penalty graph is built',
      '        ctx.backward(fake_loss)  # frees the fake graph before the penalty graph is built',
      ('tests/test_penalties.py::test_grad_accum_gives_the_gradient_of_one_step_on_the_whole_batch',
       'tests/test_precision.py::test_gradient_accumulation_averages_the_micro_batches')),
    m('blind-y19-train-py-drops-xflip', 'train.py',
      'xflip=config.xflip, with_labels=config.cond)',
      'with_labels=config.cond)',
      ('tests/test_conditional.py::test_train_py_opens_the_data_with_its_xflip_and_cond',)),
    m('blind-z02-grad-accum-consumed-undercounted', 'progan/training/trainer.py',
      '        self.consumed += phase.batch_size * cfg.grad_accum',
      '        self.consumed += phase.batch_size',
      ('tests/test_trainer_options.py::test_grad_accum_counts_every_micro_batch_in_images_seen',)),
    m('blind-z05-recipe-arguments-swapped', 'train.py',
      '    parser.set_defaults(**recipe(first.family, first.preset))',
      '    parser.set_defaults(**recipe(first.preset, first.family))',
      ('tests/test_trainer_options.py::test_the_64_px_recipes_train_both_families_with_wgan_gp',
       'tests/test_training.py::test_wide_64_is_the_campaigns_width_and_recipe')),
    m('blind-z17-all-reduce-sums', 'progan/training/distributed.py',
      '    flat.div_(world)\n',
      '',
      ('tests/test_iteration_gradients.py::test_two_processes_step_d_and_g_on_the_mean_of_their_gradients',
       'tests/test_iteration.py::test_w_avg_is_averaged_over_processes_after_the_g_step')),
    m('blind-ta06-torchrun-handles-sigterm', 'progan/training/launch.py',
      'os.environ["PET_SIGNALS_TO_HANDLE"] = "SIGINT,SIGHUP,SIGQUIT"',
      'os.environ["PET_SIGNALS_TO_HANDLE"] = "SIGTERM,SIGINT,SIGHUP,SIGQUIT"',
      ('tests/test_stop_signals.py::test_a_multi_gpu_launch_leaves_the_stop_signals_to_the_launcher_and_the_rest_to_torchrun',)),
    m('blind-ta25-cache-key-ignores-checksums', 'progan/metrics/evaluation.py',
      'return json.dumps({"data": path, "files": manifest.get("files"), "length": len(dataset)}, sort_keys=True)',
      'return json.dumps({"data": path, "length": len(dataset)}, sort_keys=True)',
      ('tests/test_evaluation_cache.py::test_a_dataset_prepared_again_in_place_with_other_images_gets_fresh_statistics',)),
    m('blind-tb05-lap1-weight-two-to-the-minus-j', 'app/projection/loss.py',
      'total = total + (a - b).abs().mean() * 4.0 ** -j', 'total = total + (a - b).abs().mean() * 2.0 ** -j',
      ('tests/test_projection_loss.py::test_lap1_weighs_level_j_by_four_to_the_minus_j',)),
]
