"""`hpo report` on 10,000 trials: it finishes (the time is printed, never asserted), the page
stays under a stated size, the crowded plots say they show a sample, and a browser draws it."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from helpers.browser import SINGLE_OBJECTIVE_PLOTS, chromium_or_skip, open_report

REPO = Path(__file__).resolve().parents[4]
# plotly.js alone is about 4.7 MB; the figures of 10,000 trials, thinned, stay well within this.
MAX_REPORT_BYTES = 12_000_000
N_TRIALS = 10_000


def _bench():
    """bench/report_at_scale.py, the benchmark that builds the study and times the command."""
    spec = importlib.util.spec_from_file_location(
        "report_at_scale", REPO / "bench" / "report_at_scale.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_a_10000_trial_report_finishes_stays_small_and_says_what_it_sampled(tmp_path):
    bench = _bench()
    url = f"sqlite:///{tmp_path / 'study.db'}"
    build_s = bench.build_study(url, N_TRIALS)
    study_file = bench.write_study_file(tmp_path, url)
    report = tmp_path / "report.html"
    wall, cpu = bench.time_report(study_file, report)
    size = report.stat().st_size
    print(
        f"\n{N_TRIALS} trials built in {build_s:.1f} s; hpo report: {wall:.1f} s wall, "
        f"{cpu:.1f} s cpu; {size / 1e6:.2f} MB"
    )
    assert size < MAX_REPORT_BYTES
    page = report.read_text(encoding="utf-8")
    assert "10,000 trials (" in page
    # Plots past their limits say so in their titles.
    assert "Learning curves (an even sample: 200 of 10,000 trials)" in page
    assert re.search(
        r"Parallel coordinates \(an even sample: [\d,]+ of [\d,]+ complete trials\)", page
    )
    assert "Trials per worker (an even sample: 2,000 of 10,000 trials)" in page

    with chromium_or_skip() as browser:
        opened = open_report(browser, report, SINGLE_OBJECTIVE_PLOTS)
        assert opened.errors() == []
        curves = opened.evaluate(
            "document.getElementById('learning_curves').data.map(t => [t.name, t.x.length])"
        )
        assert dict(curves)["pruned"] > 0
