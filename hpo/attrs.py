"""The storage's vocabulary: every key hpo writes into a study, and the naming rules it relies on.

"The storage is the truth": `hpo status`, `hpo best`, export, retention, the dashboard and a
second machine all read what these keys name, whichever backend wrote it. Each key is defined
here once; a module that writes or reads one imports it from here. The names the trainer writes
too (a trial's folder and Ray trial id, the step key, the `eval_` rule) are defined in
`trainer/keys.py`, since `trainer` never imports `hpo`, and re-exported here. This module imports
nothing else, so the fast readers (`hpo status`) can use it freely.
"""

from __future__ import annotations

# Re-exported (`X as X`): modules of hpo import every key from here.
from trainer.keys import EVAL_PREFIX as EVAL_PREFIX
from trainer.keys import OUTPUT_DIR_ATTR as OUTPUT_DIR_ATTR
from trainer.keys import RAY_TRIAL_ID_ATTR as RAY_TRIAL_ID_ATTR
from trainer.keys import STEP_KEY as STEP_KEY
from trainer.keys import eval_metric_key as eval_metric_key

# --- trial user attributes, written by both backends ------------------------------------------
# OUTPUT_DIR_ATTR (trainer/keys.py): the trial's own folder under training.output_dir
LAST_CHECKPOINT_ATTR = "last_checkpoint"  # the newest complete checkpoint (a retry resumes here)
BEST_CHECKPOINT_ATTR = "best_checkpoint"  # the checkpoint with the best evaluation so far
TRAIN_METRICS_ATTR = "train_metrics"  # TrainOutput.metrics of the finished run
FAIL_REASON_ATTR = "fail_reason"  # why a FAIL trial failed (one line, passwords scrubbed)

# --- Optuna backend ---------------------------------------------------------------------------
WORKER_ATTR = "worker"  # "host:pid" of the process running the trial
FIRST_STEP_ATTR = "first_step"  # the first optimizer step this run of the trial trained
RESUMED_FROM_ATTR = "resumed_from"  # the checkpoint a retried trial resumed from
INTERRUPTED = (
    "interrupted"  # fail reason of a trial stopped by Ctrl-C or a job stop (both backends)
)
# {"step", "max_steps", "steps_per_s"} of a running trial, at most once per logging step: what
# the live view of `hpo run` shows under the counts. Its keys: STEP_KEY and the two below.
PROGRESS_ATTR = "progress"
PROGRESS_MAX_STEPS_KEY = "max_steps"  # the trial's planned optimizer steps
PROGRESS_RATE_KEY = "steps_per_s"  # optimizer steps per second since the last record
DEVICES_ATTR = "devices"  # the CUDA_VISIBLE_DEVICES its worker was placed on ("cpu": hidden)
WORLD_SIZE_ATTR = "world_size"  # processes of a `trial_processes: N` trial (torch.distributed)
RANKS_STOPPED_AT_ATTR = "ranks_stopped_at"  # the step each rank of such a trial stopped at

# --- Ray backend (the mirror) -----------------------------------------------------------------
# RAY_TRIAL_ID_ATTR (trainer/keys.py): the Ray Tune trial a stored trial mirrors
RAY_TRIAL_PATH_ATTR = "ray_trial_path"
STOPPED_BY_ATTR = "stopped_by"  # on a PRUNED Ray trial: one of the two values below
STOPPED_BY_SCHEDULER = "scheduler"  # the scheduler (ASHA, PBT, ...) stopped it early
STOPPED_BY_TIME_BUDGET = "time_budget"  # the study's timeout cut it short
FINAL_PARAMS_ATTR = "final_params"  # PBT/PB2: the config the trial ended with
PARAM_HISTORY_ATTR = "param_history"  # PBT/PB2: [{"step": s, "params": {...}}, ...]
RAY_FAILURES_ATTR = "ray_failures"
# STEP_KEY (trainer/keys.py): the trainer's global step in every Ray report

# --- warm starts and the study file a study was started with (both backends) -----------------
# On a trial copied from an earlier study to seed the sampler: {"study": name, "trial": number}.
# Such a trial was never trained here: it counts against no budget, has no checkpoint, and is
# never this study's best trial.
WARM_START_ATTR = "warm_start"
# On a trial that a study file's `enqueue:` entry queued: the entry's index in the list.
ENQUEUED_ATTR = "enqueued"
# --- study user attributes ---
# The space, objective and task of the study file that first ran the study (`fingerprint`).
STUDY_FILE_ATTR = "study_file"
# [{"at": iso time, "changes": ["learning_rate: low 1e-05 -> 0.0001", ...]}, ...]
SPACE_CHANGES_ATTR = "space_changes"
# The `enqueue:` configurations already queued (each is queued once over every run).
ENQUEUED_CONFIGS_ATTR = "enqueued_configs"
# [{"study": name, "taken": n}]: the warm starts already done (each source once).
WARM_STARTED_FROM_ATTR = "warm_started_from"

# --- trial states, as Optuna stores them ------------------------------------------------------
STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")

# --- naming rules -----------------------------------------------------------------------------
# A search-space key with this prefix is a model-config override: it reaches model_init, not
# TrainingArguments (`model.n_layer` -> config.n_layer).
MODEL_PREFIX = "model."
# EVAL_PREFIX and eval_metric_key (trainer/keys.py): Transformers' `eval_` rule.
# Search-space keys with this prefix are data settings applied per trial (the collator's), read
# by model_init like model.* keys; only those listed are searchable.
DATA_PREFIX = "data."
SEARCHABLE_DATA_PARAMS = ("data.mlm_probability",)


def is_data_param(name: str) -> bool:
    """Whether a search-space key is a per-trial data setting (`data.mlm_probability`)."""
    return name.startswith(DATA_PREFIX)


def is_model_param(name: str) -> bool:
    """Whether a search-space key overrides the model's config rather than a training argument."""
    return name.startswith(MODEL_PREFIX)
