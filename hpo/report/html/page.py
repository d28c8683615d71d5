"""One self-contained HTML page: plotly.js inlined once, each figure as JSON, no network.

The page fetches nothing (no CDN, no fonts, no MathJax), so it opens offline, attached to a
ticket or from a laptop on a plane.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from typing import Any

from hpo.report.html.data import StudyData
from hpo.report.html.figures import Plot

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { margin-bottom: 0.2em; } .meta { color: #555; margin-top: 0; }
.plot { min-height: 460px; margin-bottom: 1.5em; border-top: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; }
th { background: #f3f3f3; }
"""
PLOT_CONFIG = {"displaylogo": False, "responsive": True}


def render_page(data: StudyData, plots: list[Plot], table_html: str) -> str:
    from plotly.offline import get_plotlyjs

    counts: dict[str, int] = {}
    for trial in data.trials:
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    summary = ", ".join(f"{n:,} {state.lower()}" for state, n in sorted(counts.items()))
    objective = ", ".join(f"{d} {m}" for d, m in zip(data.directions, data.metrics, strict=True))
    divs = "\n".join(
        f'<div class="plot" id="{plot.key}" data-title="{html.escape(plot.title)}"></div>'
        for plot in plots
    )
    draws = "\n".join(
        f"Plotly.newPlot({json.dumps(plot.key)}, {_script_json(plot.figure.to_plotly_json())});"
        for plot in plots
    )
    generated = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>hpo report: {html.escape(data.name)}</title>
<style>{STYLE}</style>
<script>{get_plotlyjs()}</script>
</head><body>
<h1>Study {html.escape(data.name)}</h1>
<p class="meta">{len(data.trials):,} trials ({summary}) &middot; {html.escape(objective)}
&middot; {html.escape(data.storage)} &middot; generated {generated} by <code>hpo report</code></p>
<h2>Top trials</h2>
{table_html}
{divs}
<script>
const config = {json.dumps(PLOT_CONFIG)};
{draws}
</script>
</body></html>
"""


def _script_json(figure: dict[str, Any]) -> str:
    """A figure as a JS argument list `data, layout, config`, safe inside <script>."""
    import plotly.io

    data = plotly.io.json.to_json_plotly(figure.get("data", []))
    layout = plotly.io.json.to_json_plotly(figure.get("layout", {}))
    # "</script>" inside a string would end the script element early.
    return f"{data}, {layout}, config".replace("</", "<\\/")
