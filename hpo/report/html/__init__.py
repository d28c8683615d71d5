"""`hpo report`: a study as one offline HTML file (plotly), and optionally PNGs of its plots.

data.py reads the trials, figures.py draws them, table.py lists the top trials, page.py puts
them into one self-contained page, png.py renders static images with headless Chromium.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def write_report(
    ref: Any, output: str | os.PathLike[str], png_dir: str | None = None
) -> list[Path]:
    """Write the report of the study `ref` names; returns the files written (page first)."""
    from hpo.report.html.data import load_study_data
    from hpo.report.html.figures import all_plots
    from hpo.report.html.page import render_page
    from hpo.report.html.table import top_trials_table

    data = load_study_data(ref)
    plots = all_plots(data)
    page = render_page(data, plots, top_trials_table(data))
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    partial.write_text(page, encoding="utf-8")
    os.replace(partial, output)  # never a half-written report under the real name
    written = [output]
    if png_dir is not None:
        from hpo.report.html.png import write_pngs

        written += write_pngs(output, [plot.key for plot in plots], Path(png_dir))
    return written
