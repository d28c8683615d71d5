"""The names that cross from the trainer to the orchestrator, defined once.

The trainer writes these (a trial's folder and Ray trial id as optuna user attributes from
`Trainer.hyperparameter_search`, the global step in every report a trial's Reporter makes to Ray
and in every `log_history` row, the `eval_` prefix of every evaluation metric) and `hpo` reads
them back from the storage, from Ray's results and from checkpoints. `trainer` never imports
`hpo`, so the names live here and `hpo.attrs` re-exports them. This module imports nothing
outside the standard library (checked in tests/test_architecture.py), so the light readers
(`hpo status`) may use it.
"""

from __future__ import annotations

# --- trial user attributes, written by hpo's backends and by Trainer.hyperparameter_search -----
OUTPUT_DIR_ATTR = "output_dir"  # the trial's own folder under training.output_dir
RAY_TRIAL_ID_ATTR = "ray_trial_id"  # the Ray Tune trial a stored trial mirrors

# --- report and log keys -----------------------------------------------------------------------
# The trainer's global step: in every Ray report of a trial, in every `log_history` row (as
# Transformers writes it), and in the `progress` attr of a running Optuna trial.
STEP_KEY = "step"
# Transformers' rule for evaluation metrics: `evaluate()` reports `loss` as `eval_loss`.
EVAL_PREFIX = "eval_"


def eval_metric_key(name: str) -> str:
    """The key an evaluation reports `name` under: Transformers' rule (`loss` -> `eval_loss`)."""
    return name if name.startswith(EVAL_PREFIX) else f"{EVAL_PREFIX}{name}"
