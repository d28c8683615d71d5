"""Headless Chromium for the report tests: the page's plots and console, or a skip that says why."""

from __future__ import annotations

import pytest

from hpo.report.html.chromium import Chromium, find_chromium

# Every plot of a single-objective report: the element ids hpo.report.html.figures gives them.
SINGLE_OBJECTIVE_PLOTS = (
    "history",
    "learning_curves",
    "parallel_coordinates",
    "importances",
    "slice",
    "timeline",
)
DRAWN = "document.querySelectorAll('#{key}.js-plotly-plot .main-svg').length"


def skip_without_chromium() -> None:
    if find_chromium() is None:
        pytest.skip(
            "Chromium is not installed, so the report is not opened in a browser "
            "(`apt-get install chromium`; .ci/run installs it)"
        )


def chromium_or_skip() -> Chromium:
    skip_without_chromium()
    return Chromium(timeout_s=300)


def open_report(browser: Chromium, path, plots=SINGLE_OBJECTIVE_PLOTS):
    """Open the page, wait until every plot drew; returns the page."""
    page = browser.open(path.resolve().as_uri())
    for key in plots:
        page.wait_for(DRAWN.format(key=key))
    return page
