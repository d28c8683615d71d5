"""A model factory that records which GPU Ray gave its trial (tests of fractional GPUs).

Runs inside Ray trials on the `ray_head` fixture's cluster, whose processes carry
HPO_TEST_PROBE_DIR. Each trial's model_init writes the CUDA_VISIBLE_DEVICES Ray set for it into
that folder, then waits until PARTIES trials have written theirs (or a timeout), so the files
prove how many trials held a GPU at the same moment.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

PARTIES = 4
TIMEOUT_S = 120.0


def gpt2_recording_gpu(**overrides: Any) -> Any:
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = Path(os.environ["HPO_TEST_PROBE_DIR"])
    record = {"pid": os.getpid(), "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    (folder / f"{uuid.uuid4().hex}.json").write_text(json.dumps(record))
    deadline = time.monotonic() + TIMEOUT_S
    while len(list(folder.glob("*.json"))) < PARTIES and time.monotonic() < deadline:
        time.sleep(0.05)
    config = {"vocab_size": 256, "n_positions": 32, "n_embd": 16, "n_layer": 1, "n_head": 2}
    return GPT2LMHeadModel(GPT2Config(**{**config, **overrides}))
