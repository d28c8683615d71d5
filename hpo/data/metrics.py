"""The evaluation metrics a study names (`metrics: [accuracy, f1]`), as the two functions a
Transformers `Trainer` takes: `compute_metrics(EvalPrediction) -> {name: value}` and
`preprocess_logits_for_metrics(logits, labels) -> predictions`.

Every value comes from a scikit-learn, scipy or seqeval function; nothing here re-derives a
formula. The evaluation loop prefixes each name with `eval_` (Transformers' rule), so
`metrics: [accuracy]` produces `eval_accuracy` next to the task's `eval_loss`.

What each task can produce is one table, `METRICS_BY_TASK` (task name -> metric names):
- sequence-classification: `accuracy`; `f1`, `precision`, `recall` with their averaging named
  (`_macro`, `_micro`, `_weighted`, `_binary`); the bare name is the macro average (every class
  counts the same, defined for any number of labels); `_binary` scores label id 1 of a
  two-label task. `matthews_correlation`. Classes never predicted score 0 (`zero_division=0`).
- regression: `mse`, `mae`, `pearson`, `spearman` (the model's single output against the label).
- token-classification: `accuracy` per token, ignoring label -100 (sub-tokens after a word's
  first, special tokens); `seqeval_precision`, `seqeval_recall`, `seqeval_f1`: entity-level, for
  BIO tags, through seqeval, which needs the tag names (see `label_names` below).
- causal-lm: `accuracy` per token, the prediction at position t against the label at t + 1
  (the model shifts labels), ignoring -100; `perplexity`.
- masked-lm, seq2seq-lm: `accuracy` per labelled token (labels and logits aligned: only the
  masked tokens, the decoder's targets), ignoring -100; `perplexity`.

`perplexity` is exp of the mean cross-entropy over the eval set's labelled tokens (unsmoothed,
whatever `label_smoothing_factor` says). It equals exp(eval_loss) when every batch holds the
same number of labelled tokens (causal-lm's full blocks); eval_loss averages the batches' means.
It is computed with the other metrics, so it is in the metrics every callback, the log and the
objective see.

Language-model logits are never held for the whole eval set: `preprocess_logits_for_metrics`
reduces each batch to its argmax ids (and, for perplexity, each labelled token's cross-entropy),
as Transformers' run_clm / run_mlm examples do, so the evaluation keeps two numbers per token
instead of a vocabulary's worth.

Interface for the data side:

    functions = metric_functions(task, names, label_names=None)
    Trainer(..., compute_metrics=functions.compute_metrics,
            preprocess_logits_for_metrics=functions.preprocess_logits_for_metrics)

`label_names` is the list of label names in label-id order (a model config's id2label order:
`label_names[i]` is the name of label id i). token-classification must pass it when seqeval
metrics are named (the BIO tags, e.g. ["O", "B-PER", "I-PER"]); the other tasks ignore it.
`produced_metrics(names)` is what an evaluation will report, for the study's objective
check. Importing this module loads neither numpy's metric libraries nor torch: the study
validation reads the table in its shape pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hpo.attrs import EVAL_PREFIX, eval_metric_key
from hpo.errors import HpoError

IGNORE_INDEX = -100  # labels the loss skips (Transformers' convention)

_AVERAGES = ("macro", "micro", "weighted", "binary")
DEFAULT_AVERAGE = "macro"
_AVERAGED = tuple(
    f"{base}{suffix}"
    for base in ("f1", "precision", "recall")
    for suffix in ("", *(f"_{average}" for average in _AVERAGES))
)
_LANGUAGE_MODEL = ("accuracy", "perplexity")
SEQEVAL_METRICS = ("seqeval_precision", "seqeval_recall", "seqeval_f1")

METRICS_BY_TASK: dict[str, tuple[str, ...]] = {
    "sequence-classification": ("accuracy", *_AVERAGED, "matthews_correlation"),
    "regression": ("mse", "mae", "pearson", "spearman"),
    "token-classification": ("accuracy", *SEQEVAL_METRICS),
    "causal-lm": _LANGUAGE_MODEL,
    "masked-lm": _LANGUAGE_MODEL,
    "seq2seq-lm": _LANGUAGE_MODEL,
}
# Tasks whose logits are [batch, positions, vocabulary]: reduced per batch.
_TOKEN_TASKS = ("causal-lm", "masked-lm", "seq2seq-lm", "token-classification")
# What the evaluation loop reports besides the loss and compute_metrics' values.
LOOP_METRICS = ("eval_runtime", "eval_samples_per_second", "eval_steps_per_second")
# What `Trainer.train()` adds to the final metrics: a secondary objective may name them (the
# first one is the metric_for_best_model that every evaluation reports).
TRAIN_METRICS = (
    "train_runtime",
    "train_samples_per_second",
    "train_steps_per_second",
    "train_loss",
    "epoch",
)


def task_metrics(task: str) -> tuple[str, ...]:
    """The metric names `task` can compute (none for a task the table does not know)."""
    return METRICS_BY_TASK.get(task, ())


def produced_metrics(names: Sequence[str]) -> tuple[str, ...]:
    """What an evaluation reports with the metrics `names`: the task's loss first."""
    return ("eval_loss", *(f"{EVAL_PREFIX}{name}" for name in names), *LOOP_METRICS)


