"""hpo.report.dashboard: a real optuna-dashboard server, queried over HTTP for the study's trials."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
import sqlalchemy

from hpo.errors import HpoError
from hpo.report.dashboard import serve
from hpo.storage.urls import mask_url

REPO = Path(__file__).resolve().parents[3]
SECRET = "dash-Pa55word"

optuna.logging.set_verbosity(optuna.logging.WARNING)

SERVE = textwrap.dedent(
    """
    import sys
    from hpo.report.dashboard import serve
    sys.exit(serve(sys.argv[1], host="127.0.0.1", port=0))
    """
)


def build_study(url: str) -> optuna.Study:
    study = optuna.create_study(study_name="dash", storage=url)

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
        trial.suggest_categorical("per_device_train_batch_size", [8, 16])
        for step in (1, 2, 3):
            trial.report(lr / step, step)
        return lr

    study.optimize(objective, n_trials=3)
    return study


def get_json(address: str, path: str) -> dict:
    with urllib.request.urlopen(address + path, timeout=30) as response:
        return json.loads(response.read())


def start_dashboard(url: str):
    """The dashboard in its own process; returns it and the address it printed."""
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE, url],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = server.stdout.readline()
        if not line:
            break
        lines.append(line)
        match = re.search(r"(http://127\.0\.0\.1:\d+)/dashboard/", line)
        if match:
            return server, match.group(1), lines
    server.kill()
    pytest.fail(f"the dashboard never printed its address: {lines} {server.communicate()[1]}")


def stop(server: subprocess.Popen) -> str:
    os.kill(server.pid, signal.SIGINT)  # what Ctrl-C sends
    try:
        _, err = server.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        _, err = server.communicate()
    return err


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'dash.db'}"
    pg = sqlalchemy.engine.make_url(request.getfixturevalue("pg_url"))
    return pg.set(password=SECRET).render_as_string(hide_password=False)


def test_the_dashboard_serves_the_studys_trials_and_intermediate_values(url):
    study = build_study(url)
    server, address, printed = start_dashboard(url)
    try:
        studies = get_json(address, "/api/studies")["study_summaries"]
        assert [s["study_name"] for s in studies] == ["dash"]
        detail = get_json(address, f"/api/studies/{studies[0]['study_id']}")
    finally:
        err = stop(server)

    served = {t["number"]: t for t in detail["trials"]}
    assert sorted(served) == [t.number for t in study.trials]
    for trial in study.trials:
        steps = {iv["step"]: iv["value"] for iv in served[trial.number]["intermediate_values"]}
        assert steps == pytest.approx(trial.intermediate_values)
        assert served[trial.number]["values"] == pytest.approx([trial.value])
    assert [t["number"] for t in detail["best_trials"]] == [study.best_trial.number]
    assert server.returncode == 0
    assert SECRET not in "".join(printed) + err
    assert any(mask_url(url) in line for line in printed)  # the storage, password masked


def test_a_port_in_use_is_a_clear_error(tmp_path):
    import socket

    url = f"sqlite:///{tmp_path / 'dash.db'}"
    build_study(url)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(HpoError, match=f"cannot listen on 127.0.0.1:{port}.*--port"):
            serve(url, host="127.0.0.1", port=port)


def test_a_missing_storage_is_reported_before_serving(tmp_path):
    path = tmp_path / "absent.db"
    with pytest.raises(HpoError, match="does not exist"):
        serve(f"sqlite:///{path}", port=0)
    assert not path.exists()
