"""Session 16's mutants (issue 20): survivors of the default and statement sweeps and of the training blind
sets, each with the test that now kills it; docs/testing.md.
"""
from __future__ import annotations

from mutant_base import SG, Mutant, m  # noqa: F401 (SG: shorthand for stylegan_lite/networks.py)

S16: list[Mutant] = [
    m('s16-upload-cap-under-1-mib-named-0-mib', 'app/projection/ui.py',
      '    if n < 2**20:\n        return f"{n:,} bytes"\n',
      '',
      ('tests/test_app_project.py::test_an_upload_cap_that_is_not_whole_mib_is_named_as_it_is',)),
    m('blind-w01-sigusr1-ignored', 'progan/training/trainer.py',
      'for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT):\n            signal.signal(sig, self._request_stop)',
      'for sig in (signal.SIGTERM, signal.SIGINT):\n            signal.signal(sig, self._request_stop)',
      ('tests/test_trainer_loop.py::test_each_stop_signal_sent_during_training_saves_a_checkpoint_and_ends_the_run',)),
    m('blind-w03-stale-tmp-dir-not-cleared', 'progan/training/checkpoint.py',
      '        shutil.rmtree(tmp, ignore_errors=True)\n        tmp.mkdir()',
      '        tmp.mkdir()',
      ('tests/test_resume_state.py::test_a_save_killed_midway_leaves_a_tmp_dir_that_the_resumed_runs_save_at_that_kimg_replaces',)),
    m('blind-x01-best-fid-never-recorded', 'progan/training/reporting.py',
      '            self.best_fid = results["fid"]\n            summary =',
      '            summary =',
      ('tests/test_run_reports.py::test_best_is_saved_only_for_an_fid_below_every_earlier_full_resolution_one',
       'tests/test_evaluation.py::test_best_holds_the_lowest_fid_of_the_final_fully_faded_in_resolution')),
    m('blind-w05-wide-64-stylegan-default-loss', 'progan/training/options.py',
      '    ("stylegan_lite", "wide-64"): {**_WIDE_64, "loss": "wgan_gp"},',
      '    ("stylegan_lite", "wide-64"): dict(_WIDE_64),',
      ('tests/test_trainer_options.py::test_the_64_px_recipes_train_both_families_with_wgan_gp',
       'tests/test_training.py::test_wide_64_is_the_campaigns_width_and_recipe')),
]
