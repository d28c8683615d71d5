"""`hpo run` through real faults: a PostgreSQL restart, dropped and lost connections, SIGKILL of
`hpo run` itself and of the fork server its workers come from.

Each test runs `hpo run` as a real process on a tiny study and hurts it for real; the storage
says what survived. PostgreSQL is always left running (helpers/postgres.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from helpers.postgres import drop_connections, ensure_postgres_running, restart_postgres
from helpers.study_files import write_study_file
from helpers.waiting import wait_until
from optuna.trial import TrialState

from hpo.attrs import FAIL_REASON_ATTR, INTERRUPTED, RESUMED_FROM_ATTR, WORKER_ATTR
from hpo.backends import EXIT_OK
from hpo.backends.optuna.requeue import pid_alive

REPO = Path(__file__).resolve().parents[4]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# Trials long enough to be hit mid-way on a loaded machine: a checkpoint every 4 steps.
TRIALS = {"max_steps": 24, "eval_steps": 4, "logging_steps": 4}

pytestmark = pytest.mark.slow


def hpo_run(study_file: Path, *, env: dict[str, str] | None = None) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    environment.pop("HPO_STORAGE", None)
    return subprocess.Popen(
        [sys.executable, "-m", "hpo.cli", "run", str(study_file)],
        cwd=study_file.parent,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def trials_of(url: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name="tiny", storage=url).get_trials()
    except Exception:  # the study (or its tables) is being created right now
        return []


def running_with_checkpoint(url: str, count: int = 1):
    def find():
        trials = [
            t
            for t in trials_of(url)
            if t.state == TrialState.RUNNING and t.user_attrs.get("last_checkpoint")
        ]
        return trials if len(trials) >= count else None

    return find


def worker_pid(trial: optuna.trial.FrozenTrial) -> int:
    return int(trial.user_attrs[WORKER_ATTR].rsplit(":", 1)[1])


def parent_pid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def finish(run: subprocess.Popen, timeout: float = 600) -> str:
    try:
        out, _ = run.communicate(timeout=timeout)
    finally:
        run.kill()
    return out


def assert_budget_met_cleanly(url: str, n_trials: int) -> list[optuna.trial.FrozenTrial]:
    """Exactly n_trials finished, nothing left RUNNING or WAITING, and every trial that failed
    on the way has a retry that finished (nothing lost)."""
    trials = trials_of(url)
    states = [t.state for t in trials]
    assert sum(state in FINISHED for state in states) == n_trials, states
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states, states
    for trial in trials:
        if trial.state == TrialState.FAIL:
            assert last_retry(trials, trial).state in FINISHED, trial.user_attrs
    return trials


def last_retry(trials, trial):
    """The end of the chain of retries that resumed `trial` (`trial` if none did)."""
    while True:
        retries = [t for t in trials if t.system_attrs.get("failed_trial") == trial.number]
        if not retries:
            return trial
        (trial,) = retries


# ---------------------------------------------------------------------------------------------
# 1. The database restarts, or drops every connection, while two workers train


def test_a_postgresql_restart_and_dropped_connections_do_not_stop_the_run(tmp_path, pg_url):
    study_file = write_study_file(
        tmp_path, storage=pg_url, workers=2, budget={"n_trials": 4}, training=TRIALS
    )
    run = hpo_run(study_file)
    try:
        wait_until(running_with_checkpoint(pg_url), what="a checkpoint", run=run, timeout=300)
        restart_postgres()
        for _ in range(3):
            drop_connections(pg_url)
            time.sleep(1.0)
    finally:
        ensure_postgres_running()
        out = finish(run)
    assert run.returncode == EXIT_OK, out
    assert "Traceback" not in out, out
    trials = assert_budget_met_cleanly(pg_url, 4)
    # A lost connection is never a trial's failure (optuna's message for it blames the data).
    reasons = [t.user_attrs.get(FAIL_REASON_ATTR) for t in trials if t.state == TrialState.FAIL]
    assert not [r for r in reasons if "Error" in str(r)], reasons


def test_a_worker_that_loses_the_storage_is_replaced_once_it_is_back(tmp_path, pg_url):
    # The outage outlasts the storage calls' patience (1 s here): the workers give up, exit,
    # and are replaced when the server is back; their trials are queued again and finished.
    study_file = write_study_file(
        tmp_path, storage=pg_url, workers=2, budget={"n_trials": 3}, training=TRIALS
    )
    run = hpo_run(study_file, env={"HPO_STORAGE_OUTAGE_S": "1"})
    try:
        wait_until(running_with_checkpoint(pg_url), what="a checkpoint", run=run, timeout=300)
        training = [worker_pid(t) for t in trials_of(pg_url) if t.state == TrialState.RUNNING]
        subprocess.run(["pg_ctlcluster", "15", "main", "stop"], check=True, timeout=120)
        # The server stays down until every worker that was training has met the outage on
        # its next report or checkpoint, given up and exited.
        wait_until(
            lambda: not any(pid_alive(pid) for pid in training),
            timeout=120,
            what=f"workers {training} to give up on the storage",
            run=run,
        )
    finally:
        ensure_postgres_running()
        out = finish(run)
    assert run.returncode == EXIT_OK, out
    assert "could not reach the storage" in out, out
    trials = assert_budget_met_cleanly(pg_url, 3)
    reasons = [t.user_attrs.get(FAIL_REASON_ATTR, "") for t in trials]
    lost = [
        t for t in trials if "could not reach the storage" in t.user_attrs.get(FAIL_REASON_ATTR, "")
    ]
    assert lost, reasons
    for trial in lost:
        # Finished by its retry. (Whether the retry resumes depends on the storage having
        # recorded the checkpoint the trainer kept, which a write lost with the storage may not.)
        assert last_retry(trials, trial).state in FINISHED


# ---------------------------------------------------------------------------------------------
# 8. `hpo run` is SIGKILLed: its workers stop with it, and a rerun recovers their trials


def test_workers_stop_when_hpo_run_is_killed_and_a_rerun_resumes_their_trials(tmp_path):
    url = f"sqlite:///{tmp_path}/tiny.db"
    long_trials = {**TRIALS, "max_steps": 200}
    study_file = write_study_file(
        tmp_path, workers=2, budget={"n_trials": 20}, training=long_trials
    )
    run = hpo_run(study_file)
    workers: list[int] = []
    try:
        victims = wait_until(
            running_with_checkpoint(url, count=2), what="two trials training", run=run, timeout=300
        )
        workers = [worker_pid(t) for t in victims]
        run.kill()
        run.wait()
        # Orphans would train on for minutes (20 trials of 200 steps); workers that die with
        # their parent checkpoint and exit within seconds.
        wait_until(
            lambda: not any(pid_alive(pid) for pid in workers),
            timeout=60,
            what=f"workers {workers} to stop after hpo run was killed",
        )
    finally:
        for pid in workers:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
    trials = trials_of(url)
    for victim in victims:
        stopped = trials[victim.number]
        assert stopped.state == TrialState.FAIL
        assert stopped.user_attrs[FAIL_REASON_ATTR] == INTERRUPTED  # checkpointed on the way
    # The rerun (with a budget of two finished trials) trains exactly the two stopped trials,
    # each resumed from the checkpoint its worker wrote when it stopped.
    write_study_file(tmp_path, workers=2, budget={"n_trials": 2}, training=long_trials)
    rerun = hpo_run(study_file)
    out = finish(rerun)
    assert rerun.returncode == EXIT_OK, out
    trials = assert_budget_met_cleanly(url, 2)
    for victim in victims:
        (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
        assert retry.state in FINISHED
        assert (
            retry.user_attrs[RESUMED_FROM_ATTR]
            == trials[victim.number].user_attrs["last_checkpoint"]
        )


# ---------------------------------------------------------------------------------------------
# 14. The fork server (parent of the workers) is SIGKILLed mid-study


def test_a_killed_fork_server_is_replaced_and_the_run_reaches_its_budget(tmp_path):
    url = f"sqlite:///{tmp_path}/tiny.db"
    study_file = write_study_file(tmp_path, workers=2, budget={"n_trials": 4}, training=TRIALS)
    run = hpo_run(study_file)
    try:
        (victim,) = wait_until(
            running_with_checkpoint(url), what="a checkpoint", run=run, timeout=300
        )[:1]
        fork_server = parent_pid(worker_pid(victim))
        assert fork_server != run.pid  # the workers' parent is the fork server, not hpo run
        os.kill(fork_server, signal.SIGKILL)
    finally:
        out = finish(run)
    # Exit 0 means the budget was met, and it was: the run started what it lost again.
    assert run.returncode == EXIT_OK, out
    assert_budget_met_cleanly(url, 4)
    assert "lost with its fork server" in out, out
