"""Shared study builders for the tests.

base_study()/write_study(): a small valid study file (a dict, or YAML on disk) and variants.
tiny_gpt2_config()/study_spec(): a tiny GPT-2 config and an already parsed StudySpec, so tests
build only the fields they care about.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from hpo.spec import BudgetSpec, ComponentSpec, DataSpec, ModelSpec, ObjectiveSpec, StudySpec

DELETE = object()


def tiny_gpt2_config(**overrides: Any) -> dict[str, Any]:
    """A 2-layer GPT-2 (n_embd 32, byte vocabulary) that builds in milliseconds on a CPU."""
    config: dict[str, Any] = {
        "model_type": "gpt2",
        "vocab_size": 256,
        "n_positions": 64,
        "n_embd": 32,
        "n_layer": 2,
        "n_head": 2,
    }
    config.update(overrides)
    return config


def study_spec(tmp_path: Path, name: str = "study", **fields: Any) -> StudySpec:
    """A single-objective optuna StudySpec stored in tmp_path/<name>.db; `fields` replace any
    StudySpec field (e.g. model=, data=, training=, space=)."""
    defaults: dict[str, Any] = {
        "name": name,
        "storage": f"sqlite:///{tmp_path}/{name}.db",
        "backend": "optuna",
        "objective": ObjectiveSpec(("eval_loss",), ("minimize",)),
        "budget": BudgetSpec(),
        "workers": 1,
        "sampler": ComponentSpec("tpe"),
        "pruner": ComponentSpec("none"),
        "scheduler": None,
        "ray": {},
        "model": ModelSpec(config=tiny_gpt2_config()),
        "data": DataSpec(),
        "training": {"output_dir": str(tmp_path / "run")},
        "space": (),
    }
    return StudySpec(**{**defaults, **fields})


def base_study() -> dict[str, Any]:
    return {
        "name": "unit",
        "objective": {"metric": "eval_loss", "direction": "minimize"},
        "budget": {"n_trials": 4},
        "model": {
            "config": tiny_gpt2_config(),
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
