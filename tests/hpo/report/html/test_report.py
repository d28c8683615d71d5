"""`hpo report` on a real study (trials trained through `hpo run`, pruned ones included), opened
in headless Chromium with no network: every plot draws, the console stays clean, and what the
plots show agrees with optuna's own reading of the same storage."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from helpers.browser import (
    SINGLE_OBJECTIVE_PLOTS,
    chromium_or_skip,
    open_report,
    skip_without_chromium,
)
from helpers.report_study import write_watched_study
from helpers.study_files import write_study_file

# Set to a path (docs/report.png) to keep the screenshot this test takes for docs/RUNNING.md.
SCREENSHOT_ENV = "HPO_REPORT_SCREENSHOT"


def _hpo(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hpo.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=1800,
    )


@pytest.fixture(scope="module")
def real_study(tmp_path_factory):
    """Five trials on two workers; after two, the percentile pruner stops the weaker ones."""
    directory = tmp_path_factory.mktemp("report")
    study_file = write_watched_study(directory, n_trials=5, workers=2)
    run = _hpo("run", str(study_file), cwd=directory)
    assert run.returncode == 0, run.stdout + run.stderr
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{directory}/tiny.db")
    states = [t.state.name for t in study.trials]
    assert "PRUNED" in states and "COMPLETE" in states, states
    return study_file, study


@pytest.mark.slow
def test_the_report_of_a_real_study_draws_every_plot_offline_with_a_clean_console(real_study):
    skip_without_chromium()  # before `--png`, which needs it too
    study_file, study = real_study
    directory = study_file.parent
    result = _hpo("report", str(study_file), "-o", "report.html", "--png", "png", cwd=directory)
    assert result.returncode == 0, result.stdout + result.stderr
    report = directory / "report.html"
    assert f"wrote {Path('report.html')}" in result.stdout
    assert "<script src=" not in report.read_text(encoding="utf-8")  # nothing to fetch

    with chromium_or_skip() as browser:
        page = open_report(browser, report)
        assert page.errors() == []
        figures = {
            key: page.evaluate(
                f"document.getElementById('{key}').data.map(t => ({{name: t.name || '',"
                " x: Array.from(t.x || []), y: Array.from(t.y || [])}))"
            )
            for key in SINGLE_OBJECTIVE_PLOTS
            if key != "parallel_coordinates"
        }
        complete = [t for t in study.trials if t.state.name == "COMPLETE"]
        pruned = [t for t in study.trials if t.state.name == "PRUNED"]

        # History: one point per complete trial, and the best-so-far line ends at optuna's best.
        history = {trace["name"]: trace for trace in figures["history"]}
        assert sorted(history["eval_loss"]["x"]) == sorted(t.number for t in complete)
        assert history["best so far"]["y"][-1] == pytest.approx(study.best_value)

        # Learning curves: every pruned trial's curve is in the "pruned" trace, ending where
        # optuna recorded its last step.
        curves = {trace["name"]: trace for trace in figures["learning_curves"]}
        assert sorted(curves["pruned here"]["x"]) == sorted(
            max(t.intermediate_values) for t in pruned
        )

        # Importances: optuna's own evaluator on the same trials, most important first.
        expected = optuna.importance.get_param_importances(study)
        bars = figures["importances"][0]
        assert list(reversed(bars["y"])) == list(expected)
        assert list(reversed(bars["x"])) == pytest.approx(list(expected.values()))
        # The slice shows the two most important params.
        slice_titles = page.evaluate(
            "document.getElementById('slice').layout.annotations.map(a => a.text)"
        )
        assert slice_titles == list(expected)[:2]

        # The timeline has one lane per worker process of the run (two workers).
        lanes = {y for trace in figures["timeline"] for y in trace["y"]}
        assert lanes == {t.user_attrs["worker"] for t in study.trials}
        assert len(lanes) == 2

        # The table: the complete trials, best first, with steps trained and a checkpoint.
        rows = page.evaluate(
            "Array.from(document.querySelectorAll('#top_trials tbody tr'))"
            ".map(r => Array.from(r.cells).map(c => c.textContent))"
        )
        ranked = sorted(complete, key=lambda t: t.value)
        assert [int(row[0]) for row in rows] == [t.number for t in ranked]
        assert all(row[3] == "24" for row in rows)
        # Retention keeps the best trial's checkpoint and clears the attrs of what it deleted:
        # the table names a checkpoint for the best trial, and only checkpoints that exist.
        assert "checkpoint-" in rows[0][-1]
        named = [row[-1] for row in rows if "checkpoint-" in row[-1]]
        assert all(Path(path.strip()).is_dir() for path in named), named

        screenshot = page.screenshot(directory / "report.png")
        assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if os.environ.get(SCREENSHOT_ENV):
            shutil.copyfile(screenshot, os.environ[SCREENSHOT_ENV])

    pngs = sorted(p.stem for p in (directory / "png").glob("*.png"))
    assert pngs == sorted(SINGLE_OBJECTIVE_PLOTS)


def test_the_console_check_catches_errors_and_any_network_fetch(tmp_path):
    """The browser check can fail: a page with a script error, or one that loads plotly.js
    from a CDN (no network here), shows up in `errors()`."""
    broken = tmp_path / "broken.html"
    broken.write_text(
        "<html><body><script>console.error('boom'); missing();</script></body></html>"
    )
    online = tmp_path / "online.html"
    online.write_text(
        '<html><head><script src="https://cdn.plot.ly/plotly-2.35.2.min.js"></script></head>'
        "<body>x</body></html>"
    )
    with chromium_or_skip() as browser:
        errors = browser.open(broken.as_uri()).errors()
        assert any("boom" in e for e in errors) and any("missing" in e for e in errors)
        assert browser.open(online.as_uri()).errors()  # the load failed: no network


def test_a_study_that_does_not_exist_is_one_line_and_writes_nothing(tmp_path):
    study_file = tmp_path / "study.yaml"
    study_file.write_text(f"name: nope\nstorage: sqlite:///{tmp_path}/none.db\n")
    result = _hpo("report", str(study_file), "-o", "report.html", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: no storage at") and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "report.html").exists() and not (tmp_path / "none.db").exists()


def test_a_multi_objective_report_draws_optunas_pareto_front(tmp_path):
    url = f"sqlite:///{tmp_path}/multi.db"
    study = optuna.create_study(
        study_name="multi",
        storage=url,
        directions=["minimize", "maximize"],
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    study.optimize(
        lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1) - t.params["x"] / 2),
        n_trials=30,
    )
    study_file = tmp_path / "multi.yaml"
    study_file.write_text(
        f"name: multi\nstorage: {url}\n"
        "objective: {metric: [eval_loss, eval_accuracy], direction: [minimize, maximize]}\n"
    )
    result = _hpo("report", str(study_file), "-o", "report.html", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    page_text = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert f"Pareto front ({len(study.best_trials)} trials)" in page_text

    with chromium_or_skip() as browser:
        plots = ("history", "parallel_coordinates", "importances", "slice", "timeline")
        page = open_report(browser, tmp_path / "report.html", (*plots, "pareto_front"))
        assert page.errors() == []
        # The table lists the Pareto front first, as optuna computes it.
        numbers = page.evaluate(
            "Array.from(document.querySelectorAll('#top_trials tbody tr'))"
            ".map(r => Number(r.cells[0].textContent))"
        )
        front = {t.number for t in study.best_trials}
        assert set(numbers[: len(front)]) == front


@pytest.mark.slow
def test_a_ray_study_gives_the_same_report(tmp_path, ray_local):
    """The Ray backend's trials live in the same storage (the mirror): the same plots draw; the
    timeline, with no worker recorded, puts trials on the lanes they ran in."""
    from hpo import backends
    from hpo.study import load

    study_file = write_study_file(
        tmp_path,
        backend="ray",
        budget={"n_trials": 2},
        training={"max_steps": 8, "eval_steps": 4},
        scheduler={
            "name": "asha",
            "time_attr": "training_iteration",
            "grace_period": 2,
            "max_t": 2,
        },
        ray={"max_concurrent_trials": 1, "resources_per_trial": {"cpu": 1}},
    )
    assert backends.get("ray").run(load(study_file)) == backends.EXIT_OK
    result = _hpo("report", str(study_file), "-o", "report.html", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with chromium_or_skip() as browser:
        page = open_report(browser, tmp_path / "report.html")
        assert page.errors() == []
        lanes = page.evaluate(
            "document.getElementById('timeline').data.flatMap(t => Array.from(t.y))"
        )
        assert lanes == ["slot 1", "slot 1"]  # one trial at a time
