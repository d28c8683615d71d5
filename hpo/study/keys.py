"""The study file's vocabulary: its keys, the values some of them take, and the name rule."""

from __future__ import annotations

import re
from typing import Any

from hpo.study.problems import Problems

TOP_LEVEL_KEYS = (
    "name",
    "storage",
    "backend",
    "objective",
    "budget",
    "workers",
    "devices",
    "trials_per_device",
    "trial_processes",
    "sampler",
    "pruner",
    "scheduler",
    "ray",
    "model",
    "data",
    "training",
    "space",
    "metrics",
    "compute_metrics",
    "preprocess_logits_for_metrics",
    "keep",
    "push_best_to_hub",
    "enqueue",
    "warm_start",
)
OBJECTIVE_KEYS = ("metric", "direction")
BUDGET_KEYS = ("n_trials", "timeout", "max_failed_trials")
MODEL_KEYS = ("config", "pretrained", "factory", "task", "num_labels", "trust_remote_code")
MODEL_SOURCES = ("config", "pretrained", "factory")
DATA_KEYS = (
    "files",
    "eval_files",
    "corpus",
    "hub",
    "factory",
    "tokenizer",
    "block_size",
    "eval_fraction",
    "max_eval_samples",
    "text_column",
    "label_column",
    "tokens_column",
    "tags_column",
    "label_all_tokens",
    "source_column",
    "target_column",
    "mlm_probability",
)
DATA_SOURCES = ("files", "corpus", "hub", "factory")
RAY_KEYS = (
    "address",
    "resources_per_trial",
    "max_concurrent_trials",
    "storage_path",
    "max_failures",
)
RESOURCE_KEYS = ("cpu", "gpu")
# What decides which code runs, which credentials are used or where files and uploads go: never
# searched, so no sampler switches one on without a person writing it down.
UNSEARCHABLE_PARAMS = frozenset(
    {
        "model.trust_remote_code",
        "model.code_revision",
        "model.revision",
        "model.token",
        "model.use_auth_token",
        "model.cache_dir",
        "model.local_files_only",
        "model.auto_map",
        "output_dir",
        "logging_dir",
        "overwrite_output_dir",
        "resume_from_checkpoint",
        "push_to_hub",
        "hub_model_id",
        "hub_token",
        "hub_strategy",
        "hub_private_repo",
        "save_safetensors",
    }
)
PARAM_KEYS = {
    "float": ("type", "low", "high", "log", "step", "when"),
    "int": ("type", "low", "high", "log", "step", "when"),
    "categorical": ("type", "choices", "when"),
}
KEEP_CHOICES = ("best", "all")
# Used in file names (runs/<name>.db, output folders), so kept to safe characters.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def study_name(value: Any, problems: Problems) -> str:
    """The study's name, or "" with a problem recorded."""
    if value is None:
        problems.add("name", "missing; expected the study's name, e.g. name: quickstart")
        return ""
    if not isinstance(value, str) or not _NAME.match(value):
        problems.found("name", value, "a name of letters, digits, '.', '_' or '-' (it names files)")
        return ""
    return value
