"""Calling libraries and user code while validating: silenced, summed up in one line, and
writing nothing to disk."""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator


def one_line(error: BaseException) -> str:
    """`Type: message` on one line, cut short: a library's error inside one problem line."""
    text = " ".join(str(error).split())
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence library warnings while validating: the user sees our problems, not theirs."""
    logger = logging.getLogger("transformers")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def no_bytecode() -> Iterator[None]:
    """Validation creates nothing, not even a __pycache__ folder beside a user's factory module."""
    dont_write_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        yield
    finally:
        sys.dont_write_bytecode = dont_write_bytecode
