"""Shared study builders for the tests.

base_study()/write_study(): a small valid study file (a dict, or YAML on disk) and variants.
tiny_gpt2_config()/study_spec(): a tiny GPT-2 config and an already parsed StudySpec, so tests
build only the fields they care about.
problems_of()/the_problem(): the problems `hpo.study.load` reports for a variant of base_study().
tiny_spec()/write_study_file(): one tiny study (a 2-layer GPT-2 on a generated text file) as a
StudySpec and as its YAML twin, for tests that run real trials.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from hpo.errors import StudyFileError
from hpo.spec import (
    BudgetSpec,
    ComponentSpec,
    DataSpec,
    ModelSpec,
    ObjectiveSpec,
    ParamSpec,
    StudySpec,
)
from hpo.study import load

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


def problems_of(tmp_path: Path, changes: dict, **overrides) -> list[str]:
    """Every problem `load` reports for base_study() with `changes` (and fail if it loads)."""
    with pytest.raises(StudyFileError) as caught:
        load(write_study(tmp_path, changes), **overrides)
    assert caught.value.exit_code == 2
    return caught.value.problems


def the_problem(tmp_path: Path, changes: dict, path: str, **overrides) -> str:
    """The one problem reported at `path` (and fail if it is not there)."""
    problems = problems_of(tmp_path, changes, **overrides)
    matching = [p for p in problems if p.startswith(f"{path}:")]
    assert matching, f"no problem at {path!r} in {problems}"
    return matching[0]


WORDS = (
    "the quick brown fox jumps over the lazy dog while a small model learns to spell "
    "every word it sees in this tiny corpus of text written by the test itself "
).split()


def write_corpus(path: Path, n_words: int = 4000) -> Path:
    """A deterministic text file: enough for a few hundred 32-byte blocks."""
    text = " ".join(WORDS[(i * 7 + i // 13) % len(WORDS)] for i in range(n_words))
    path.write_text(text + "\n", encoding="utf-8")
    return path


def tiny_corpus(tmp_path: Path) -> Path:
    """The tiny study's text file in `tmp_path` (written on first use)."""
    corpus = tmp_path / "corpus.txt"
    if not corpus.exists():
        write_corpus(corpus)
    return corpus


def tiny_training(tmp_path: Path) -> dict[str, Any]:
    """The tiny study's `training` section: 8 steps, an evaluation (and checkpoint) every 4."""
    return {
        "output_dir": str(tmp_path / "runs"),
        "max_steps": 8,
        "per_device_train_batch_size": 8,
        "per_device_eval_batch_size": 16,
        "eval_strategy": "steps",
        "eval_steps": 4,
        "logging_steps": 4,
        "seed": 0,
    }


def tiny_spec(tmp_path: Path, **changes: object) -> StudySpec:
    """A study of a 2-layer GPT-2 (n_embd 32) on a small text file; trials take ~1 s."""
    corpus = tiny_corpus(tmp_path)
    training = {**tiny_training(tmp_path), **changes.pop("training", {})}  # type: ignore[dict-item]
    spec = study_spec(
        tmp_path,
        name="tiny",
        budget=BudgetSpec(n_trials=4),
        sampler=ComponentSpec("random", {"seed": 0}),
        model=ModelSpec(task="causal-lm", config=tiny_gpt2_config(n_positions=32)),
        data=DataSpec(files=(str(corpus),), block_size=32, max_eval_samples=32),
        training=training,
        space=(
            ParamSpec("learning_rate", "float", low=1e-4, high=1e-2, log=True),
            ParamSpec("model.n_layer", "int", low=1, high=2),
        ),
        source_path=str(tmp_path / "tiny.yaml"),
    )
    return dataclasses.replace(spec, **changes)


def layers_in(checkpoint: Path) -> int:
    from safetensors import safe_open

    with safe_open(str(checkpoint / "model.safetensors"), framework="pt") as weights:
        return len(
            {key.split(".")[2] for key in weights.keys() if key.startswith("transformer.h.")}
        )


def write_study_file(tmp_path: Path, **changes: object) -> Path:
    """The YAML study file equivalent to `tiny_spec` (for `hpo run` / `hpo worker`)."""
    corpus = tiny_corpus(tmp_path)
    study = {
        "name": "tiny",
        "storage": f"sqlite:///{tmp_path}/tiny.db",
        "backend": "optuna",
        "objective": {"metric": "eval_loss", "direction": "minimize"},
        "budget": {"n_trials": 4},
        "workers": 1,
        "sampler": {"name": "random", "seed": 0},
        "pruner": {"name": "none"},
        "model": {
            "task": "causal-lm",
            "config": tiny_gpt2_config(n_positions=32),
        },
        "data": {"files": [str(corpus)], "block_size": 32, "max_eval_samples": 32},
        "training": tiny_training(tmp_path),
        "space": {
            "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
            "model.n_layer": {"type": "int", "low": 1, "high": 2},
        },
    }
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(study.get(key), dict):
            study[key] = {**study[key], **value}
        else:
            study[key] = value
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")
    return path
