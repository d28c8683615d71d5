"""Callback states in checkpoints, as Transformers keeps them: `state.stateful_callbacks` maps a
class name to the `state()` of each callback of that class that can export one (Transformers'
`ExportableState`, our `EarlyStoppingCallback`) and of the `TrainerControl`; with
`restore_callback_states_from_checkpoint=True` a resumed run rebuilds those callbacks from it."""

from __future__ import annotations

import logging
from typing import Any

from trainer.callbacks import EarlyStoppingCallback, TrainerControl

# Transformers' logger, for the warning Transformers words the same way.
transformers_logger = logging.getLogger("transformers.trainer")


def _exports_state(callback: Any) -> bool:
    from transformers.trainer_callback import ExportableState

    return isinstance(callback, (ExportableState, TrainerControl, EarlyStoppingCallback))


def callback_states(callbacks: list[Any], control: Any) -> dict[str, Any]:
    """{class name: state, or the list of states of several callbacks of that class}."""
    states: dict[str, Any] = {}
    for callback in [*callbacks, control]:
        if not _exports_state(callback):
            continue
        name, state = type(callback).__name__, callback.state()
        if name not in states:
            states[name] = state
        elif isinstance(states[name], list):
            states[name].append(state)
        else:
            states[name] = [states[name], state]
    return states


def restore_callback_states(trainer: Any) -> None:
    """Replaces each callback (and the control) whose class the checkpoint's state names by one
    built from the saved state (its `args`, then its `attributes`), in order for several of one
    class; warns, as Transformers does, about saved classes the trainer has no callback of."""
    handler = trainer.callback_handler
    current = [*handler.callbacks, trainer.control]
    rebuilt, not_found = [], []
    for name, saved in (trainer.state.stateful_callbacks or {}).items():
        saved = saved if isinstance(saved, list) else [saved]
        same_class = [callback for callback in current if type(callback).__name__ == name]
        if not same_class:
            not_found.append(name)
            continue
        # As Transformers: as many as both lists have (a callback more or less is left alone).
        for callback, state in zip(same_class, saved, strict=False):
            fresh = type(callback)(**state.get("args", {}))
            for attribute, value in state.get("attributes", {}).items():
                setattr(fresh, attribute, value)
            if isinstance(callback, TrainerControl):
                trainer.control = fresh
            else:
                rebuilt.append(fresh)
                handler.remove_callback(callback)
    if not_found:
        transformers_logger.warning(
            "Checkpoint included callbacks not included in current configuration. Ignoring. "
            f"({', '.join(not_found)})"
        )
    for callback in rebuilt:
        handler.add_callback(callback)
