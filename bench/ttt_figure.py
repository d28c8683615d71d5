"""docs/time-to-target.png from bench/hpo_vs_transformers.py's records (its JSON).

Best-so-far eval_loss against wall-clock seconds from each process's launch, one line per
contender, each run's end marked. Drawn with plotly, the library of `hpo report`, and
photographed in headless Chromium the way `hpo report --png` does (hpo.report.html.png):
kaleido, plotly's own exporter, needs a Chrome it downloads, and matplotlib is not installed.
"""

from __future__ import annotations

import html
import json
import tempfile
from pathlib import Path
from typing import Any

COLOURS = {"a": "#1f77b4", "b": "#ff7f0e", "c": "#2ca02c"}
KEY = "time-to-target"  # the element id of the plot, and the PNG's name


def best_so_far(points: list[list[float]], wall_s: float) -> tuple[list[float], list[float]]:
    """A step line: the best value from each improvement on, held until the run's end."""
    xs, ys, best = [], [], None
    for elapsed, value in sorted(points):
        if best is None or value < best:
            best = value
            xs.append(elapsed)
            ys.append(value)
    if best is not None:
        xs.append(wall_s)
        ys.append(best)
    return xs, ys


def figure(record: dict[str, Any], seed: int | None = None) -> Any:
    import plotly.graph_objects as go

    rows = record["seeds"]
    row = next((r for r in rows if seed is None or r["seed"] == seed), None)
    if row is None:
        raise SystemExit(f"bench: seed {seed} is not in the records ({[r['seed'] for r in rows]})")
    fig = go.Figure()
    for key, side in row["contenders"].items():
        xs, ys = best_so_far(side["points"], side["wall_s"])
        colour = COLOURS.get(key, "#444")
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                line={"shape": "hv", "color": colour, "width": 2.5},
                name=f"{side['label']} ({side['wall_s']:.0f} s)",
            )
        )
        if ys:  # the run's end: the process exited here
            fig.add_trace(
                go.Scatter(
                    x=[side["wall_s"]],
                    y=[ys[-1]],
                    mode="markers",
                    showlegend=False,
                    marker={
                        "symbol": "line-ns-open",
                        "size": 22,
                        "color": colour,
                        "line": {"width": 3},
                    },
                    hovertext=f"{side['label']} ends at {side['wall_s']:.0f} s",
                )
            )
    smoke = " (smoke run: not a measurement)" if record.get("smoke") else ""
    fig.update_layout(
        title=(
            f"Best eval_loss so far against wall-clock seconds, seed {row['seed']}{smoke}<br>"
            f"<sup>{html.escape(record.get('measured', ''))}</sup>"
        ),
        xaxis_title="seconds from the process's launch (imports included); | marks its end",
        yaxis_title="best eval_loss so far",
        width=960,
        height=540,
        template="plotly_white",
        legend={"x": 0.99, "xanchor": "right", "y": 0.99},
    )
    return fig


def page(fig: Any) -> str:
    """A page holding the one figure, plotly.js inlined (Chromium runs offline)."""
    from plotly.offline import get_plotlyjs

    spec = fig.to_plotly_json()
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<script>{get_plotlyjs()}</script></head><body style='margin:0'>"
        f'<div id="{KEY}" style="width:960px;height:540px"></div><script>'
        f"Plotly.newPlot({json.dumps(KEY)}, {fig_json(spec['data'])}, "
        f"{fig_json(spec['layout'])}, {{staticPlot: true}});</script></body></html>"
    )


def fig_json(value: Any) -> str:
    import plotly.io

    return plotly.io.json.to_json_plotly(value).replace("</", "<\\/")


def write_png(record: dict[str, Any], path: Path, seed: int | None = None) -> Path:
    """Draw the figure of `seed` (default: the first) into `path`; raises HpoError without
    Chromium, before anything is written."""
    from hpo.errors import HpoError
    from hpo.report.html.chromium import find_chromium
    from hpo.report.html.png import write_pngs

    fig = figure(record, seed)
    if find_chromium() is None:
        raise HpoError(
            "no Chromium found (needed to render the PNG): install it, e.g. "
            "`apt-get install chromium`, or set HPO_CHROMIUM to its path"
        )
    with tempfile.TemporaryDirectory(prefix="hpo-ttt-") as tmp:
        source = Path(tmp) / "figure.html"
        source.write_text(page(fig), encoding="utf-8")
        (shot,) = write_pngs(source, [KEY], Path(tmp))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(shot.read_bytes())
    return path
