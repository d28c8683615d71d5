"""The report's plots, as plotly figures built from a StudyData.

Each builder returns a `Plot` (or None when the study has nothing to show there). Where a plot
would hold more points than a browser draws comfortably it shows an even sample, always keeping
the best trials, and its title says so.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from hpo.report.html.data import StudyData, best_first, sampled_note, thin, worker_lanes

# The most points each kind of plot holds before it shows a sample (10,000 trials still draw).
HISTORY_POINTS = 5000
CURVE_TRIALS = 200
PARCOORDS_LINES = 2000
SLICE_POINTS = 3000
TIMELINE_BARS = 2000
IMPORTANCE_TRIALS = 2000
PARETO_POINTS = 3000

STATE_COLORS = {
    "COMPLETE": "#1f77b4",
    "PRUNED": "#d62728",
    "FAIL": "#7f7f7f",
    "RUNNING": "#2ca02c",
    "WAITING": "#bcbd22",
}


@dataclasses.dataclass
class Plot:
    key: str  # the element id in the page and the PNG's file name
    title: str
    figure: Any  # plotly.graph_objects.Figure


def all_plots(data: StudyData) -> list[Plot]:
    scores, used = param_importances(data)  # once: two plots show it
    plots = [
        history(data),
        learning_curves(data),
        parallel_coordinates(data),
        importances(data, scores, used),
        top_params_slice(data, list(scores)[:2]),
        timeline(data),
        pareto_front(data),
    ]
    return [plot for plot in plots if plot is not None]


def history(data: StudyData) -> Plot | None:
    import plotly.graph_objects as go

    done = data.complete
    if not done:
        return None
    shown = thin(done, HISTORY_POINTS, keep=best_first(data, done)[:20])
    fig = go.Figure()
    if not data.is_multi:  # the best-so-far line over every trial (drawn first: under the points)
        better = max if data.directions[0] == "maximize" else min
        xs, ys, best = [], [], None
        for trial in done:
            value = trial.values[0]
            if best is None or better(value, best) != best:
                best = value
                xs.append(trial.number)
                ys.append(best)
        xs.append(done[-1].number)
        ys.append(best)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line_shape="hv", name="best so far"))
    for index, metric in enumerate(data.metrics):
        fig.add_trace(
            go.Scatter(
                x=[t.number for t in shown],
                y=[t.values[index] for t in shown],
                mode="markers",
                name=metric,
                marker={"size": 7, "opacity": 0.8},
            )
        )
    title = "Optimization history" + sampled_note(len(shown), len(done), "complete trials")
    fig.update_layout(title=title, xaxis_title="trial", yaxis_title=", ".join(data.metrics))
    return Plot("history", title, fig)


def learning_curves(data: StudyData) -> Plot | None:
    import plotly.graph_objects as go

    reported = [t for t in data.trials if t.intermediate_values]
    if not reported:
        return None
    best = best_first(data, [t for t in reported if t.state.name == "COMPLETE"])[:10]
    shown = thin(reported, CURVE_TRIALS, keep=best)
    fig = go.Figure()
    # One trace per state (curves joined with gaps), so the legend reads "pruned" once.
    for state in ("COMPLETE", "PRUNED", "FAIL", "RUNNING"):
        trials = [t for t in shown if t.state.name == state]
        if not trials:
            continue
        xs: list[Any] = []
        ys: list[Any] = []
        texts: list[Any] = []
        for trial in trials:
            steps = sorted(trial.intermediate_values)
            xs += steps + [None]
            ys += [trial.intermediate_values[s] for s in steps] + [None]
            texts += [f"trial {trial.number}"] * len(steps) + [None]
        color = STATE_COLORS[state]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                text=texts,
                mode="lines+markers",  # a trial pruned at its first evaluation is one point
                name=state.lower(),
                marker={"size": 3},
                line={"color": color, "width": 1, "dash": "dot" if state == "PRUNED" else None},
                opacity=0.7,
                hovertemplate="%{text}<br>step %{x}: %{y}<extra></extra>",
            )
        )
        if state == "PRUNED":  # where each pruned trial stopped
            ends = [max(t.intermediate_values) for t in trials]
            fig.add_trace(
                go.Scatter(
                    x=ends,
                    y=[t.intermediate_values[s] for t, s in zip(trials, ends, strict=True)],
                    mode="markers",
                    marker={"symbol": "x", "color": color, "size": 8},
                    name="pruned here",
                )
            )
    title = "Learning curves" + sampled_note(len(shown), len(reported))
    fig.update_layout(title=title, xaxis_title="step", yaxis_title=data.metrics[0])
    return Plot("learning_curves", title, fig)


def parallel_coordinates(data: StudyData) -> Plot | None:
    import plotly.graph_objects as go

    done = [t for t in data.complete if t.params]
    if not done:
        return None
    shown = thin(done, PARCOORDS_LINES, keep=best_first(data, done)[:20])
    names = sorted({name for t in shown for name in t.params})
    # A conditional param a trial did not have is drawn at its own "(absent)" tick, never
    # at a value the trial did not take.
    dimensions = [_dimension(name, [t.params.get(name, ABSENT) for t in shown]) for name in names]
    values = [t.values[0] for t in shown]
    dimensions.append({"label": data.metrics[0], "values": values})
    fig = go.Figure(
        go.Parcoords(
            dimensions=dimensions,
            line={"color": values, "colorscale": "Viridis", "showscale": True},
        )
    )
    title = "Parallel coordinates" + sampled_note(len(shown), len(done), "complete trials")
    fig.update_layout(title=title)
    return Plot("parallel_coordinates", title, fig)


def importances(data: StudyData, scores: dict[str, float], used: int) -> Plot | None:
    import plotly.graph_objects as go

    if not scores:
        return None
    names = list(scores)[::-1]  # most important on top
    fig = go.Figure(go.Bar(x=[scores[n] for n in names], y=names, orientation="h"))
    of = f" of {data.metrics[0]}" if data.is_multi else ""
    title = f"Parameter importances{of} (optuna.importance)" + sampled_note(
        used, len(data.complete), "complete trials"
    )
    fig.update_layout(title=title, xaxis_title="importance")
    return Plot("importances", title, fig)


def param_importances(data: StudyData) -> tuple[dict[str, float], int]:
    """Optuna's own evaluator over (a sample of) the complete trials: `{param: score}`."""
    import optuna

    done = [t for t in data.complete if t.params]
    # Importance needs at least two trials and a param that varied.
    if len(done) < 2 or not any(
        len({repr(t.params.get(n)) for t in done}) > 1 for n in done[0].params
    ):
        return {}, 0
    shown = thin(done, IMPORTANCE_TRIALS)
    study = in_memory_study(data, shown)
    try:
        scores = optuna.importance.get_param_importances(
            study, target=(lambda t: t.values[0]) if data.is_multi else None
        )
    except (ValueError, RuntimeError):  # e.g. params whose distributions changed mid-study
        return {}, 0
    return dict(scores), len(shown)


