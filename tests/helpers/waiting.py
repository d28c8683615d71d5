"""Waiting on a condition that another process brings about (a trial's checkpoint, a worker's
exit): poll until it holds, and fail with what was awaited (and what the process printed) when
it never does. Tests wait on the condition itself, never on a fixed sleep."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    *,
    what: str,
    timeout: float = 120.0,
    interval: float = 0.1,
    run: subprocess.Popen | None = None,
) -> T:
    """`condition()`'s value once it is truthy.

    `run`: the process whose work is awaited; once it has ended waiting longer cannot help,
    so the wait stops there, and the failure shows what it printed (its stdout must be a pipe).
    """
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        if run is not None and run.poll() is not None:
            break
        time.sleep(interval)
    out = ""
    if run is not None:
        run.kill()
        out = run.communicate()[0] or ""
    raise AssertionError(f"timed out waiting for {what}\n{out}".rstrip())
