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
]
