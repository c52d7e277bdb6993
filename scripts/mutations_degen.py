"""Degenerate fixtures (issue 20): bugs a test cannot see because its fixture holds the one value that hides
them (noise strength 0, w_avg 0, zero biases, sorted names, a cache that is off); docs/testing.md.
"""
from __future__ import annotations

from mutant_base import Mutant, m

DEGENERATE: list[Mutant] = [
    # degenerate fixtures: a fresh tiny model has w_avg 0, noise strengths 0 and zero biases
    m('degen-w-avg-update-forgets-previous-mean', 'stylegan_lite/networks.py',
      'self.w_avg.lerp_(w.detach().float().mean(dim=0).to(self.w_avg.dtype), 1.0 - self.config.w_avg_beta)',
      'self.w_avg.copy_(w.detach().float().mean(dim=0).to(self.w_avg.dtype) * (1.0 - self.config.w_avg_beta))',
      ('tests/test_networks.py::test_w_avg_update_keeps_beta_of_the_previous_mean',)),
    m('degen-styled-layer-bias-after-activation', 'stylegan_lite/networks.py',
      'x = clamp_fp16(F.leaky_relu(x + self.bias.view(1, -1, 1, 1).to(x.dtype), LEAKY_SLOPE))',
      'x = clamp_fp16(F.leaky_relu(x, LEAKY_SLOPE) + self.bias.view(1, -1, 1, 1).to(x.dtype))',
      ('tests/test_layers.py::test_styled_layer_adds_noise_and_bias_before_the_activation_then_adain',)),
    m('degen-styled-layer-noise-after-activation', 'stylegan_lite/networks.py',
      '        x = self.noise(x, noise)\n        x = clamp_fp16(F.leaky_relu(x + self.bias.view(1, -1, 1, 1).to(x.dtype), LEAKY_SLOPE))\n',
      '        x = clamp_fp16(F.leaky_relu(x + self.bias.view(1, -1, 1, 1).to(x.dtype), LEAKY_SLOPE))\n        x = self.noise(x, noise)\n',
      ('tests/test_layers.py::test_styled_layer_adds_noise_and_bias_before_the_activation_then_adain',)),
    m('degen-edit-always-fixed-noise', 'app/directions.py',
      'noise_maps = key_noise(generator, [key], noise)', 'noise_maps = key_noise(generator, [key], "fixed")',
      ('tests/test_directions.py::test_edits_draw_the_noise_mode_they_are_given_and_keep_it_along_the_row',)),
    m('degen-seed-noise-one-stream-for-all-seeds', 'app/sampling.py',
      '    for s in seeds:\n        rng = _seeded(s)\n', '    rng = _seeded(seeds[0])\n    for s in seeds:\n',
      ('tests/test_app.py::test_same_seed_same_image_regardless_of_grid',)),
    m('degen-const-noise-pair-shares-a-buffer', 'stylegan_lite/networks.py',
      '            return getattr(self, f"noise_const_{i}")', '            return getattr(self, f"noise_const_{i - i % 2}")',
      ('tests/test_networks.py::test_const_noise_is_each_layers_own_draw_from_seed_0',)),
    m('degen-constant-input-ignores-its-weight', 'stylegan_lite/layers.py',
      '        return self.weight.expand(batch_size, -1, -1, -1)',
      '        return torch.ones_like(self.weight).expand(batch_size, -1, -1, -1)',
      ('tests/test_networks.py::test_fixed_noise_gives_identical_images_and_new_noise_changes_only_detail',)),
    m('degen-schedule-refuses-fade-zero', 'progan/training/schedule.py',
      'if self.fade_kimg < 0 or', 'if self.fade_kimg <= 0 or', ('tests/test_training.py::test_schedule_accepts_its_bounds_and_refuses_just_past_them',)),
    m('degen-schedule-accepts-stable-zero', 'progan/training/schedule.py',
      'or self.stable_kimg <= 0:', 'or self.stable_kimg < 0:', ('tests/test_training.py::test_schedule_accepts_its_bounds_and_refuses_just_past_them',)),
    m('degen-schedule-refuses-batch-one', 'progan/training/schedule.py',
      'min(self.batch_sizes) < 1:', 'min(self.batch_sizes) <= 1:', ('tests/test_training.py::test_schedule_accepts_its_bounds_and_refuses_just_past_them',)),
]
