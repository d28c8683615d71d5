"""`hpo report --png DIR`: each plot as a PNG, photographed from the report in headless Chromium.

Why Chromium and not kaleido: kaleido drives a Chrome it downloads or finds, so it needs the
same browser and a network (or a pre-installed Chrome) on top; matplotlib would draw different
plots than the report. Photographing the page itself gives exactly what the report shows, offline.
"""

from __future__ import annotations

from pathlib import Path

from hpo.report.html.chromium import Chromium

# The plotly attribute that marks a plot as drawn (its first SVG layer).
DRAWN = "document.querySelectorAll('#{key} .main-svg').length > 0"


def write_pngs(report: Path, keys: list[str], directory: Path) -> list[Path]:
    """Photograph each plot of the written `report` page into `directory/<key>.png`."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    with Chromium() as browser:
        page = browser.open(report.resolve().as_uri())
        for key in keys:
            page.wait_for(DRAWN.format(key=key))
            written.append(page.screenshot(directory / f"{key}.png", clip=page.element_box(key)))
    return written
