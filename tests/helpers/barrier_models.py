"""A model factory for study files whose workers must all be inside a trial at once.

Which worker of `hpo run` takes which trial depends on how fast each process starts. A test
that needs every worker to train uses `model: {factory: helpers.barrier_models:gpt2_at_barrier}`
with the GPT-2 config plus `barrier_dir` and `parties`: the first model_init of each worker
process waits there until `parties` processes have arrived, so no worker can take all the
trials before another one starts. (Workers import `helpers` because the fork server inherits
the test process's sys.path, which pytest's `pythonpath` setting extends.)

All leave the barrier together, so their trials end in the same instant and the workers race
for the next slots: the study's lock and the compare-and-set claim must make that harmless.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

# Long enough for a slow worker start on a loaded machine; a barrier that times out lets the
# trial go on, so a test then fails on its assertion instead of hanging.
BARRIER_TIMEOUT_S = 120.0


def gpt2_at_barrier(*, barrier_dir: str, parties: int, **config: Any) -> Any:
    """A GPT-2 LM built from `config`, after waiting for `parties` processes at the barrier."""
    from transformers import GPT2Config, GPT2LMHeadModel

    arrived = Path(barrier_dir)
    arrived.mkdir(parents=True, exist_ok=True)
    _arrive(arrived, os.getpid())
    deadline = time.monotonic() + BARRIER_TIMEOUT_S
    while len(list(arrived.iterdir())) < parties and time.monotonic() < deadline:
        time.sleep(0.05)
    config.pop("model_type", None)
    return GPT2LMHeadModel(GPT2Config(**config))


def _arrive(arrived: Path, pid: int) -> int | None:
    """This process's place in the order of arrival (0 first), or None if it was here before.

    Places are files created exclusively, so two processes never take the same one.
    """
    if any(path.read_text() == str(pid) for path in arrived.iterdir()):
        return None  # a later trial of a process that already passed the barrier
    place = 0
    while True:
        try:
            descriptor = os.open(arrived / str(place), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            place += 1
            continue
        with os.fdopen(descriptor, "w") as handle:
            handle.write(str(pid))
        return place
