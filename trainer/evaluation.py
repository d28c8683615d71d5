"""Evaluation: `Trainer.evaluate()` and `predict()` (`TrainerEvaluation`, which `Trainer`
extends), the loop's own evaluations, one pass over an evaluation set without gradients, the
metrics Transformers reports for it, and the bookkeeping of the best value of the objective
metric."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import torch

from trainer import distributed
from trainer.args import TrainingArguments
from trainer.callbacks import objective_name
from trainer.data import batch_rows, is_map_style
from trainer.distributed import Ranks
from trainer.hooks import label_names, overrides
from trainer.model_prep import cast_for_full_eval
from trainer.optim import steps_on_metrics
from trainer.state import TrainerState

if TYPE_CHECKING:
    from trainer.run import Run


class EvalLoopOutput(NamedTuple):
    predictions: Any
    label_ids: Any
    metrics: dict[str, float]
    num_samples: int


class PredictionOutput(NamedTuple):
    """What `Trainer.predict()` returns (Transformers' fields)."""

    predictions: Any
    label_ids: Any
    metrics: dict[str, float]


def evaluation_loop(
    trainer: Any,
    loader: Any,
    *,
    prediction_loss_only: bool,
    ignore_keys: list[str] | None,
    prefix: str,
    ranks: Ranks | None = None,
    description: str = "Evaluation",
) -> EvalLoopOutput:
    """One pass of `trainer.prediction_step` over `loader`: `{prefix}_loss`, the compute_metrics
    values (prefixed) and the runtime figures, with the predictions and labels (numpy, padded
    with -100 across batches of different lengths, as Transformers does). The model is left in
    the mode (train or eval) it was in. With `ranks` (torch.distributed), `loader` holds this
    rank's share of the rows and the loss sums are added up over the ranks.

    With `batch_eval_metrics`, compute_metrics is called on each batch (its tensors, on the
    model's device) with `compute_result=True` on the last one, whose value is the metrics; the
    predictions are then kept only for predict() (`description="Prediction"`, Transformers'
    value). Outside train(), fp16_full_eval / bf16_full_eval cast the model first."""
    from transformers.trainer_pt_utils import nested_concat, nested_numpify
    from transformers.trainer_utils import EvalPrediction

    args = trainer.args
    if not getattr(trainer, "_in_train", False):  # the loop's evaluations keep its precision
        trainer.model = cast_for_full_eval(trainer.model, args)
    model = trainer.model
    was_training = model.training
    model.eval()
    loss_sum: Any = 0.0  # a tensor on the model's device: no sync per batch
    rows = batches = 0
    has_loss = False
    predictions: Any = None
    labels: Any = None
    preprocess = trainer.preprocess_logits_for_metrics
    batched = (
        bool(getattr(args, "batch_eval_metrics", False)) and trainer.compute_metrics is not None
    )
    if batched:
        _check_batched_metrics(trainer.compute_metrics)
    keep = description == "Prediction" or not batched
    batch_metrics: dict[str, Any] | None = None
    started = time.perf_counter()
    try:
        for batch, last in _with_last(loader):
            loss, logits, batch_labels = trainer.prediction_step(
                model, batch, prediction_loss_only, ignore_keys=ignore_keys
            )
            n = batch_rows(batch)
            if loss is not None:
                loss_sum = loss_sum + loss * n
                has_loss = True
            rows += n
            batches += 1
            if logits is not None and preprocess is not None:
                logits = preprocess(logits, batch_labels)
            if batched and logits is not None and batch_labels is not None:
                batch_metrics = trainer.compute_metrics(
                    EvalPrediction(predictions=logits, label_ids=batch_labels),
                    compute_result=last,
                )
            if logits is not None and keep:
                logits = _to_cpu(logits)
                predictions = logits if predictions is None else nested_concat(predictions, logits)
            if batch_labels is not None and keep:
                batch_labels = _to_cpu(batch_labels)
                labels = batch_labels if labels is None else nested_concat(labels, batch_labels)
            # Transformers' event after each batch (evaluation progress bars hang off it).
            trainer.control = trainer._call("on_prediction_step", eval_dataloader=loader)
    finally:
        if was_training:
            model.train()
    if ranks is not None:  # each rank evaluated its share of the rows: add the sums up
        loss_sum, rows = ranks.sum(loss_sum), ranks.sum(rows)
        has_loss = ranks.sum(int(has_loss)) > 0
    runtime = time.perf_counter() - started
    predictions = nested_numpify(predictions) if predictions is not None else None
    labels = nested_numpify(labels) if labels is not None else None
    metrics: dict[str, float] = {}
    if has_loss and rows:
        metrics[f"{prefix}_loss"] = float(loss_sum) / rows
    # Transformers calls compute_metrics only with labels; a model that takes no label
    # argument at all (a plain nn.Module) is scored from its predictions (label_ids=None).
    scorable = labels is not None or not label_names(model, args)
    extra: Any = batch_metrics or {}
    if not batched and trainer.compute_metrics is not None and predictions is not None and scorable:
        extra = trainer.compute_metrics(EvalPrediction(predictions=predictions, label_ids=labels))
    if extra:
        for key, value in extra.items():
            metrics[key if key.startswith(f"{prefix}_") else f"{prefix}_{key}"] = value
    metrics[f"{prefix}_runtime"] = round(runtime, 4)
    metrics[f"{prefix}_samples_per_second"] = round(rows / runtime, 3) if runtime else 0.0
    metrics[f"{prefix}_steps_per_second"] = round(batches / runtime, 3) if runtime else 0.0
    return EvalLoopOutput(predictions, labels, metrics, rows)


def _with_last(loader: Any) -> Any:
    """(batch, is_last) for each batch of `loader`: one batch read ahead."""
    iterator = iter(loader)
    try:
        current = next(iterator)
    except StopIteration:
        return
    for following in iterator:
        yield current, False
        current = following
    yield current, True


def _check_batched_metrics(compute_metrics: Any) -> None:
    import inspect

    try:
        parameters = inspect.signature(compute_metrics).parameters
    except (TypeError, ValueError):  # a builtin without a signature: let the call decide
        return
    if "compute_result" not in parameters and not any(
        p.kind == p.VAR_KEYWORD for p in parameters.values()
    ):
        raise ValueError(
            "batch_eval_metrics=True calls compute_metrics(eval_prediction, compute_result=...) on "
            "each batch (compute_result=True on the last, which returns the metrics): give "
            "compute_metrics a `compute_result` argument, or set batch_eval_metrics=False"
        )


def _to_cpu(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return type(value)(_to_cpu(v) for v in value)
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return value.float() if value.is_floating_point() else value
    return value


def objective_value(metrics: Mapping[str, float], args: TrainingArguments) -> float | None:
    """The value of `metric_for_best_model` in `metrics`; None when no objective was asked for
    and the default one (eval_loss) is absent."""
    name = objective_name(args)
    if name not in metrics:
        if args.metric_for_best_model is None and not args.load_best_model_at_end:
            return None
        raise ValueError(
            f"metric_for_best_model={args.metric_for_best_model!r} ({name}) is not among "
            f"the evaluation metrics {sorted(metrics)}"
        )
    return float(metrics[name])


def record_if_best(state: TrainerState, args: TrainingArguments, value: float) -> bool:
    """Stores `value` as the best metric (at the current step) if it beats the best so far."""
    best = state.best_metric
    greater = bool(args.greater_is_better) if args.greater_is_better is not None else False
    if best is None or (value > best if greater else value < best):
        state.best_metric = value
        state.best_global_step = state.global_step
        return True
    return False


if TYPE_CHECKING:  # a mixin of Trainer: checked against the attributes TrainerBase gives it
    from trainer.base import TrainerBase as _TrainerAttributes
else:
    _TrainerAttributes = object


class TrainerEvaluation(_TrainerAttributes):
    """`evaluate()` and `predict()` with Transformers' signatures and semantics, and the
    evaluation of the training loop; mixed into `Trainer`, whose attributes it reads."""

    def evaluate(
        self,
        eval_dataset: Any = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> dict[str, float]:
        """Metrics of one pass over eval_dataset, logged and passed to on_evaluate."""
        # Predictions are gathered only for compute_metrics (as Transformers does).
        loss_only = self.compute_metrics is None or self.args.prediction_loss_only
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        # Under torch.distributed each rank evaluates every world_size-th row and the loss sums
        # are added up. Predictions for compute_metrics (needed in one place), an iterable set
        # or a subclass's own get_eval_dataloader mean that every rank evaluates every row.
        ranks = distributed.current()
        if ranks is None or not loss_only or not is_map_style(dataset):
            ranks = None
        elif overrides(self, "get_eval_dataloader"):
            ranks = None
        if ranks is not None:
            loader = self._inference_loader(dataset, ranks)
        else:
            loader = self.get_eval_dataloader(eval_dataset)
        if self.model is None:
            self.model = self._model_outside_train()
        if ranks is not None:
            output = evaluation_loop(
                self,
                loader,
                prediction_loss_only=loss_only,
                ignore_keys=ignore_keys,
                prefix=metric_key_prefix,
                ranks=ranks,
            )
        else:  # through self, so that a subclass's evaluation_loop runs (as in Transformers)
            output = self.evaluation_loop(
                loader, "Evaluation", loss_only, ignore_keys, metric_key_prefix
            )
        metrics = output.metrics
        self.log(metrics)  # adds epoch, as Transformers' evaluate() returns it
        self.control = self._call("on_evaluate", metrics=metrics)
        return metrics

    def predict(
        self,
        test_dataset: Any,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "test",
    ) -> PredictionOutput:
        """Predictions (numpy, padded with -100 across batches), label ids (None without labels)
        and metrics (`test_loss`, compute_metrics' values, runtime) of one pass."""
        loader = self.get_test_dataloader(test_dataset)
        if self.model is None:
            self.model = self._model_outside_train()
        output = self.evaluation_loop(
            loader, "Prediction", self.args.prediction_loss_only, ignore_keys, metric_key_prefix
        )
        self.control = self._call("on_predict", metrics=output.metrics)
        return PredictionOutput(output.predictions, output.label_ids, output.metrics)

    def _evaluate_in_loop(self, run: Run) -> bool:
        """Evaluates, tracks the best metric and steps a metric-driven scheduler; True if best."""
        metrics = self._evaluate(run.plan.trial, run.ignore_keys_for_eval)
        run.last_eval_step = self.state.global_step
        run.last_metrics = metrics
        value = objective_value(metrics, self.args)
        if value is None:
            return False
        if steps_on_metrics(run.scheduler):
            run.scheduler.step(value)
        return record_if_best(self.state, self.args, value)

    def _evaluate(
        self, trial: Any, ignore_keys_for_eval: list[str] | None, skip_scheduler: bool = False
    ) -> dict[str, float]:
        """The evaluation of the training loop, under Transformers' name for it (code and tests
        patch it to feed the loop metrics); the loop itself reports to the trial and steps a
        metric-driven scheduler."""
        return self.evaluate(ignore_keys=ignore_keys_for_eval)
