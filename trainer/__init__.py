"""A Transformers-compatible training loop: `from trainer import Trainer, TrainingArguments`
(and `Seq2SeqTrainer, Seq2SeqTrainingArguments`).

`TrainingArguments` imports without torch; the torch-dependent names load on first use so that
`import trainer` (or `trainer.args`) stays cheap and never loads optuna or ray.
"""

from __future__ import annotations

import importlib
from typing import Any

from trainer.args import ArgumentProblem, TrainingArguments, TrainingArgumentsError

_LAZY = {
    "Trainer": "trainer.trainer",
    "Seq2SeqTrainer": "trainer.seq2seq",
    "Seq2SeqTrainingArguments": "trainer.seq2seq_args",
    "TrainOutput": "trainer.state",
    "TrainerState": "trainer.state",
    "TrainerCallback": "trainer.callbacks",
    "TrainerControl": "trainer.callbacks",
    "EarlyStoppingCallback": "trainer.callbacks",
    "DefaultFlowCallback": "trainer.default_callbacks",
    "PrinterCallback": "trainer.default_callbacks",
    "ProgressCallback": "trainer.default_callbacks",
    "CallbackHandler": "trainer.callbacks",
    "NonFiniteLossError": "trainer.trainer",
    "CheckpointError": "trainer.checkpoint",
    "Reporter": "trainer.trial",
    "reporter_for": "trainer.trial",
}

__all__ = ["TrainingArguments", "TrainingArgumentsError", "ArgumentProblem", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'trainer' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