@dataclass(frozen=True)
class MetricFunctions:
    """The two Trainer arguments; both None when no metric is named."""

    compute_metrics: Callable[[Any], Mapping[str, Any]] | None = None
    preprocess_logits_for_metrics: Callable[[Any, Any], Any] | None = None


def metric_functions(
    task: str, names: Sequence[str], label_names: Sequence[str] | None = None
) -> MetricFunctions:
    """`compute_metrics` (and, for token tasks, `preprocess_logits_for_metrics`) computing
    `names` for `task`; a clear error for a name the task cannot compute or missing labels."""
    names = tuple(dict.fromkeys(names))
    if not names:
        return MetricFunctions()
    allowed = task_metrics(task)
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise HpoError(
            f"metrics: {', '.join(unknown)} cannot be computed for task {task!r}; "
            f"expected some of {', '.join(allowed) or 'none (the task reports eval_loss only)'}"
        )
    if any(name in SEQEVAL_METRICS for name in names) and not label_names:
        raise HpoError(
            f"metrics: {', '.join(n for n in names if n in SEQEVAL_METRICS)} need the label "
            "names (the BIO tags in label-id order) and none were given"
        )
    preprocess = None
    if task in _TOKEN_TASKS:
        preprocess = ReduceTokenLogits(shift=task == "causal-lm", with_loss="perplexity" in names)
    compute = ComputeMetrics(task, names, tuple(label_names) if label_names else None)
    return MetricFunctions(compute, preprocess)


class ReduceTokenLogits:
    """`preprocess_logits_for_metrics` of the token tasks: one batch's logits -> its argmax ids,
    or (argmax ids, each labelled token's cross-entropy) when perplexity is asked for.

    With `shift` (causal-lm) the cross-entropy at position t is that of predicting label t + 1,
    aligned with the argmax at t, so both line up with the ids `ComputeMetrics` shifts.
    """

    def __init__(self, *, shift: bool, with_loss: bool) -> None:
        self.shift = shift
        self.with_loss = with_loss

    def __call__(self, logits: Any, labels: Any) -> Any:
        import torch

        if isinstance(logits, (tuple, list)):  # (logits, past_key_values, ...): the first
            logits = logits[0]
        ids = logits.argmax(dim=-1)
        if not self.with_loss or labels is None:
            return ids
        scores, targets = (logits[:, :-1], labels[:, 1:]) if self.shift else (logits, labels)
        token_loss = torch.nn.functional.cross_entropy(
            scores.transpose(1, 2).float(),
            targets.to(scores.device),
            ignore_index=IGNORE_INDEX,
            reduction="none",
        )
        if self.shift:  # back to the ids' length: the last position predicts nothing
            token_loss = torch.nn.functional.pad(token_loss, (0, 1))
        return ids, token_loss


class ComputeMetrics:
    """`compute_metrics(EvalPrediction) -> {name: float}` for the metric names of one task."""

    def __init__(
        self, task: str, names: Sequence[str], label_names: Sequence[str] | None = None
    ) -> None:
        self.task = task
        self.names = tuple(names)
        self.label_names = tuple(label_names) if label_names else None

    def __call__(self, prediction: Any) -> dict[str, float]:
        import numpy as np

        predictions = prediction.predictions
        labels = np.asarray(prediction.label_ids)
        if self.task in _TOKEN_TASKS:
            return self._token_metrics(predictions, labels)
        if isinstance(predictions, (tuple, list)):  # the logits come first
            predictions = predictions[0]
        predictions = np.asarray(predictions)
        if self.task == "regression":
            return {
                name: _regression(name, predictions.reshape(-1), labels.reshape(-1))
                for name in self.names
            }
        classes = predictions.argmax(axis=-1)
        return {name: _classification(name, labels, classes) for name in self.names}

    def _token_metrics(self, predictions: Any, labels: Any) -> dict[str, float]:
        import numpy as np

        token_loss = None
        if isinstance(predictions, (tuple, list)):
            predictions, token_loss = predictions
        ids = np.asarray(predictions)
        if ids.ndim == 3:  # logits that no preprocess reduced (a Trainer built elsewhere)
            ids = ids.argmax(axis=-1)
        if self.task == "causal-lm":  # the prediction at t is for the label at t + 1
            ids, labels = ids[:, :-1], labels[:, 1:]
            token_loss = None if token_loss is None else np.asarray(token_loss)[:, :-1]
        mask = labels != IGNORE_INDEX
        results: dict[str, float] = {}
        for name in self.names:
            if name == "accuracy":
                from sklearn.metrics import accuracy_score

                results[name] = float(accuracy_score(labels[mask], ids[mask]))
            elif name == "perplexity":
                results[name] = _perplexity(token_loss, mask)
        seqeval_names = [name for name in self.names if name in SEQEVAL_METRICS]
        if seqeval_names:
            results.update(_seqeval(seqeval_names, ids, labels, mask, self.label_names or ()))
        return results


