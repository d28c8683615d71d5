"""The report's table of the top trials: params, value, steps trained, state, checkpoint."""

from __future__ import annotations

import html
import re
from typing import Any

from hpo.attrs import BEST_CHECKPOINT_ATTR, LAST_CHECKPOINT_ATTR, WARM_START_ATTR
from hpo.report.html.data import StudyData, best_first
from hpo.report.progress import format_value

TOP_TRIALS = 20


def top_trials_table(data: StudyData, limit: int = TOP_TRIALS) -> str:
    """An HTML table of the best complete trials (the Pareto front first when multi-objective)."""
    trials = best_first(data, data.complete)
    if data.is_multi:
        front = {t.number for t in _pareto(data)}
        trials = sorted(trials, key=lambda t: t.number not in front)
    trials = trials[:limit]
    if not trials:
        return "<p>No complete trial yet.</p>"
    params = sorted({name for t in trials for name in t.params})
    head = ["trial", *data.metrics, "state", "steps trained", *params, "checkpoint"]
    rows = [
        [
            str(t.number),
            *(format_value(v) for v in t.values),
            state_text(t),
            str(steps_trained(t) if steps_trained(t) is not None else "-"),
            *(format_value(t.params[p]) if p in t.params else "-" for p in params),
            str(t.user_attrs.get(BEST_CHECKPOINT_ATTR) or "-"),
        ]
        for t in trials
    ]
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f'<table id="top_trials"><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>'


def state_text(trial: Any) -> str:
    """The trial's state; for a copy a warm start took from an earlier study, where from."""
    origin = trial.user_attrs.get(WARM_START_ATTR)
    if isinstance(origin, dict):
        return f"warm start ({origin.get('study')} #{origin.get('trial')})"
    return trial.state.name.lower()


def steps_trained(trial: Any) -> int | None:
    """The last step the trial reported, or the step of its last checkpoint."""
    if trial.intermediate_values:
        return max(trial.intermediate_values)
    checkpoint = str(trial.user_attrs.get(LAST_CHECKPOINT_ATTR) or "")
    found = re.search(r"checkpoint-(\d+)$", checkpoint)
    return int(found.group(1)) if found else None


def _pareto(data: StudyData) -> list[Any]:
    from hpo.report.html.figures import in_memory_study

    return in_memory_study(data, data.complete).best_trials
