"""Sample-quality metrics (FID, KID, precision/recall) and their evaluation across processes.

- ``scores``: the formulas on feature arrays (NumPy/SciPy).
- ``inception``: the standard FID Inception network (TorchScript, verified by sha256).
- ``features``: features of real datasets and generators, cached real statistics.
- ``evaluation``: the same, sharded over the processes of a run; the periodic evaluator.

Imports the model files and ``progan.images``, never ``progan.training``. Submodules load on
demand (``scores`` needs SciPy from the ``metrics`` extra).
"""
