"""A model factory for study files whose worker must die at one exact moment of a trial.

`model: {factory: helpers.fault_models:gpt2_killed_before_record}` with the GPT-2 config plus
`kill_at_step` and `marker`: the worker process that builds the model SIGKILLs itself when
the trainer has written checkpoint-<kill_at_step> and is about to record it in the storage
(the start of the Optuna backend's on_save): the window in which the storage still names an
older checkpoint than the newest one on disk.
Only once per study: `marker` (a file) is created first, so the retry trains undisturbed.
(Workers import `helpers` because the fork server inherits the test process's sys.path.)
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any


def gpt2_killed_before_record(*, kill_at_step: int, marker: str, **config: Any) -> Any:
    """A GPT-2 LM built from `config`, in a process that dies before recording one checkpoint."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from hpo.backends.optuna.recorder import StorageRecorder

    record = StorageRecorder.on_save
    if not getattr(record, "kills", False):

        def die_before_recording(self: Any, args: Any, state: Any, control: Any, **kw: Any):
            if state.global_step == kill_at_step and not Path(marker).exists():
                Path(marker).write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
            return record(self, args, state, control, **kw)

        die_before_recording.kills = True  # type: ignore[attr-defined]
        StorageRecorder.on_save = die_before_recording  # type: ignore[method-assign]
    config.pop("model_type", None)
    return GPT2LMHeadModel(GPT2Config(**config))
