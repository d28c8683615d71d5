"""What goes into the model and what comes out: the inputs its forward() takes, the loss it
returns, and how many loss terms (label tokens) a batch carries.

Everything here is per class and cached, or plain dict work: the training loop calls these
functions for every micro-batch.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Mapping
from typing import Any

import torch

from trainer.args import TrainingArguments
from trainer.data import batch_rows

_FORWARD_PARAMS: dict[type, frozenset[str] | None] = {}
_ACCEPTS_KWARGS: dict[type, bool] = {}
_SHIFTS: dict[type, bool] = {}


def model_inputs(
    batch: Any, device: torch.device, model: torch.nn.Module, remove_unused_columns: bool
) -> dict[str, Any]:
    """The batch's columns that forward() takes (all of them unless remove_unused_columns),
    moved to `device`."""
    if not isinstance(batch, Mapping):
        raise TypeError(
            f"a batch must be a dict of model inputs, got {type(batch).__name__}; check data_collator"
        )
    accepted = forward_params(model) if remove_unused_columns else None
    inputs = {}
    for key, value in batch.items():
        if accepted is not None and key not in accepted:
            continue
        if device.type != "cpu" and isinstance(value, torch.Tensor):
            value = value.to(device, non_blocking=True)
        inputs[key] = value
    return inputs


def autocast(
    args: TrainingArguments, device: torch.device
) -> contextlib.AbstractContextManager[Any]:
    """The mixed-precision context that bf16 / fp16 ask for (a no-op without them)."""
    if args.bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if args.fp16:
        return torch.autocast(device.type, dtype=torch.float16)
    return contextlib.nullcontext()


def to_device(value: torch.Tensor | int, device: torch.device) -> torch.Tensor | int:
    return value.to(device) if isinstance(value, torch.Tensor) else value


def extract_loss(outputs: Any) -> torch.Tensor:
    """The loss of a forward pass given labels, as Transformers reads it: `outputs["loss"]`
    of a dict (a ModelOutput is one), the first element of a tuple or list (a model called with
    `return_dict=False`, or a plain module returning `(loss, logits, ...)`), or `.loss`; an
    error that says how to get one if it is missing."""
    if isinstance(outputs, (tuple, list)) and outputs and isinstance(outputs[0], torch.Tensor):
        return outputs[0]
    loss = maybe_loss(outputs)
    if loss is None:
        keys = (
            f" (keys: {', '.join(map(str, outputs.keys()))})"
            if isinstance(outputs, Mapping)
            else ""
        )
        raise ValueError(
            f"the model returned no loss ({type(outputs).__name__}{keys}); give it labels, or "
            "return an object with .loss, a dict with 'loss' or a tuple (loss, logits, ...)"
        )
    return loss


def maybe_loss(outputs: Any) -> torch.Tensor | None:
    """The loss a model returned without being given labels, if any: `outputs['loss']`,
    `outputs.loss`, a scalar tensor itself, or a tuple whose first element is a scalar; else
    None (a tuple's first element is then the logits, not a loss)."""
    if isinstance(outputs, Mapping):
        return outputs.get("loss")
    if isinstance(outputs, torch.Tensor):
        return outputs if outputs.dim() == 0 else None
    if isinstance(outputs, (tuple, list)):
        first = outputs[0] if outputs else None
        return first if isinstance(first, torch.Tensor) and first.dim() == 0 else None
    return getattr(outputs, "loss", None)


def loss_items(batch: Mapping[str, Any], shifts_labels: bool) -> torch.Tensor | int:
    """How many loss terms a batch carries: label tokens that are not -100 (after the causal
    shift when the model shifts), else the number of rows."""
    labels = batch.get("labels") if isinstance(batch, Mapping) else None
    if isinstance(labels, torch.Tensor):
        if shifts_labels and labels.dim() > 1:
            labels = labels[..., 1:]
        if labels.is_floating_point():
            return labels.shape[0]
        return labels.ne(-100).sum()
    return batch_rows(batch)


def forward_params(model: torch.nn.Module) -> frozenset[str] | None:
    """The keyword names forward() takes, or None when it takes **kwargs (accepts anything)."""
    cls = type(model)
    if cls not in _FORWARD_PARAMS:
        params = inspect.signature(model.forward).parameters.values()
        if any(p.kind == p.VAR_KEYWORD for p in params):
            _FORWARD_PARAMS[cls] = None
        else:
            _FORWARD_PARAMS[cls] = frozenset(p.name for p in params)
    return _FORWARD_PARAMS[cls]


def accepts_loss_kwargs(model: torch.nn.Module) -> bool:
    """Whether the model normalises its loss by `num_items_in_batch` (Transformers models)."""
    cls = type(model)
    if cls not in _ACCEPTS_KWARGS:
        declared = getattr(model, "accepts_loss_kwargs", None)
        if declared is not None:
            _ACCEPTS_KWARGS[cls] = bool(declared)
        else:
            is_hf = hasattr(model, "loss_function") and hasattr(model, "config")
            _ACCEPTS_KWARGS[cls] = is_hf and forward_params(model) is None
    return _ACCEPTS_KWARGS[cls]


def loss_shifts_labels(model: torch.nn.Module) -> bool:
    """Causal-LM losses predict token i+1 from i, so label position 0 is never a target."""
    cls = type(model)
    if cls not in _SHIFTS:
        shifts = False
        if hasattr(model, "loss_type"):
            try:
                from transformers.loss.loss_utils import ForCausalLMLoss

                config = getattr(model, "config", None)
                # The loss the model really uses: a config without loss_type falls back to
                # ForCausalLMLoss in Transformers (whose Trainer then counts position 0 too).
                shifts = getattr(model, "loss_function", None) is ForCausalLMLoss and not getattr(
                    config, "is_encoder_decoder", False
                )
            except ImportError:  # pragma: no cover - transformers is a dependency
                shifts = False
        _SHIFTS[cls] = shifts
    return _SHIFTS[cls]
