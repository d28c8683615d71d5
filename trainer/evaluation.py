"""Evaluation: one pass over an evaluation set without gradients, the metrics Transformers
reports for it, and the bookkeeping of the best value of the objective metric."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import torch

from trainer.args import TrainingArguments
from trainer.callbacks import objective_name
from trainer.data import EpochBatches, is_map_style, loader_for
from trainer.distributed import Ranks
from trainer.model_io import autocast, maybe_loss, model_inputs
from trainer.state import TrainerState


def evaluate_model(
    model: torch.nn.Module,
    dataset: Any,
    args: TrainingArguments,
    *,
    collate: Callable[[Any], Any],
    compute_metrics: Callable[[Any], dict[str, float]] | None,
    ignore_keys: list[str] | None,
    prefix: str,
    ranks: Ranks | None = None,
) -> dict[str, float]:
    """`{prefix}_loss`, the compute_metrics values (prefixed) and the runtime figures; the model
    is left in the mode (train or eval) it was in. Under torch.distributed each rank evaluates
    every world_size-th row and the loss sums are added up (with compute_metrics, which needs
    every prediction in one place, each rank evaluates all rows)."""
    device = next(model.parameters()).device
    batch_size = args.per_device_eval_batch_size
    want_predictions = compute_metrics is not None and not args.prediction_loss_only
    if want_predictions or not is_map_style(dataset):
        ranks = None
    sampler: Any = None
    if ranks is not None:
        sampler = ranks.eval_indices(len(dataset), batch_size)
    elif is_map_style(dataset):
        sampler = EpochBatches(len(dataset), batch_size, 0, 0, shuffle=False)
    loader = loader_for(
        dataset, args, batch_size=batch_size, collate=collate, sampler=sampler, on_accelerator=False
    )
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=device)
    rows = batches = 0
    has_loss = False
    predictions: list[Any] = []
    labels: list[Any] = []
    started = time.perf_counter()
    with torch.no_grad():
        for batch in loader:
            inputs = model_inputs(batch, device, model, args.remove_unused_columns)
            with autocast(args, device):
                outputs = model(**inputs)
            n = _rows(inputs)
            loss = maybe_loss(outputs)
            if loss is not None:
                loss_sum += loss.detach().float() * n
                has_loss = True
            rows += n
            batches += 1
            if want_predictions:
                predictions.append(_logits(outputs, ignore_keys))
                labels.append(inputs.get("labels"))
    if was_training:
        model.train()
    if ranks is not None:
        loss_sum, rows = ranks.sum(loss_sum), ranks.sum(rows)
        has_loss = ranks.sum(int(has_loss)) > 0
    runtime = time.perf_counter() - started
    metrics: dict[str, float] = {}
    if has_loss and rows:
        metrics[f"{prefix}_loss"] = loss_sum.item() / rows
    if want_predictions:
        from transformers.trainer_utils import EvalPrediction

        assert compute_metrics is not None
        extra = compute_metrics(EvalPrediction(_concat(predictions), _concat(labels)))
        for key, value in extra.items():
            metrics[key if key.startswith(f"{prefix}_") else f"{prefix}_{key}"] = value
    metrics[f"{prefix}_runtime"] = round(runtime, 4)
    metrics[f"{prefix}_samples_per_second"] = round(rows / runtime, 3) if runtime else 0.0
    metrics[f"{prefix}_steps_per_second"] = round(batches / runtime, 3) if runtime else 0.0
    return metrics


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


def _logits(outputs: Any, ignore_keys: list[str] | None) -> Any:
    if isinstance(outputs, Mapping) or hasattr(outputs, "keys"):
        values = [v for k, v in outputs.items() if k != "loss" and k not in (ignore_keys or [])]
    else:
        values = [getattr(outputs, "logits", None)]
    values = [v for v in values if isinstance(v, torch.Tensor)]
    if not values:
        return None
    return values[0].detach().float().cpu()


def _concat(parts: list[Any]) -> Any:
    tensors = [p for p in parts if p is not None]
    if not tensors:
        return None
    return torch.cat(tensors).numpy()


def _rows(inputs: Mapping[str, Any]) -> int:
    for value in inputs.values():
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return value.shape[0]
    return 1
