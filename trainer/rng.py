"""Random number generators: seeding a run, and capturing / restoring every generator's state.

A checkpoint stores the state of Python's, NumPy's and torch's generators (CPU and every CUDA
device) so that a resumed run draws the same dropout masks as an uninterrupted one.
"""

from __future__ import annotations

import os
import random
from typing import Any, cast

import numpy as np
import torch


def set_seed(seed: int, full_determinism: bool = False) -> None:
    """Seeds Python, NumPy and torch (every device); with full_determinism, also asks torch for
    deterministic kernels (Transformers' `enable_full_determinism`)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if full_determinism:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)


def rng_state() -> dict[str, Any]:
    """Every generator's state, as tensors and plain values (loadable with weights_only=True)."""
    # legacy=True (the default) always returns the tuple; the stub also allows a dict.
    legacy = cast(tuple[Any, ...], np.random.get_state())
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "name": legacy[0],
            "keys": torch.from_numpy(legacy[1].astype(np.int64)),
            "pos": int(legacy[2]),
            "has_gauss": int(legacy[3]),
            "cached_gaussian": float(legacy[4]),
        },
        "cpu": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Puts back what `rng_state()` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["name"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
