"""What every mutant module shares: the ``Mutant`` record, its one-edit builder ``m`` and the file and
test-selection shorthands (scripts/mutations.py gathers the mutants; docs/testing.md says how they are used).
"""
from __future__ import annotations

from typing import NamedTuple


class Mutant(NamedTuple):
    id: str
    file: str
    edits: tuple[tuple[str, str], ...]
    tests: tuple[str, ...]


AUG = "tests/test_augment.py::"
AUGT = "tests/test_augment_training.py::"
LAZY = "tests/test_lazy_regularization.py::"
STAB = "tests/test_stabilization.py::"
LOSS_T = ("tests/test_closed_forms.py", "tests/test_penalties.py",
          LAZY + "test_lazy_penalty_gradient_is_k_times_the_closed_form", LAZY + "test_penalty_false_leaves_the_penalty_out",
          STAB + "test_penalty_inside_the_d_loss", STAB + "test_lazy_penalty_is_k_times_the_closed_form_on_a_nonlinear_critic",
          "tests/test_precision.py::test_fp16_loss_scaling_gives_the_fp32_penalty_and_gradients")
EMA_T = ("tests/test_closed_forms.py",)
STREAM_T = ("tests/test_data_stream.py",)
STEP_T = (*LOSS_T, "tests/test_precision.py::test_gradient_accumulation_averages_the_micro_batches")
INC_T = ("tests/test_inception_preprocessing.py",)
METRIC_T = ("tests/test_metrics.py",)
APP_T = ("tests/test_app_checks.py", "tests/test_app_store.py")
NET = "tests/test_networks.py::"
STYLE_T = ("tests/test_app_checks.py", "tests/test_closed_forms.py",
           "tests/test_app.py::test_mixing_grid_copies_row_styles_on_the_chosen_layers",
           NET + "test_truncation_psi_zero_gives_w_avg_and_psi_one_is_identity",
           NET + "test_truncation_cutoff_leaves_later_layers_untouched",
           NET + "test_style_mixing_uses_each_w_where_it_should", NET + "test_w_avg_tracks_mean_w")
SLOW_DIST = ("tests/test_distributed.py::test_accelerate_launch_two_cpu_processes",)  # minutes: only with --slow
SERVER_T = ("tests/test_app_checks.py", "tests/test_app_store.py", "tests/test_app_server.py")
BROWSER = "tests/test_app_browser.py::"  # chromium: minutes per mutant, only with --slow
IMAGE_T = (BROWSER + "test_your_image_projects_streams_and_feeds_the_other_tabs",)
GEN = "tests/test_generate_cli.py::"
GEN_T = (GEN + "test_latent_in_a_grid_is_its_reconstruction", GEN + "test_latent_in_interpolation_and_mixing",
         GEN + "test_latent_that_does_not_fit_is_one_line")

L, E, S, T = "progan/losses.py", "progan/training/ema.py", "progan/training/data_stream.py", "progan/training/step.py"
I, M, LIM, UI = "progan/metrics/inception.py", "progan/metrics/scores.py", "app/limits.py", "app/ui.py"
SG, SAMP, MIX, MOD = "stylegan_lite/networks.py", "app/sampling.py", "app/mixing.py", "app/models.py"


def m(id: str, file: str, old: str, new: str, tests: tuple[str, ...]) -> Mutant:
    return Mutant(id, file, ((old, new),), tests)


# Shorthands of the later passes.
TR, MBD, TRICKS_T = "progan/training/tricks.py", "progan/minibatch_discrimination.py", ("tests/test_tricks.py",)
ADA, AUGM, DIST, ONNX = "progan/training/ada.py", "progan/training/augment.py", "progan/training/distributed.py", "app/onnx/export.py"
ADA_T = (AUGT + "test_controller_closed_form", AUGT + "test_p_follows_the_speed_formula_while_a_real_discriminator_overfits",
         AUGT + "test_trainer_moves_p_by_the_papers_speed_toward_the_target")
RANK_T = ("tests/test_rank_data.py",)  # 2 processes: about a minute, only with --only or --slow
ONNX_T = ("tests/test_onnx_options.py",)
FLOOR_T = ("tests/test_projection_floor.py",)
PR = "app/projection/projector.py"
IT = "progan/training/iteration.py"
ITER_T = ("tests/test_iteration.py", LAZY + "test_lazy_regularization_adjusts_adam_and_runs_every_k_steps",
          LAZY + "test_every_term_is_logged_as_its_mean_over_the_steps_it_ran_on", "tests/test_tricks.py",
          "tests/test_fp16_safety.py")
CK = "progan/training/checkpoint.py"
RNG_T = ("tests/test_data_stream.py::test_each_rank_gets_its_own_rng_state_back",
         "tests/test_data_stream.py::test_trainer_resume_continues_the_torch_random_stream")
