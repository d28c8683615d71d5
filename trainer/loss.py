"""Loss-side options of the arguments: label smoothing (Transformers' LabelSmoother) and the
count of input tokens a step consumed (include_num_input_tokens_seen)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from trainer.args import TrainingArguments


def label_smoother(args: TrainingArguments) -> Any:
    """Transformers' LabelSmoother for label_smoothing_factor, or None when it is 0."""
    if not args.label_smoothing_factor:
        return None
    from transformers.trainer_pt_utils import LabelSmoother

    return LabelSmoother(epsilon=args.label_smoothing_factor)


def count_input_tokens(batch: Mapping[str, Any], args: TrainingArguments, tokenizer: Any) -> int:
    """Tokens of `input_ids` in a batch: all of them, or ("non_padding") those the attention
    mask keeps (else those that are not the tokenizer's pad token), as Transformers counts."""
    ids = batch.get("input_ids")
    if not isinstance(ids, torch.Tensor):
        return 0
    if args.include_num_input_tokens_seen == "non_padding":
        mask = batch.get("attention_mask")
        if isinstance(mask, torch.Tensor):
            return int(mask.sum())
        pad = getattr(tokenizer, "pad_token_id", None)
        if pad is not None:
            return int((ids != pad).sum())
    return ids.numel()
