"""The live view of `hpo run`: counts, then each running trial's step / max_steps, last
evaluation, steps per second and ETA; a rich display on a terminal, plain lines on a pipe."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest
from helpers.report_study import write_watched_study
from helpers.terminal import run_on_a_terminal

from hpo.report.progress import LiveView, TrialProgress, format_trial, running_trials

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PLAIN_TRIAL_LINE = re.compile(
    r"^  trial (\d+): step (\d+)/240 \| eval (\S+) \| (\S+) steps/s \| ETA (\S+)$", re.M
)


def test_a_trial_line_shows_step_of_max_eval_rate_and_eta():
    trial = TrialProgress(number=3, step=120, max_steps=300, last_value=2.3456, steps_per_s=4.0)
    assert trial.eta_s == 45.0
    assert format_trial(trial) == "trial 3: step 120/300 | eval 2.346 | 4 steps/s | ETA 00:45"
    fresh = TrialProgress(number=4, step=None, max_steps=300, last_value=None, steps_per_s=None)
    assert format_trial(fresh) == "trial 4: starting | eval - | - steps/s | ETA -"


def test_running_trials_prefer_the_trials_own_progress_over_the_study_file():
    running = [
        {
            "number": 1,
            "last_step": 8,
            "last_value": 2.5,
            "progress": {"step": 12, "max_steps": 30, "steps_per_s": 2.0},
        },
        {"number": 2, "last_step": None, "last_value": None, "progress": None},
    ]
    first, second = running_trials(running, max_steps=24)
    assert (first.step, first.max_steps, first.last_value, first.eta_s) == (12, 30, 2.5, 9.0)
    assert (second.step, second.max_steps) == (None, 24)
    assert running_trials(running[1:], max_steps=-1)[0].max_steps is None  # epochs decide


def test_off_a_terminal_lines_are_printed_only_when_counts_or_an_evaluation_change():
    stream = io.StringIO()
    view = LiveView(stream, is_tty=False)
    at = TrialProgress(number=0, step=4, max_steps=24, last_value=None, steps_per_s=1.0)
    view.update("done 0 | 00:01", [at], key="done 0")
    later = TrialProgress(number=0, step=6, max_steps=24, last_value=None, steps_per_s=1.0)
    view.update("done 0 | 00:02", [later], key="done 0")  # a step, no evaluation: quiet
    evaluated = TrialProgress(number=0, step=8, max_steps=24, last_value=2.5, steps_per_s=1.0)
    view.update("done 0 | 00:03", [evaluated], key="done 0")
    assert stream.getvalue() == (
        "done 0 | 00:01\n  trial 0: step 4/24 | eval - | 1 steps/s | ETA 00:20\n"
        "done 0 | 00:03\n  trial 0: step 8/24 | eval 2.5 | 1 steps/s | ETA 00:16\n"
    )


def _hpo_run(study, **streams) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "hpo.cli", "run", str(study)],
        cwd=study.parent,
        stdin=subprocess.DEVNULL,
        **streams,
    )


@pytest.mark.slow
def test_on_a_pipe_hpo_run_prints_plain_lines_with_each_running_trials_progress(tmp_path):
    # Long enough (240 steps) that the once-a-second view sees every trial mid-way.
    study = write_watched_study(tmp_path, n_trials=2, max_steps=240)
    process = _hpo_run(study, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = process.communicate(timeout=900)
    text = output.decode()
    assert process.returncode == 0, text
    assert not ANSI.search(text) and "\r" not in text  # a log, not a terminal
    lines = PLAIN_TRIAL_LINE.findall(text)
    assert lines, text
    # Each trial is seen mid-way with its step, and again after an evaluation with its value
    # and a measured rate (from the `progress` attr the worker writes at each logging step).
    assert {number for number, *_ in lines} == {"0", "1"}, text
    measured = [line for line in lines if line[2] != "-" and line[3] != "-"]
    assert measured, text
    for _number, step, _value, rate, eta in measured:
        assert 0 < int(step) <= 240 and float(rate) > 0 and re.fullmatch(r"\d\d:\d\d", eta)


@pytest.mark.slow
def test_on_a_terminal_hpo_run_draws_a_rich_live_display_with_a_bar_per_trial(tmp_path):
    study = write_watched_study(tmp_path, n_trials=1, max_steps=240)
    env = {**os.environ, "COLUMNS": "140", "LINES": "40", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    code, raw = run_on_a_terminal(
        [sys.executable, "-m", "hpo.cli", "run", str(study)], cwd=study.parent, env=env, timeout=900
    )
    assert code == 0, raw
    # A live display: redrawn in place with cursor movements, not a growing log.
    assert "\x1b[2K" in raw or "\x1b[1A" in raw, raw
    text = ANSI.sub("", raw)
    assert "━" in text  # rich's progress bar
    rows = re.findall(r"trial 0\s+\S*\s*(\d+)/240\s+eval (\S+)\s+(\S+) steps/s\s+ETA (\S+)", text)
    assert rows, text
    assert any(value != "-" and rate != "-" for _step, value, rate, _eta in rows), text
    assert "done 1/1" in text
