"""What a resume compares and restores besides the weights and the data position, as
Transformers does: a warning when the arguments that shape the run differ from the
checkpoint's, and the state of stateful callbacks (`restore_callback_states_from_checkpoint`).

A callback is stateful when it has Transformers' `ExportableState` method `state()`, returning
`{"args": constructor arguments, "attributes": attributes to set}`; its state goes into the
checkpoint's `trainer_state.json` under `stateful_callbacks`, keyed by class name (a list when
several callbacks share a class), where Transformers' own checkpoints keep it.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from trainer.args import TrainingArguments
from trainer.state import TrainerState

# Transformers' own logger: these warnings are Transformers' word for word, so that
# `transformers.logging.set_verbosity_error()` and the filters and handlers written for them reach
# ours too (as in trainer/callbacks.py).
logger = logging.getLogger("transformers.trainer")

# Transformers compares these (compare_trainer_and_checkpoint_args), with its wording.
_COMPARED = ("logging_steps", "eval_steps", "save_steps")


def warn_if_args_differ(args: TrainingArguments, saved: TrainerState) -> None:
    """Logs one warning naming each of the compared arguments that differs from the
    checkpoint's trainer_state.json (the resumed run goes on with the new values)."""
    differences = []
    for name in _COMPARED:
        ours, theirs = getattr(args, name, None), getattr(saved, name, None)
        if ours is not None and theirs is not None and ours != theirs:
            differences.append(
                f"\n\t{name}: {ours} (from args) != {theirs} (from trainer_state.json)"
            )
    batch = args.per_device_train_batch_size
    if saved.train_batch_size is not None:
        saved_batch = saved.train_batch_size // max(1, args.world_size)  # saved: all ranks'
        if batch != saved_batch:
            differences.append(
                f"\n\tper_device_train_batch_size: {batch} (from args) != "
                f"{saved_batch} (from trainer_state.json)"
            )
    if differences:
        logger.warning(
            "Warning: The following arguments do not match the ones in the `trainer_state.json` "
            "within the checkpoint directory: " + "".join(differences)
        )


def callback_states(callbacks: list[Any], control: Any) -> dict[str, Any]:
    """`stateful_callbacks` for trainer_state.json: every stateful callback's state, and the
    control flags (Transformers stores them under "TrainerControl")."""
    states: dict[str, Any] = {}
    for callback in callbacks:
        if not callable(getattr(callback, "state", None)):
            continue
        name, state = type(callback).__name__, callback.state()
        if name in states:
            previous = states[name]
            states[name] = [*previous, state] if isinstance(previous, list) else [previous, state]
        else:
            states[name] = state
    states["TrainerControl"] = {"args": dataclasses.asdict(control), "attributes": {}}
    return states


def restore_callback_states(handler: Any, saved: TrainerState) -> None:
    """Replaces each stateful callback whose class the checkpoint names with one rebuilt from
    the saved arguments and attributes (in order, for several of one class); warns about
    saved states no callback of this run takes. The control flags are not restored: the loop
    starts every run with clear ones."""
    not_found = []
    for name, data in (saved.stateful_callbacks or {}).items():
        if name == "TrainerControl":
            continue
        saved_states = data if isinstance(data, list) else [data]
        matching = [c for c in handler.callbacks if type(c).__name__ == name]
        if not matching:
            not_found.append(name)
            continue
        for callback, state in zip(matching, saved_states, strict=False):  # those both have
            rebuilt = type(callback)(**state.get("args", {}))
            for attribute, value in state.get("attributes", {}).items():
                setattr(rebuilt, attribute, value)
            handler.callbacks[handler.callbacks.index(callback)] = rebuilt
        logger.info(
            "Continuing training from checkpoint, restoring any callbacks that were passed in"
        )
    if not_found:
        logger.warning(
            "Checkpoint included callbacks not included in current configuration. Ignoring. "
            f"({', '.join(not_found)})"
        )
