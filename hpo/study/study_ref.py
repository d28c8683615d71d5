"""The cheap reading for inspection commands (`hpo status`, `hpo best`): name and storage only.

Nothing here may import torch, transformers, optuna, ray, trainer or numpy.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from hpo.errors import StudyFileError
from hpo.spec import BACKENDS
from hpo.study.keys import study_name
from hpo.study.problems import Problems
from hpo.study.sections.storage import read_storage
from hpo.study.yaml_file import read_study_file


@dataclasses.dataclass(frozen=True)
class StudyRef:
    """What inspection commands need from a study file: its name and resolved storage."""

    name: str
    storage: str
    source_path: str | None = None
    backend: str = "optuna"
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def output_dir(self) -> str:
        """The study's `training.output_dir`, or runs/<name> as `hpo run` would default it."""
        training = self.raw.get("training")
        if isinstance(training, Mapping) and training.get("output_dir"):
            return str(training["output_dir"])
        return f"runs/{self.name}"


def load_for_inspection(path: str | os.PathLike[str], *, storage: str | None = None) -> StudyRef:
    """Name and storage only, cheaply: no torch, transformers, optuna or trainer import."""
    source = str(path)
    raw = read_study_file(path)
    problems = Problems()
    name = study_name(raw.get("name"), problems)
    url = read_storage(raw.get("storage"), storage, name or "study", problems, workers=1)
    if problems:
        raise StudyFileError(source, problems.lines)
    backend: str = raw["backend"] if raw.get("backend") in BACKENDS else "optuna"
    return StudyRef(name=name, storage=url, source_path=source, backend=backend, raw=raw)
