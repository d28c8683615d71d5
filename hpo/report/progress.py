"""The live progress display of `hpo run`: one line, refreshed in place on a terminal.

When the output is not a terminal (CI logs, `| tee`), a plain line is printed only when the
counts change, so a log reads as a short history instead of one line per second.
"""

from __future__ import annotations

import math
import sys
from typing import Any, TextIO

from hpo.durations import format_clock


def format_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(format_value(v) for v in value) + ")"
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.4g}"
    return str(value)


def format_progress(
    counts: dict[str, int],
    *,
    n_trials: int | None,
    best: str | None,
    elapsed_s: float,
) -> str:
    """`done 5/12 | pruned 3 | failed 0 | running 2 | best 1.234 (#4) | 01:23`."""
    done = counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)
    total = f"/{n_trials}" if n_trials is not None else ""
    parts = [
        f"done {done}{total}",
        f"pruned {counts.get('PRUNED', 0)}",
        f"failed {counts.get('FAIL', 0)}",
        f"running {counts.get('RUNNING', 0)}",
        f"best {best}" if best else "best -",
        format_clock(elapsed_s),
    ]
    return " | ".join(parts)


def best_summary(report_best: Any) -> str | None:
    """The best-so-far from `hpo.storage.reader.status(...)["best"]` as a short text."""
    if not report_best:
        return None
    if isinstance(report_best, list):  # a Pareto front
        return f"{len(report_best)} on the Pareto front"
    values = report_best.get("values") or [report_best.get("value")]
    value = values[0] if len(values) == 1 else values
    return f"{format_value(value)} (#{report_best.get('number')})"


class ProgressLine:
    """Writes progress lines: in place on a TTY, only on change otherwise."""

    def __init__(self, stream: TextIO | None = None, *, is_tty: bool | None = None):
        self.stream = stream or sys.stdout
        self.is_tty = self.stream.isatty() if is_tty is None else is_tty
        self._last_key: str | None = None
        self._width = 0

    def update(self, line: str, *, key: str | None = None) -> None:
        """Show `line`; off a TTY, print it only when `key` (default: the line) changed."""
        if self.is_tty:
            padding = " " * max(0, self._width - len(line))
            self.stream.write("\r" + line + padding)
            self._width = len(line)
            self.stream.flush()
            return
        key = line if key is None else key
        if key != self._last_key:
            self._last_key = key
            self.stream.write(line + "\n")
            self.stream.flush()

    def message(self, text: str) -> None:
        """A line of its own (an event), without breaking the live line."""
        self.close()
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.is_tty and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0
