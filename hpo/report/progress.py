"""The live view of `hpo run`: the study's counts, and under them one progress bar per running
trial (step / max_steps, last evaluation, steps per second, ETA).

On a terminal it is a rich live display, redrawn in place. Off a terminal (CI logs, `| tee`,
`hpo submit --follow`) it prints plain lines, and only when something a reader cares about
changed (counts, or a trial's evaluation), so a log reads as a short history instead of one
line per second.

Where each trial's step comes from: the Optuna backend's worker writes the `progress` user attr
(hpo.attrs.PROGRESS_ATTR) at most once per logging step; the last intermediate value is the
last evaluation. hpo.storage.reader.status() returns both for every running trial.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from hpo.attrs import PROGRESS_ATTR, PROGRESS_MAX_STEPS_KEY, PROGRESS_RATE_KEY, STEP_KEY
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


@dataclasses.dataclass(frozen=True)
class TrialProgress:
    number: int
    step: int | None
    max_steps: int | None
    last_value: float | None  # the last evaluation (intermediate value)
    steps_per_s: float | None

    @property
    def eta_s(self) -> float | None:
        if not self.steps_per_s or self.step is None or not self.max_steps:
            return None
        return max(self.max_steps - self.step, 0) / self.steps_per_s


def running_trials(running: list[dict[str, Any]], max_steps: int | None) -> list[TrialProgress]:
    """`reader.status(...)["running"]` as TrialProgress; `max_steps` from the study file is
    used until a trial has written its own."""
    max_steps = max_steps if max_steps and max_steps > 0 else None  # -1: epochs decide
    trials = []
    for trial in running:
        progress = trial.get(PROGRESS_ATTR) or {}
        step = progress.get(STEP_KEY, trial.get("last_step"))
        trials.append(
            TrialProgress(
                number=int(trial["number"]),
                step=None if step is None else int(step),
                max_steps=progress.get(PROGRESS_MAX_STEPS_KEY) or max_steps,
                last_value=trial.get("last_value"),
                steps_per_s=progress.get(PROGRESS_RATE_KEY),
            )
        )
    return trials


def format_trial(trial: TrialProgress) -> str:
    """`trial 3: step 120/300 | eval 2.345 | 5.1 steps/s | ETA 00:35`."""
    total = f"/{trial.max_steps}" if trial.max_steps else ""
    step = f"step {trial.step}{total}" if trial.step is not None else "starting"
    parts = [f"trial {trial.number}: {step}"]
    parts.append(
        f"eval {format_value(trial.last_value)}" if trial.last_value is not None else "eval -"
    )
    parts.append(f"{trial.steps_per_s:.3g} steps/s" if trial.steps_per_s else "- steps/s")
    parts.append(f"ETA {format_clock(trial.eta_s)}" if trial.eta_s is not None else "ETA -")
    return " | ".join(parts)


class LiveView:
    """The study's counts line with one progress bar per running trial under it."""

    def __init__(self, stream: TextIO | None = None, *, is_tty: bool | None = None):
        self.stream = stream or sys.stdout
        self.is_tty = self.stream.isatty() if is_tty is None else is_tty
        self._last_key: Any = None
        self._live: Any = None  # the rich Live display, started on the first update

    def update(
        self,
        line: str,
        trials: Sequence[TrialProgress] = (),
        *,
        key: str | None = None,
    ) -> None:
        """Show the counts `line` and the `trials`; off a TTY, print only when `key` (default:
        the line) or a trial's evaluation changed."""
        if self.is_tty:
            self._draw(line, trials)
            return
        changed = (line if key is None else key, tuple((t.number, t.last_value) for t in trials))
        if changed != self._last_key:
            self._last_key = changed
            text = "\n".join([line, *("  " + format_trial(t) for t in trials)])
            self.stream.write(text + "\n")
            self.stream.flush()

    def message(self, text: str) -> None:
        """A line of its own (an event), printed above the live display."""
        if self._live is not None:
            self._live.console.print(text, markup=False, highlight=False)
            return
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _draw(self, line: str, trials: Sequence[TrialProgress]) -> None:
        from rich.console import Console
        from rich.live import Live

        if self._live is None:
            console = Console(file=self.stream, force_terminal=True)
            self._live = Live(console=console, auto_refresh=False, transient=False)
            self._live.start()
        self._live.update(_renderable(line, trials), refresh=True)


def _renderable(line: str, trials: Sequence[TrialProgress]) -> Any:
    """The counts line, then per trial: a bar, step/max, eval, rate and ETA (a rich table)."""
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    table = Table.grid(padding=(0, 1))
    for _ in range(6):
        table.add_column()
    for trial in trials:
        total = trial.max_steps or 0
        done = min(trial.step or 0, total) if total else 0
        table.add_row(
            f"  trial {trial.number}",
            ProgressBar(total=total or None, completed=done, width=30),
            f"{trial.step if trial.step is not None else '-'}/{trial.max_steps or '?'}",
            f"eval {format_value(trial.last_value)}" if trial.last_value is not None else "eval -",
            f"{trial.steps_per_s:.3g} steps/s" if trial.steps_per_s else "- steps/s",
            f"ETA {format_clock(trial.eta_s)}" if trial.eta_s is not None else "ETA -",
        )
    return Group(Text(line), table) if trials else Text(line)