def top_params_slice(data: StudyData, top: list[str]) -> Plot | None:
    """The objective against each of the two most important params."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    done = [t for t in data.complete if t.params]
    if not top or not done:
        return None
    shown = thin(done, SLICE_POINTS, keep=best_first(data, done)[:20])
    fig = make_subplots(rows=1, cols=len(top), shared_yaxes=True, subplot_titles=top)
    for col, name in enumerate(top, start=1):
        points = [t for t in shown if name in t.params]
        fig.add_trace(
            go.Scatter(
                x=[_axis_value(t.params[name]) for t in points],
                y=[t.values[0] for t in points],
                mode="markers",
                marker={"color": [t.number for t in points], "colorscale": "Viridis", "size": 6},
                text=[f"trial {t.number}" for t in points],
                name=name,
                showlegend=False,
            ),
            row=1,
            col=col,
        )
        if _is_log_scale(done, name):
            fig.update_xaxes(type="log", row=1, col=col)
    title = "Slice of the two most important params" + sampled_note(
        len(shown), len(done), "complete trials"
    )
    fig.update_layout(title=title, yaxis_title=data.metrics[0])
    return Plot("slice", title, fig)


def timeline(data: StudyData) -> Plot | None:
    import plotly.graph_objects as go

    started = [t for t in data.trials if t.datetime_start is not None]
    if not started:
        return None
    shown = thin(started, TIMELINE_BARS)
    lanes = worker_lanes(started)
    fig = go.Figure()
    now = max(t.datetime_complete or t.datetime_start for t in started)
    for state, color in STATE_COLORS.items():
        trials = [t for t in shown if t.state.name == state]
        if not trials:
            continue
        fig.add_trace(
            go.Bar(
                base=[t.datetime_start.isoformat() for t in trials],
                x=[_millis((t.datetime_complete or now) - t.datetime_start) for t in trials],
                y=[lanes[t.number] for t in trials],
                orientation="h",
                name=state.lower(),
                marker_color=color,
                text=[f"trial {t.number}" for t in trials],
                textposition="none",  # in the hover only: 10,000 labels would hide the bars
                hovertemplate="%{text}<br>%{base} +%{x} ms<extra></extra>",
            )
        )
    title = "Trials per worker" + sampled_note(len(shown), len(started))
    fig.update_layout(title=title, xaxis_type="date", barmode="overlay", yaxis_title="worker")
    return Plot("timeline", title, fig)


def pareto_front(data: StudyData) -> Plot | None:
    import optuna

    if not data.is_multi or len(data.directions) > 3 or not data.complete:
        return None
    study = in_memory_study(data, data.complete)
    front = study.best_trials
    shown = thin(data.complete, PARETO_POINTS, keep=front)
    fig = optuna.visualization.plot_pareto_front(
        in_memory_study(data, shown), target_names=data.metrics
    )
    title = f"Pareto front ({len(front)} trials)" + sampled_note(
        len(shown), len(data.complete), "complete trials"
    )
    fig.update_layout(title=title)
    return Plot("pareto_front", title, fig)


def in_memory_study(data: StudyData, trials: list[Any]) -> Any:
    """An optuna study in memory holding `trials`, for optuna's own evaluators and plots."""
    import optuna

    directions = data.directions
    # Stored "minimize" / "maximize" strings; optuna's stub names the Literal.
    study = optuna.create_study(directions=directions, storage=optuna.storages.InMemoryStorage())  # type: ignore[arg-type]
    study.add_trials(trials)
    return study


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


ABSENT = _Absent()  # a param the trial did not have (a conditional param)


def _dimension(name: str, values: list[Any]) -> dict[str, Any]:
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return {"label": name, "values": values}
    labels = sorted({repr(v) for v in values})
    index = {label: i for i, label in enumerate(labels)}
    return {
        "label": name,
        "values": [index[repr(v)] for v in values],
        "tickvals": list(range(len(labels))),
        "ticktext": labels,
    }


def _axis_value(value: Any) -> Any:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _is_log_scale(trials: list[Any], name: str) -> bool:
    distribution = trials[-1].distributions.get(name)
    return bool(getattr(distribution, "log", False))


def _millis(delta: Any) -> float:
    return (
        max(delta.total_seconds() * 1000.0, 0.0) if not math.isnan(delta.total_seconds()) else 0.0
    )
