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
]
