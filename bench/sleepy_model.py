"""A model factory for benchmarks that need trials of a known length (bench/ray_scale.py).

`model: {factory: bench.sleepy_model:sleepy_gpt2}`: a tiny GPT-2 whose every training forward
first sleeps HPO_BENCH_SLEEP_S seconds (default 1), so a one-step trial costs that much
"training" plus whatever the orchestrator adds around it, which is what a scale benchmark
measures. Sleeping uses no CPU, like a trial waiting on its GPU.
"""

from __future__ import annotations

import os
import time
from typing import Any

SLEEP_ENV = "HPO_BENCH_SLEEP_S"


def sleepy_gpt2(**overrides: Any) -> Any:
    from transformers import GPT2Config, GPT2LMHeadModel

    sleep_s = float(os.environ.get(SLEEP_ENV, "1.0"))

    class SleepyGPT2(GPT2LMHeadModel):
        def forward(self, *args: Any, **kwargs: Any) -> Any:
            if self.training:
                time.sleep(sleep_s)
            return super().forward(*args, **kwargs)

    config = {"vocab_size": 256, "n_positions": 32, "n_embd": 16, "n_layer": 1, "n_head": 2}
    return SleepyGPT2(GPT2Config(**{**config, **overrides}))
