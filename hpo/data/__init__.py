"""Models and data named in a study: the one import the objective and the backends need.

    train, eval = load_datasets(spec)          # tokenized once per study, memory-mapped
    collator = study_collator(spec)            # masked-lm / seq2seq-lm, else None
    model_init = study_model_init(spec, collator)   # model_init(trial_or_None) -> nn.Module
    metrics = study_metric_functions(spec)     # the Trainer's compute_metrics & co.

`train.label_names` (and `eval.label_names`, `describe_data(spec)["label_names"]`) are the class
names in id order for sequence- and token-classification (the model config's id2label).

The parts: `hpo.data.models` (model_init), `hpo.data.sources` (rows from files, the built-in
corpus, the hub or a factory), `hpo.data.tokenizers` (bytes or a Transformers tokenizer),
`hpo.data.cache` (tokenized once, opened memory-mapped), `hpo.data.token_dataset` (the
Dataset) and `hpo.data.metrics` (the metrics each evaluation computes). Importing this module loads neither torch nor transformers.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from hpo.data.cache import describe_data, load_datasets, open_datasets, prepare_data_cache
from hpo.data.collators import apply_data_params, data_params, study_data_collator
from hpo.data.factory import load_factory
from hpo.data.metrics import MetricFunctions, check_objective_names, metric_functions
from hpo.data.models import TASKS, ModelInit, build_model_init, model_overrides, task_settings
from hpo.data.token_dataset import TokenDataset
from hpo.errors import HpoError
from hpo.spec import BUILTIN_CORPORA, BYTES_TOKENIZER, StudySpec

__all__ = [
    "BUILTIN_CORPORA",
    "BYTES_TOKENIZER",
    "TASKS",
    "MetricFunctions",
    "ModelInit",
    "TokenDataset",
    "build_model_init",
    "describe_data",
    "load_datasets",
    "model_overrides",
    "open_datasets",
    "prepare_data_cache",
    "study_collator",
    "study_metric_functions",
    "study_model_init",
]


def study_collator(spec: StudySpec) -> Any:
    """The data collator of the study's task (None when the default stacking serves)."""
    return study_data_collator(spec, describe_data(spec)["tokenizer_dir"])


def study_model_init(spec: StudySpec, collator: Any = None) -> ModelInit:
    """`build_model_init` for the study's model, matched to its data.

    The data's padding id, label names and special token ids reach the config, and a config
    whose vocabulary or label count is smaller than the data's fails here, before any trial,
    instead of as an index error inside the first forward pass. With a `collator`, each
    trial's `data.*` params are set on it when the trial's model is built.
    """
    summary = describe_data(spec)
    config = spec.model.config or {}
    vocab = config.get("vocab_size")
    if isinstance(vocab, int) and vocab < summary["vocab_size"]:
        raise HpoError(
            f"model.config.vocab_size: {vocab} is smaller than the tokenizer's vocabulary "
            f"({summary['vocab_size']}, data.tokenizer={spec.data.tokenizer!r}); "
            f"set vocab_size: {summary['vocab_size']}"
        )
    num_labels = spec.model.num_labels or config.get("num_labels")
    labelled = summary["task"] in ("sequence-classification", "token-classification")
    if labelled and num_labels is not None:
        if num_labels < summary["num_labels"]:
            raise HpoError(
                f"model.num_labels: {num_labels} is fewer than the {summary['num_labels']} "
                f"labels in the data ({summary['label_names']})"
            )
    model = spec.model
    if labelled and num_labels is None:
        model = dataclasses.replace(model, num_labels=summary["num_labels"])
    settings = task_settings(
        summary["task"],
        pad_token_id=summary["pad_token_id"],
        label_names=summary.get("label_names") if labelled else None,
        special_token_ids=summary["special_token_ids"],
    )
    model_init = build_model_init(
        model, pad_token_id=summary["pad_token_id"], data_settings=settings
    )
    if collator is None:
        return model_init

    @functools.wraps(model_init)
    def with_data_params(trial: Any = None) -> Any:
        apply_data_params(collator, data_params(trial), spec.data)
        return model_init(trial)

    return with_data_params


def study_metric_functions(spec: StudySpec) -> MetricFunctions:
    """The `compute_metrics` and `preprocess_logits_for_metrics` of every Trainer of the study.

    Built-in metrics (`metrics:`) get the data's label names in label-id order (what seqeval
    needs for token-classification). A user's `compute_metrics` is wrapped to check, at its
    first call, that it returns the objective's metric: its names cannot be known before.
    """
    from hpo.data.metrics import TRAIN_METRICS

    metrics = spec.metrics
    if metrics.compute_metrics:
        compute = load_factory(metrics.compute_metrics, "compute_metrics")
        wanted = [
            ("objective.metric", name)
            for position, name in enumerate(spec.objective.metrics)
            if position == 0 or name not in TRAIN_METRICS
        ]
        best_model_metric = spec.training.get("metric_for_best_model")
        if isinstance(best_model_metric, str):
            wanted.append(("training.metric_for_best_model", best_model_metric))
        preprocess = (
            load_factory(metrics.preprocess_logits_for_metrics, "preprocess_logits_for_metrics")
            if metrics.preprocess_logits_for_metrics
            else None
        )
        return MetricFunctions(
            check_objective_names(compute, wanted, metrics.compute_metrics), preprocess
        )
    if not metrics.names:
        return MetricFunctions()
    label_names = describe_data(spec).get("label_names")
    return metric_functions(spec.model.task, metrics.names, label_names)
