"""Session 17's mutants (issue 20): survivors of the blind sets Y, Z (measured at the session's start), the
training sets TA, TB and the statement sweep, each with the test that now kills it; docs/testing.md.
"""
from __future__ import annotations

from mutant_base import Mutant, m  # noqa: F401

S17: list[Mutant] = [
    m('blind-ta06-torchrun-handles-sigterm', 'progan/training/launch.py',
      'os.environ["PET_SIGNALS_TO_HANDLE"] = "SIGINT,SIGHUP,SIGQUIT"',
      'os.environ["PET_SIGNALS_TO_HANDLE"] = "SIGTERM,SIGINT,SIGHUP,SIGQUIT"',
      ('tests/test_stop_signals.py::test_a_multi_gpu_launch_leaves_the_stop_signals_to_the_launcher_and_the_rest_to_torchrun',)),
    m('blind-ta25-cache-key-ignores-checksums', 'progan/metrics/evaluation.py',
      'return json.dumps({"data": path, "files": manifest.get("files"), "length": len(dataset)}, sort_keys=True)',
      'return json.dumps({"data": path, "length": len(dataset)}, sort_keys=True)',
      ('tests/test_evaluation_cache.py::test_a_dataset_prepared_again_in_place_with_other_images_gets_fresh_statistics',)),
]
