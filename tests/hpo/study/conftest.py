"""Fixtures of the study-file tests (tests/hpo/study and its sections/)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Relative paths resolve against the current directory: make it the test's own."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO_STORAGE", raising=False)
