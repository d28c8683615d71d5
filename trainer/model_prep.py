"""What train() does to a model before its first step, as Transformers does: gradient
checkpointing, `config.use_cache`, NEFTune noise on the input embeddings, and the TF32 switch.
Each refuses loudly where the model cannot do what was asked."""

from __future__ import annotations

from typing import Any

import torch

from trainer.args import TrainingArguments


def prepare_model(model: torch.nn.Module, args: TrainingArguments) -> list[Any]:
    """Applies the arguments to `model`; returns the hook handles to remove after training."""
    if args.tf32 is not None and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "use_cache"):
        config.use_cache = args.use_cache
    if args.activation_checkpointing or args.gradient_checkpointing:
        name = "activation" if args.activation_checkpointing else "gradient"
        enable = getattr(model, f"{name}_checkpointing_enable", None)
        if enable is None or not getattr(model, "supports_gradient_checkpointing", True):
            raise ValueError(
                f"{name}_checkpointing=True: {type(model).__name__} does not support it (no "
                f"{name}_checkpointing_enable()); set it to False"
            )
        if args.activation_checkpointing:
            enable(**(args.activation_checkpointing_kwargs or {}))
        else:
            enable(gradient_checkpointing_kwargs=args.gradient_checkpointing_kwargs)
    handles = []
    if args.neftune_noise_alpha is not None:
        try:
            embeddings = getattr(model, "get_input_embeddings", lambda: None)()
        except NotImplementedError:  # PreTrainedModel's default for a model without one
            embeddings = None
        if embeddings is None:
            raise ValueError(
                f"neftune_noise_alpha={args.neftune_noise_alpha}: {type(model).__name__} has no "
                "get_input_embeddings() to add noise to; leave neftune_noise_alpha unset"
            )
        from transformers.integrations.neftune import activate_neftune

        handles.append(activate_neftune(model, args.neftune_noise_alpha))
    return handles


def release_model(model: torch.nn.Module, handles: list[Any]) -> None:
    """Removes the NEFTune hooks (Transformers does, so that inference is noise-free)."""
    if not handles:
        # Without NEFTune there is nothing to undo; a model without an embedding layer (a
        # regression or tabular head) raises NotImplementedError from get_input_embeddings().
        return
    for handle in handles:
        handle.remove()
    embeddings = getattr(model, "get_input_embeddings", lambda: None)()
    if embeddings is not None and hasattr(embeddings, "neftune_noise_alpha"):
        del embeddings.neftune_noise_alpha


def cast_for_full_eval(model: torch.nn.Module, args: TrainingArguments) -> torch.nn.Module:
    """The model in fp16 / bf16 for an evaluate() or predict() outside train(), when
    fp16_full_eval / bf16_full_eval ask for it (in place, as Transformers casts it: the
    model stays in that dtype afterwards)."""
    if args.fp16_full_eval:
        return model.to(dtype=torch.float16, device=args.device)
    if args.bf16_full_eval:
        return model.to(dtype=torch.bfloat16, device=args.device)
    return model
