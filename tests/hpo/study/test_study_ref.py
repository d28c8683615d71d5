"""hpo.study.study_ref: the cheap name + storage reading of `hpo status` / `hpo best`."""

from __future__ import annotations

import os

import pytest
from helpers.study_files import write_study

from hpo.errors import StudyFileError
from hpo.study import load_for_inspection


def test_load_for_inspection_reads_name_and_storage_only(tmp_path):
    # A study that would not run (unknown model) can still be inspected.
    path = write_study(
        tmp_path, {"model": {"config": {"model_type": "nope"}}, "storage": "sqlite:///s.db"}
    )
    ref = load_for_inspection(path)
    assert ref.name == "unit"
    assert ref.storage == f"sqlite:///{tmp_path / 's.db'}"
    assert load_for_inspection(path, storage="sqlite:///other.db").storage.endswith("other.db")
    assert ref.output_dir == "runs/unit"
    with pytest.raises(StudyFileError, match="storage"):
        load_for_inspection(write_study(tmp_path, {"storage": "bogus"}))
    assert not (tmp_path / "s.db").exists()
    assert os.listdir(tmp_path) == ["study.yaml"]
