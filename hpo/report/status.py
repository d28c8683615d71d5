"""`hpo status` / `hpo best` as text: the dicts hpo.storage.reader returns, for a terminal.

The reader answers from Optuna's tables without loading optuna; this module only formats, and
imports nothing heavier than the standard library, so `hpo status` stays well under a second.
"""

from __future__ import annotations

from typing import Any

from hpo.attrs import STATES


def format_status(report: dict[str, Any], spec: Any = None) -> str:
    """`hpo.storage.reader.status()` as text for a terminal.

    `spec` (the study spec, or the StudyRef the inspection commands load) lends metric names.
    """
    metrics = _metric_names(spec, len(report["directions"]))
    counts = report["counts"]
    lines = [
        f"study    {report['study']}  ({', '.join(report['directions'])} {', '.join(metrics)})",
        f"storage  {report['storage']}",
        "trials   " + "  ".join(f"{state.lower()} {counts[state]}" for state in STATES),
    ]
    if report.get("warm_start"):
        lines.append(
            f"warm     {report['warm_start']} complete trial(s) copied from an earlier study "
            "(warm start: seed the sampler, in no budget, never the best)"
        )
    best_report = report["best"]
    if best_report is None:
        lines.append("best     none yet (no complete trial)")
    elif isinstance(best_report, list):
        lines.append(f"best     Pareto front of {len(best_report)} trial(s):")
        lines += ["  " + _one_line(trial, metrics) for trial in best_report]
    else:
        lines.append("best     " + _one_line(best_report, metrics))
    running = report["running"]
    lines.append(f"running  {len(running)} trial(s)" + (":" if running else ""))
    for trial in running:
        last = (
            f"step {trial['last_step']}: {_num(trial['last_value'])}"
            if trial["last_step"] is not None
            else "no step reported yet"
        )
        started = f", started {trial['started']} UTC" if trial["started"] else ""
        lines.append(f"  #{trial['number']}  {last}{started}")
    return "\n".join(lines)


def format_best(report: dict[str, Any] | list[dict[str, Any]]) -> str:
    """`hpo.storage.reader.best()` as text: number, value(s), params, checkpoint."""
    trials = report if isinstance(report, list) else [report]
    blocks = []
    for trial in trials:
        value = (
            _num(trial["value"])
            if "value" in trial
            else "[" + ", ".join(_num(v) for v in trial["values"]) + "]"
        )
        label = "value" if "value" in trial else "values"
        lines = [f"trial {trial['number']}", f"  {label:<11} {value}"]
        lines += [f"  {name:<11} {v!r}" for name, v in trial["params"].items()]
        lines.append(f"  checkpoint  {trial['checkpoint'] or '(none recorded)'}")
        blocks.append("\n".join(lines))
    header = [f"Pareto front: {len(trials)} trial(s)"] if isinstance(report, list) else []
    return "\n\n".join(header + blocks)


# ---------------------------------------------------------------------------------------------
# Helpers


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _metric_names(spec: Any, n_objectives: int) -> list[str]:
    """Metric names from a StudySpec (`objective.metrics`) or from the raw study file that a
    StudyRef carries (`objective: {metric: ...}`); generic names when neither fits."""
    metrics = getattr(getattr(spec, "objective", None), "metrics", None)
    if metrics is None:
        objective = (getattr(spec, "raw", None) or {}).get("objective")
        metrics = objective.get("metric") if isinstance(objective, dict) else None
        metrics = [metrics] if isinstance(metrics, str) else metrics
    if isinstance(metrics, (list, tuple)) and len(metrics) == n_objectives:
        return [str(m) for m in metrics]
    return ["value"] if n_objectives == 1 else [f"value{i}" for i in range(n_objectives)]


def _one_line(trial: dict[str, Any], metrics: list[str]) -> str:
    """`#4  eval_loss=1.23  learning_rate=0.001 ...  checkpoint PATH`: one trial of a report."""
    if "value" in trial:
        values = f"{metrics[0]}={_num(trial['value'])}"
    else:
        values = " ".join(f"{m}={_num(v)}" for m, v in zip(metrics, trial["values"], strict=True))
    params = " ".join(f"{k}={v!r}" for k, v in trial["params"].items())
    checkpoint = f"  checkpoint {trial['checkpoint']}" if trial["checkpoint"] else ""
    return f"#{trial['number']}  {values}  {params}{checkpoint}"
