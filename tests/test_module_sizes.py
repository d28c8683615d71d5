"""The size rule of docs/ARCHITECTURE.md: a module of trainer/ or hpo/ over MAX_LINES lines
says why in its top docstring, on a line that starts with REASON_MARK (then the reason)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("trainer", "hpo")
MAX_LINES = 400
REASON_MARK = "Over 400 lines:"


def modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (REPO / package).rglob("*.py"))


def size_reason(source: str) -> str | None:
    """The reason the top docstring gives for the module's size (None: it gives none)."""
    docstring = ast.get_docstring(ast.parse(source)) or ""
    for line in docstring.splitlines():
        line = line.strip()
        if line.startswith(REASON_MARK) and line[len(REASON_MARK) :].strip():
            return line[len(REASON_MARK) :].strip()
    return None


@pytest.mark.parametrize("path", modules(), ids=lambda path: str(path.relative_to(REPO)))
def test_a_module_over_the_limit_says_why(path):
    source = path.read_text(encoding="utf-8")
    lines = len(source.splitlines())
    if lines <= MAX_LINES:
        return
    reason = size_reason(source)
    assert reason, (
        f"{path.relative_to(REPO)} has {lines} lines: split it, or give the reason in its top "
        f"docstring on a line starting {REASON_MARK!r}"
    )


def test_the_reason_is_read_from_the_top_docstring_only():
    assert size_reason('"""Parsing.\n\nOver 400 lines: one grammar, one table."""\n') == (
        "one grammar, one table."
    )
    assert size_reason('"""Parsing.\n\nOver 400 lines:\n"""\n') is None  # no reason given
    assert (
        size_reason('"""Parsing."""\n\n# Over 400 lines: a comment is not the docstring\n') is None
    )
    assert size_reason("x = 1\n") is None
