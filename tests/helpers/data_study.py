"""Shared helpers of the data tests: a StudySpec around a DataSpec, and reading datasets back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from helpers.study_files import study_spec
from hpo.spec import DataSpec, ModelSpec, StudySpec


def study(tmp_path: Path, task: str = "causal-lm", out: str = "run", **data: object) -> StudySpec:
    """A StudySpec of a gpt2 config and DataSpec(**data), its cache under tmp_path/<out>."""
    return study_spec(
        tmp_path,
        name="t",
        model=ModelSpec(task=task, config={"model_type": "gpt2"}),
        data=DataSpec(**data),
        training={"output_dir": str(tmp_path / out)},
    )


def text_of(ids: torch.Tensor) -> str:
    """Byte-tokenized ids back to their text."""
    return bytes(ids.tolist()).decode("utf-8")


def all_rows(dataset) -> np.ndarray:
    """Every row of a TokenDataset's input_ids, as one array."""
    return dataset.get_batch(range(len(dataset)))["input_ids"].numpy()


def write_jsonl(path: Path, rows: list[dict]) -> str:
    """`rows` as a .jsonl file at `path`; returns the path as text."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)
