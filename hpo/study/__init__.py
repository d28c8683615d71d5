"""The study file: read once, validated completely, frozen into a `StudySpec`.

Every problem is collected (key path, value found, what is expected) and reported in one
`StudyFileError`, so a user fixes the file in one pass. Validation only reads: it creates no
database, directory or study. Heavy libraries (transformers, optuna, ray, trainer) are imported
inside the checks that need them; `load_for_inspection` needs none of them.

Keys beyond the contract in docs/ARCHITECTURE.md, and the defaults a user gets without asking:
- `storage`: `--storage` > HPO_STORAGE > the file > `sqlite:///runs/<name>.db`; SQLite paths
  are made absolute (relative to the current directory), PostgreSQL gets an installed driver.
- `objective`: default `{metric: eval_loss, direction: minimize}`; a direction may be left out
  for metrics ending in "loss".
- `budget.timeout`: `90s`, `20m`, `1h`, `1h30m`, `2d` or seconds.
- `sampler`: `{name, <constructor options>}` or just a name; default tpe, `seed: 0` for any
  sampler with a seed. With `backend: ray` it is the search: random or tpe (OptunaSearch).
- `pruner`: default `default_pruner(training)`: successive halving on the evaluation grid.
  `patient` takes `wrapped_pruner: {name, ...}`.
- evaluations during a search: a fixed subset of `SEARCH_EVAL_SAMPLES` eval rows unless
  `data.max_eval_samples` is set; a completed trial is valued on the whole eval set.
- `scheduler` (ray): default `default_scheduler(training)`: ASHA counted in optimizer steps
  (first rung at eval_steps, max_t = max_steps). Any scheduler counts steps (`time_attr: step`,
  `max_t: max_steps`) unless the file names its `time_attr` (`sections/horizons.py`).
  pbt/pb2 mutate the training params of `space` unless `hyperparam_mutations` /
  `hyperparam_bounds` are given; the sampler then defaults to random.
- `ray`: address, resources_per_trial {cpu: 1, gpu: 0}, max_concurrent_trials (= workers),
  storage_path, max_failures (0).
- `workers`: 1, or `auto` (one per visible GPU, one on CPU); at most 4 per core for optuna
  (1024 for ray). `devices` (indices of visible GPUs; [] = CPU only; without `workers` it means
  auto), `trials_per_device` (1), `trial_processes` (1; torch.distributed ranks per trial,
  optuna backend only): see hpo.backends.placement.
- `keep`: best.
- `space`: a param's `when: {param: value or [values]}` makes it exist only where all hold
  (`sections/space_conditions.py`); `space: package.module:function` is a Python space,
  dry-run before anything starts (`sections/space_function.py`). grid, pbt and pb2 refuse
  both.
- `model.trust_remote_code`: false; true only as written there (never through `space`, which
  refuses security-relevant keys: `keys.UNSEARCHABLE_PARAMS`), and the run says it is on.
- `budget.max_failed_trials`: the failures one run tolerates; default n_trials, else 10 per
  worker (`hpo.backends.optuna.budget`).
- The file itself: a regular file of at most 1 MB, nested at most 100 deep, at most 100,000
  values with its aliases expanded (`yaml_file`).
- `metrics`: none (evaluations report the task's eval_loss); names from
  hpo.data.metrics.METRICS_BY_TASK, each reported as `eval_<name>`; `f1` / `precision` /
  `recall` are macro averages. Or `compute_metrics: package.module:function` (and
  `preprocess_logits_for_metrics:`), Transformers' signatures, checked to import and take those
  arguments; not both. The objective and `training.metric_for_best_model` must be among what an
  evaluation reports (`sections/metrics.py`); with a user's `compute_metrics` that is checked at
  a worker's first evaluation, which fails its trial with the names the function returned.
- `model.task` (`hpo.spec.TASKS`) and its data keys (`sections/tasks.py`): the columns each
  task reads, `data.text_column` (text; causal-lm, masked-lm, and with `label_column` label
  for sequence-classification and regression), `data.tokens_column` / `tags_column` (tokens,
  tags; token-classification, with `label_all_tokens: false`), `data.source_column` /
  `target_column` (source, target; seq2seq-lm), `data.mlm_probability` (0.15; masked-lm,
  searchable as `space.data.mlm_probability`); a column key of another task is refused.
  `data.tokenizer: {train: wordpiece | bpe, vocab_size: N, min_frequency: 1}` trains one on
  the train rows (masked-lm, token-classification and seq2seq-lm refuse `bytes`).
- `push_best_to_hub`: a Hub repo id; after `hpo run` the best trial's model and `hpo_best.json`
  are uploaded there (hpo.report.hub). Absent: nothing is pushed.
- `enqueue`: configurations trained first, each checked against the space and queued once
  over every run; with `backend: ray` and `sampler: tpe` each names every parameter.
- `warm_start: {study, storage}`: storage defaults to the study's own; the source is opened
  when the run starts (`hpo.backends.warm_start`), not here.

Public API: `load` (the full validation, into a `StudySpec`), `load_for_inspection` (name and
storage only, into a `StudyRef`, for `hpo status` / `hpo best`), `resolve_storage` (which
storage URL wins), `default_pruner` / `default_scheduler` (what a study gets without asking).

Layout: `yaml_file` reads the YAML; `study_ref` does the cheap reading; `validator` walks the
sections (`sections/`: run, storage, model, data with tasks, training, metrics, space, search
with components, ray, hub, enqueue, warm_start), each recording into a `reader.Reader`'s
`problems.Problems`; `keys` holds the file's vocabulary, `references` the paths and factories a
study points at, `defaults` what a study gets without asking.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from hpo.spec import StudySpec
from hpo.study.defaults import default_pruner, default_scheduler
from hpo.study.sections.storage import resolve_storage
from hpo.study.study_ref import StudyRef, load_for_inspection
from hpo.study.yaml_file import read_study_file

__all__ = [
    "StudyRef",
    "default_pruner",
    "default_scheduler",
    "load",
    "load_for_inspection",
    "resolve_storage",
]


def load(
    path: str | os.PathLike[str],
    *,
    storage: str | None = None,
    n_trials: int | None = None,
    workers: int | None = None,
    on_shape_ok: Callable[[str, int, dict[str, Any]], None] | None = None,
) -> StudySpec:
    """The validated study in `path`, with the command line's overrides applied.

    Raises `StudyFileError` listing every problem. Nothing is created on disk or in a database.
    `on_shape_ok(backend, workers, raw)` runs once the file's shape is right, before the checks
    that import torch (see `hpo.study.validator`).
    """
    # The sections are imported here, not at the top: `hpo status` imports this package for
    # load_for_inspection and needs none of them.
    from hpo.study.validator import validate

    raw = read_study_file(path)
    return validate(
        raw,
        str(path),
        storage=storage,
        n_trials=n_trials,
        workers=workers,
        on_shape_ok=on_shape_ok,
    )