def _classification(name: str, labels: Any, classes: Any) -> float:
    from sklearn import metrics

    if name == "accuracy":
        return float(metrics.accuracy_score(labels, classes))
    if name == "matthews_correlation":
        return float(metrics.matthews_corrcoef(labels, classes))
    base, _, average = name.partition("_")
    score = {
        "f1": metrics.f1_score,
        "precision": metrics.precision_score,
        "recall": metrics.recall_score,
    }[base]
    try:
        return float(score(labels, classes, average=average or DEFAULT_AVERAGE, zero_division=0))
    except ValueError as error:  # binary averaging of more than two labels
        raise HpoError(
            f"metrics: {name}: {error}; use {base}_macro, {base}_micro or {base}_weighted"
        ) from None


def _regression(name: str, predictions: Any, labels: Any) -> float:
    if name in ("mse", "mae"):
        from sklearn import metrics

        score = metrics.mean_squared_error if name == "mse" else metrics.mean_absolute_error
        return float(score(labels, predictions))
    from scipy import stats

    correlation = stats.pearsonr if name == "pearson" else stats.spearmanr
    return float(correlation(predictions, labels)[0])


def _perplexity(token_loss: Any, mask: Any) -> float:
    import numpy as np

    if token_loss is None:
        raise HpoError(
            "metrics: perplexity needs the per-token losses of hpo's preprocess_logits_for_metrics"
        )
    mean_loss = float(np.asarray(token_loss, dtype=np.float64)[mask].mean())
    try:
        return math.exp(mean_loss)
    except OverflowError:
        return math.inf


def _seqeval(
    names: Sequence[str], ids: Any, labels: Any, mask: Any, label_names: Sequence[str]
) -> dict[str, float]:
    """Entity-level scores of BIO tags, one tag sequence per row (its labelled tokens)."""
    from seqeval import metrics

    def tags(row: Any, row_mask: Any) -> list[str]:
        try:
            return [label_names[int(i)] for i in row[row_mask]]
        except IndexError:
            raise HpoError(
                f"metrics: a label id is outside label_names ({len(label_names)} names)"
            ) from None

    truth = [tags(row, row_mask) for row, row_mask in zip(labels, mask, strict=True)]
    guess = [tags(row, row_mask) for row, row_mask in zip(ids, mask, strict=True)]
    score = {
        "seqeval_precision": metrics.precision_score,
        "seqeval_recall": metrics.recall_score,
        "seqeval_f1": metrics.f1_score,
    }
    return {name: float(score[name](truth, guess, zero_division=0)) for name in names}


def check_objective_names(
    compute_metrics: Callable[[Any], Mapping[str, Any]], wanted: Sequence[tuple[str, str]], ref: str
) -> Callable[[Any], Mapping[str, Any]]:
    """A user's `compute_metrics` that, at its first call, checks it returns the metrics the
    study's objective names (`wanted`: (study-file key, metric name) pairs), so a typo fails at
    the first evaluation with the names the function did return, not as a missing objective.
    """
    return _ObjectiveChecked(compute_metrics, tuple(wanted), ref)


class _ObjectiveChecked:
    """See `check_objective_names`; a class, so it pickles when the user's function does."""

    def __init__(
        self,
        compute_metrics: Callable[[Any], Mapping[str, Any]],
        wanted: tuple[tuple[str, str], ...],
        ref: str,
    ) -> None:
        self.compute_metrics = compute_metrics
        self.wanted = wanted
        self.ref = ref
        self.checked = False

    def __call__(self, prediction: Any) -> Mapping[str, Any]:
        results = self.compute_metrics(prediction)
        if self.checked:
            return results
        if not isinstance(results, Mapping):
            raise HpoError(
                f"compute_metrics: {self.ref!r} returned {type(results).__name__}; expected a "
                "dict of metric name -> number"
            )
        returned = {eval_metric_key(str(key)) for key in results}
        for key, metric in self.wanted:
            name = eval_metric_key(metric)
            if name not in returned and name not in ("eval_loss", *LOOP_METRICS):
                produced = ", ".join(("eval_loss", *sorted(returned)))
                raise HpoError(
                    f"{key} {metric!r} is not among the metrics of the first evaluation "
                    f"({produced}); return it from compute_metrics {self.ref!r} or name one of "
                    "those"
                )
        self.checked = True
        return results
