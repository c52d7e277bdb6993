"""The boundary sweep's survivors (issue 20; scripts/boundary_sweep.py): a comparison's boundary or a min/max
flipped that no covering fast test noticed, each with a direct test at the bound now (docs/testing.md).
Survivors judged equivalent (or cosmetic) are listed in docs/testing.md without a mutant.
"""
from __future__ import annotations

from mutant_base import AUG, Mutant, m

SWEEP: list[Mutant] = [
    m('sweep-ada-mask-draw-equal-to-p', 'progan/training/ada.py',
      'mask = torch.rand(n, device=device) < prob', 'mask = torch.rand(n, device=device) <= prob',
      ('tests/test_ada.py::test_a_uniform_draw_equal_to_the_probability_applies_nothing',)),
    m('sweep-augment-p-one-draws-masks', 'progan/training/augment.py',
      'mask = None if self.p >= 1 else', 'mask = None if self.p > 1 else',
      (AUG + 'test_p_one_draws_no_masks_and_a_draw_equal_to_p_selects_no_image',)),
    m('sweep-augment-mask-draw-equal-to-p', 'progan/training/augment.py',
      'device=x.device) < self.p', 'device=x.device) <= self.p',
      (AUG + 'test_p_one_draws_no_masks_and_a_draw_equal_to_p_selects_no_image',)),
    m('sweep-augment-controller-empty-interval', 'progan/training/augment.py',
      'if count <= 0:', 'if count < 0:',
      (AUG + 'test_controller_leaves_p_alone_after_an_interval_without_images',)),
    m('sweep-data-stream-one-image-refused', 'progan/training/data_stream.py',
      'if size < 1:', 'if size <= 1:',
      ('tests/test_data_stream.py::test_a_one_image_dataset_streams_and_an_empty_one_is_refused',)),
    m('sweep-monitor-two-refused', 'progan/training/monitor.py',
      'if num < 2:', 'if num <= 2:',
      ('tests/test_monitor.py::test_the_monitor_accepts_two_images_and_refuses_one',)),
    m('sweep-health-scale-one-diverged', 'progan/training/health.py',
      'scaler.get_scale() < 1.0', 'scaler.get_scale() <= 1.0',
      ('tests/test_fp16_safety.py::test_a_scale_of_exactly_one_is_not_yet_divergence',)),
    m('sweep-memory-saved-peak-min', 'progan/training/memory.py',
      'meter.peak = max(meter.peak, meter.live)', 'meter.peak = min(meter.peak, meter.live)',
      ('tests/test_memory_estimate.py::test_saved_bytes_peak_is_the_largest_live_total_by_hand',)),
    m('sweep-memory-fade-without-fade-kimg', 'progan/training/memory.py',
      'config.fade_kimg > 0 and stage > 0', 'config.fade_kimg >= 0 and stage > 0',
      ('tests/test_memory_estimate.py::test_no_fade_is_traced_without_fade_kimg_or_at_the_first_stage',)),
    m('sweep-memory-fade-at-stage-zero', 'progan/training/memory.py',
      'config.fade_kimg > 0 and stage > 0', 'config.fade_kimg > 0 and stage >= 0',
      ('tests/test_memory_estimate.py::test_no_fade_is_traced_without_fade_kimg_or_at_the_first_stage',)),
    m('sweep-iteration-history-at-weight-zero', 'progan/training/iteration.py',
      'if config.historical_averaging > 0 else None)', 'if config.historical_averaging >= 0 else None)',
      ('tests/test_iteration.py::test_history_and_the_minibatch_are_kept_only_for_the_tricks_that_read_them',)),
    m('sweep-iteration-reals-kept-at-fm-zero', 'progan/training/iteration.py',
      'g_reals = reals if ctx.feature_matching > 0 else None', 'g_reals = reals if ctx.feature_matching >= 0 else None',
      ('tests/test_iteration.py::test_history_and_the_minibatch_are_kept_only_for_the_tricks_that_read_them',)),
    m('sweep-options-batch-sizes-one-refused', 'progan/training/options.py',
      'res & (res - 1) or batch < 1:', 'res & (res - 1) or batch <= 1:',
      ('tests/test_training.py::test_batch_sizes_accept_one_image_and_4_px_and_refuse_zero_and_2_px',)),
    m('sweep-step-mixing-coin-draw-equal-to-p', 'progan/training/step.py',
      'torch.rand(()).item() < ctx.mixing_prob', 'torch.rand(()).item() <= ctx.mixing_prob',
      ('tests/test_closed_forms.py::test_the_style_mixing_coin_mixes_below_the_probability_only',)),
]
