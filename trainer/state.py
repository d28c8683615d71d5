"""TrainerState (what a checkpoint remembers, as JSON) and TrainOutput (what train() returns)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class TrainOutput(NamedTuple):
    global_step: int
    training_loss: float
    metrics: dict[str, float]


@dataclass
class TrainerState:
    """Progress of one run; Transformers' field names where Transformers has the field.

    `epoch_index` and `steps_in_epoch` are the data position: a resume starts epoch
    `epoch_index` and skips its first `steps_in_epoch * gradient_accumulation_steps` batches.
    """

    epoch: float = 0.0
    global_step: int = 0
    max_steps: int = 0
    num_train_epochs: int = 0
    logging_steps: float = 500
    eval_steps: float = 500
    save_steps: float = 500
    train_batch_size: int | None = None
    gradient_accumulation_steps: int = 1
    log_history: list[dict[str, float]] = field(default_factory=list)
    best_metric: float | None = None
    best_global_step: int | None = None
    best_model_checkpoint: str | None = None
    # The checkpoint directory written most recently (set before `on_save` runs).
    last_checkpoint: str | None = None
    is_hyper_param_search: bool = False
    trial_name: str | None = None
    trial_params: dict[str, Any] | None = None
    num_input_tokens_seen: int = 0
    epoch_index: int = 0
    steps_in_epoch: int = 0
    is_local_process_zero: bool = True
    is_world_process_zero: bool = True
    # push_to_hub uploads that failed every attempt: {"step", "attempts", "error"} (trainer/hub.py)
    hub_push_failures: list[dict[str, Any]] = field(default_factory=list)

    def to_json_string(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True, default=_plain) + "\n"

    def save_to_json(self, json_path: str) -> None:
        with open(json_path, "w", encoding="utf-8") as handle:
            handle.write(self.to_json_string())

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainerState:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})

    @classmethod
    def load_from_json(cls, json_path: str) -> TrainerState:
        with open(json_path, encoding="utf-8") as handle:
            return cls.from_dict(json.load(handle))


def _plain(value: Any) -> Any:
    """numpy / torch scalars (Ray and metric functions hand those out) as plain numbers."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)
