"""Reading checkpoints: where they are, the complete ones, and loading one to resume or to
load its weights; the file names of a checkpoint (Transformers' names).

Loading never unpickles code: weights come from safetensors, the rest from JSON or
`torch.load(weights_only=True)`. A missing, incomplete or corrupt checkpoint is a
CheckpointError naming its path. Writing and rotation are in trainer/checkpoint.py, which
re-exports this module's names (callers use `trainer.checkpoint`).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import torch
from safetensors.torch import load_model

from trainer.compat import uncompiled
from trainer.rng import set_rng_state
from trainer.state import TrainerState

WEIGHTS_NAME = "model.safetensors"
# What save_pretrained writes instead of WEIGHTS_NAME for a model over max_shard_size: the
# index of the shard files (model-00001-of-0000N.safetensors, ...) that hold the weights.
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
OPTIMIZER_NAME = "optimizer.pt"
SCHEDULER_NAME = "scheduler.pt"
SCALER_NAME = "scaler.pt"
RNG_STATE_NAME = "rng_state.pth"
TRAINER_STATE_NAME = "trainer_state.json"
# Our TrainerState fields that Transformers' has not (the data position, ...): a file of their
# own, so that transformers.TrainerState.load_from_json reads trainer_state.json.
OWN_STATE_NAME = "trainer_state_extra.json"
TRAINING_ARGS_NAME = "training_args.json"
# The arguments pickled, as Transformers' checkpoints hold them, for the tools that read those;
# never loaded here (unpickling runs code): a resume reads nothing but JSON, safetensors and
# weights_only tensors.
TRAINING_ARGS_PICKLE_NAME = "training_args.bin"
PREFIX = "checkpoint"
_CHECKPOINT_RE = re.compile(rf"^{PREFIX}-(\d+)$")


class CheckpointError(ValueError):
    """A checkpoint that is missing, incomplete or unreadable; the message names the path."""


def checkpoint_dir(output_dir: str, step: int) -> str:
    return os.path.join(output_dir, f"{PREFIX}-{step}")


def read_state(directory: str) -> TrainerState:
    """The checkpoint's TrainerState: trainer_state.json with our own fields from their file
    (a checkpoint of an earlier version has them in trainer_state.json itself)."""
    values: dict[str, Any] = {}
    own = os.path.join(directory, OWN_STATE_NAME)
    for path in (_require(directory, TRAINER_STATE_NAME), own):
        if path == own and not os.path.isfile(own):
            continue
        try:
            with open(path, encoding="utf-8") as handle:
                loaded = json.load(handle)
            if not isinstance(loaded, dict):
                raise TypeError(f"a JSON object expected, got {type(loaded).__name__}")
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as error:
            raise CheckpointError(
                f"checkpoint file {path} is corrupt (not valid trainer state JSON): {error}"
            ) from error
        values.update(loaded)
    try:
        return TrainerState.from_dict(values)
    except TypeError as error:
        raise CheckpointError(
            f"checkpoint {directory} has an unreadable trainer state: {error}"
        ) from error


def load_weights(directory: str, model: torch.nn.Module) -> None:
    """Loads a checkpoint's weights into `model`: model.safetensors, or the shards that
    model.safetensors.index.json lists. Only safetensors: nothing is unpickled."""
    if not os.path.isdir(directory):
        raise CheckpointError(f"checkpoint directory {directory} does not exist")
    single = os.path.join(directory, WEIGHTS_NAME)
    index = os.path.join(directory, WEIGHTS_INDEX_NAME)
    if os.path.isfile(single):
        try:
            missing, unexpected = load_model(uncompiled(model), single, strict=False)
        except Exception as error:  # safetensors raises its own error types for truncated files
            raise CheckpointError(
                f"checkpoint weights {single} are corrupt or unreadable: {error}"
            ) from error
        _check_match(single, missing, unexpected)
    elif os.path.isfile(index):
        _load_shards(directory, index, uncompiled(model))
    else:
        pickled = [
            n
            for n in ("pytorch_model.bin", "pytorch_model.bin.index.json")
            if os.path.isfile(os.path.join(directory, n))
        ]
        hint = (
            f"; it has {pickled[0]}, which is not loaded (unpickling runs code): save the "
            "model with save_pretrained(safe_serialization=True)"
            if pickled
            else ""
        )
        raise CheckpointError(
            f"checkpoint {directory} has no weights: neither {WEIGHTS_NAME} nor "
            f"{WEIGHTS_INDEX_NAME} (sharded safetensors) is there{hint}"
        )


def _load_shards(directory: str, index: str, model: torch.nn.Module) -> None:
    from safetensors.torch import load_file

    try:
        with open(index, encoding="utf-8") as handle:
            weight_map = json.load(handle)["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise CheckpointError(
            f"checkpoint index {index} is corrupt (no weight_map of tensor -> shard): {error}"
        ) from error
    weights: dict[str, torch.Tensor] = {}
    for shard in shards:
        path = os.path.join(directory, shard)
        if not os.path.isfile(path):
            raise CheckpointError(
                f"checkpoint {directory} is incomplete: shard {shard} that "
                f"{WEIGHTS_INDEX_NAME} lists is missing"
            )
        try:
            weights.update(load_file(path))
        except Exception as error:
            raise CheckpointError(
                f"checkpoint weights {path} are corrupt or unreadable: {error}"
            ) from error
    result = model.load_state_dict(weights, strict=False)
    # save_pretrained writes a tied weight once (lm_head.weight shares wte.weight's storage):
    # a missing name whose tensor is one that was loaded is not missing.
    params = model.state_dict()
    loaded = {params[name].data_ptr() for name in weights if name in params}
    missing = [name for name in result.missing_keys if params[name].data_ptr() not in loaded]
    _check_match(index, missing, result.unexpected_keys)


def _check_match(path: str, missing: list[str], unexpected: list[str]) -> None:
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint weights {path} do not match the model: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}; was it saved from a different architecture?"
        )


def load_training_state(
    directory: str,
    *,
    optimizer: torch.optim.Optimizer | None,
    scheduler: Any | None,
    scaler: Any | None,
) -> None:
    """Restores optimizer, scheduler, grad-scaler and RNG states (weights_only loads)."""
    if optimizer is not None:
        optimizer.load_state_dict(_torch_load(directory, OPTIMIZER_NAME))
    if scheduler is not None:
        scheduler.load_state_dict(_torch_load(directory, SCHEDULER_NAME))
    if scaler is not None and os.path.exists(os.path.join(directory, SCALER_NAME)):
        scaler.load_state_dict(_torch_load(directory, SCALER_NAME))
    set_rng_state(_torch_load(directory, RNG_STATE_NAME))


def _require(directory: str, name: str) -> str:
    if not os.path.isdir(directory):
        raise CheckpointError(f"checkpoint directory {directory} does not exist")
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
        # A model-only checkpoint lacks exactly the training state (optimizer, RNG, ...).
        model_only = name not in (TRAINER_STATE_NAME, WEIGHTS_NAME)
        hint = (
            " (a model-only checkpoint, save_only_model=True, cannot resume training)"
            if model_only
            else ""
        )
        raise CheckpointError(f"checkpoint {directory} is incomplete: {name} is missing{hint}")
    return path


def _torch_load(directory: str, name: str) -> Any:
    path = _require(directory, name)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(
            f"checkpoint file {path} is corrupt or unreadable: {error}"
        ) from error


def sorted_checkpoints(output_dir: str) -> list[str]:
    """Complete checkpoints in output_dir, oldest step first."""
    if not os.path.isdir(output_dir):
        return []
    found = []
    for name in os.listdir(output_dir):
        match = _CHECKPOINT_RE.match(name)
        path = os.path.join(output_dir, name)
        if match and os.path.isfile(os.path.join(path, TRAINER_STATE_NAME)):
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def latest_checkpoint(output_dir: str) -> str:
    checkpoints = sorted_checkpoints(output_dir)
    if not checkpoints:
        raise CheckpointError(
            f"No valid checkpoint found in output directory ({output_dir}): "
            "resume_from_checkpoint=True needs a complete checkpoint-<step> directory there; pass "
            "a checkpoint path or train without resume_from_checkpoint"
        )
    return checkpoints[-1]
