"""A small valid study, and variants of it written to disk, for the study-file tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

DELETE = object()


def base_study() -> dict[str, Any]:
    return {
        "name": "unit",
        "objective": {"metric": "eval_loss", "direction": "minimize"},
        "budget": {"n_trials": 4},
        "model": {
            "config": {
                "model_type": "gpt2",
                "vocab_size": 256,
                "n_positions": 64,
                "n_embd": 32,
                "n_layer": 2,
                "n_head": 2,
            },
            "task": "causal-lm",
        },
        "data": {"corpus": "pydoc-topics", "tokenizer": "bytes", "block_size": 32},
        "training": {
            "output_dir": "runs/unit",
            "max_steps": 60,
            "eval_strategy": "steps",
            "eval_steps": 20,
        },
        "space": {
            "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
            "model.n_layer": {"type": "int", "low": 1, "high": 2},
        },
    }


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`base` with `changes` merged in depth; a DELETE value removes the key."""
    result = copy.deepcopy(base)
    for key, value in changes.items():
        if value is DELETE:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def write_study(
    directory: Path, changes: dict[str, Any] | None = None, name: str = "study.yaml"
) -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(merged(base_study(), changes or {}), sort_keys=False))
    return path
