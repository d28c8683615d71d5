"""A Transformers-compatible training loop: `from trainer import Trainer, TrainingArguments`
(and `Seq2SeqTrainer, Seq2SeqTrainingArguments`).

Every name loads on first use, so that `import trainer.keys` (the vocabulary `hpo.attrs`
re-exports, which `hpo status` imports) loads nothing else of the package; `TrainingArguments`
imports without torch, and nothing here loads optuna or ray.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy names are, for the type checker
    from trainer.args import ArgumentProblem as ArgumentProblem
    from trainer.args import TrainingArguments as TrainingArguments
    from trainer.args import TrainingArgumentsError as TrainingArgumentsError

_LAZY = {
    "TrainingArguments": "trainer.args",
    "TrainingArgumentsError": "trainer.args",
    "ArgumentProblem": "trainer.args",
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

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'trainer' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
