"""`hpo run` on the Optuna backend: worker processes, the budget, the storage, the display."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from helpers.study_files import tiny_gpt2_config, tiny_spec, write_study_file
from helpers.waiting import wait_until
from optuna.trial import TrialState

from hpo.attrs import WORKER_ATTR
from hpo.backends import EXIT_OK
from hpo.backends.optuna.budget import TrialCounts, slot_free, stop_reason
from hpo.backends.optuna.supervisor import OptunaRun, run_study
from hpo.backends.placement import thread_split
from hpo.report.progress import format_progress
from hpo.spec import BudgetSpec, ComponentSpec, ModelSpec, ObjectiveSpec
from hpo.storage import reader
from hpo.study import load as load_study_file

REPO = Path(__file__).resolve().parents[4]


def load(spec) -> optuna.Study:
    return optuna.load_study(study_name=spec.name, storage=spec.storage)


# ---------------------------------------------------------------------------------------------
# Threads per worker


@pytest.mark.parametrize("cores", [1, 2, 3, 8, 16])
def test_worker_threads_add_up_to_the_cores(cores):
    for workers in range(1, cores + 1):
        threads = thread_split(cores, workers)
        assert len(threads) == workers
        assert sum(threads) == cores
        assert min(threads) >= 1 and max(threads) - min(threads) <= 1


def test_more_workers_than_cores_get_one_thread_each():
    assert thread_split(2, 3) == [1, 1, 1]


def test_zero_workers_is_an_error():
    with pytest.raises(ValueError, match="workers=0"):
        thread_split(4, 0)


# ---------------------------------------------------------------------------------------------
# Budget arithmetic


def test_n_trials_counts_finished_trials_and_running_ones_hold_a_slot(tmp_path):
    spec = tiny_spec(tmp_path, budget=BudgetSpec(n_trials=4, max_failed_trials=1))
    now = time.time()
    assert slot_free(spec, TrialCounts(complete=2, running=1))
    assert not slot_free(spec, TrialCounts(complete=2, pruned=1, running=1))
    # Failed and interrupted trials do not use up the budget.
    assert slot_free(spec, TrialCounts(complete=1, failed=1, interrupted=3))
    assert stop_reason(spec, TrialCounts(complete=3, running=1), deadline=None, now=now) is None
    assert "budget reached" in stop_reason(
        spec, TrialCounts(complete=2, pruned=2), deadline=None, now=now
    )
    assert "max_failed_trials=1" in stop_reason(spec, TrialCounts(failed=2), deadline=None, now=now)
    assert "timeout" in stop_reason(
        dataclasses.replace(spec, budget=BudgetSpec(timeout_s=5)),
        TrialCounts(),
        deadline=now - 1,
        now=now,
    )


def test_without_max_failed_trials_a_study_that_always_fails_still_stops(tmp_path):
    spec = tiny_spec(tmp_path, budget=BudgetSpec(n_trials=3))
    assert stop_reason(spec, TrialCounts(failed=3), deadline=None, now=0) is None
    assert "max_failed_trials=3" in stop_reason(spec, TrialCounts(failed=4), deadline=None, now=0)


# ---------------------------------------------------------------------------------------------
# Progress display


def test_progress_line_counts_and_best():
    line = format_progress(
        {"COMPLETE": 3, "PRUNED": 2, "FAIL": 1, "RUNNING": 2},
        n_trials=12,
        best="1.234 (#4)",
        elapsed_s=83,
    )
    assert line == "done 5/12 | pruned 2 | failed 1 | running 2 | best 1.234 (#4) | 01:23"


# ---------------------------------------------------------------------------------------------
# End to end on SQLite


@pytest.mark.slow
def test_two_workers_share_one_study_and_a_rerun_continues_it_to_the_budget(tmp_path, capsys):
    # Each worker's first trial waits at a barrier until both workers are in a trial, so both
    # train whatever the order the processes start in (helpers/barrier_models.py).
    barrier = {"barrier_dir": str(tmp_path / "barrier"), "parties": 2}
    model = ModelSpec(
        task="causal-lm",
        factory="helpers.barrier_models:gpt2_at_barrier",
        config={**tiny_gpt2_config(n_positions=32), **barrier},
    )
    spec = tiny_spec(tmp_path, workers=2, budget=BudgetSpec(n_trials=3), model=model)
    run = OptunaRun(spec)  # what run_study(spec) runs, kept to look at its workers after
    assert run.run() == 0
    out = capsys.readouterr().out
    study = load(spec)
    # Both workers left the barrier together and raced for the last slot: exactly n_trials
    # finished, and no trial was asked for and given back (no empty WAITING one is left).
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE] * 3
    trials = study.get_trials()
    assert not study.get_trials(states=(TrialState.RUNNING,))
    assert len({t.user_attrs[WORKER_ATTR] for t in trials}) == 2  # both workers trained
    assert len(list((tmp_path / "barrier").iterdir())) == 2  # both met at the barrier
    # Both workers worked on the study until the budget was met and exited cleanly.
    assert run.workers.exit_codes == {0: EXIT_OK, 1: EXIT_OK}
    assert run.workers.restarts == 0  # no worker died and was replaced
    # The trials were trained by the two processes that met at the barrier (each wrote its pid).
    trained_by = {int(t.user_attrs[WORKER_ATTR].rsplit(":", 1)[1]) for t in trials}
    assert trained_by == {int(p.read_text()) for p in (tmp_path / "barrier").iterdir()}
    for trial in trials:
        assert set(trial.params) == {"learning_rate", "model.n_layer"}
        assert sorted(trial.intermediate_values) == [4, 8]
        assert trial.value == pytest.approx(trial.intermediate_values[8])
        assert trial.user_attrs["output_dir"] == str(
            tmp_path / "runs" / f"trial-{trial.number:04d}"
        )
        assert trial.user_attrs["train_metrics"]["eval_loss"] == pytest.approx(trial.value)
    best = study.best_trial
    assert Path(best.user_attrs["best_checkpoint"]).is_dir()
    # Retention: only the best trial's best checkpoint is left.
    left = sorted(p.relative_to(tmp_path) for p in (tmp_path / "runs").glob("trial-*/checkpoint-*"))
    assert left == [Path(best.user_attrs["best_checkpoint"]).relative_to(tmp_path)]
    assert f"trial {best.number}" in out
    assert f"hpo dashboard {spec.source_path}" in out
    assert "done 3/3" in out

    # A rerun with a larger budget continues the same study: n_trials counts the whole study.
    assert run_study(dataclasses.replace(spec, budget=BudgetSpec(n_trials=5))) == 0
    trials = load(spec).get_trials()
    assert [t.number for t in trials] == list(range(len(trials)))  # none used twice
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 5
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.FAIL)]
    # Nothing left to do: a third run starts no trial.
    assert run_study(dataclasses.replace(spec, budget=BudgetSpec(n_trials=5))) == 0
    assert len(load(spec).get_trials()) == len(trials)


@pytest.mark.slow
def test_multi_objective_reports_the_pareto_front_and_does_not_prune(tmp_path, capsys):
    spec = tiny_spec(
        tmp_path,
        workers=2,
        budget=BudgetSpec(n_trials=3),
        objective=ObjectiveSpec(("eval_loss", "train_runtime"), ("minimize", "minimize")),
        pruner=ComponentSpec("median"),
    )
    assert run_study(spec) == 0
    out = capsys.readouterr().out
    assert "pruning is off" in out
    study = load(spec)
    assert [d.name for d in study.directions] == ["MINIMIZE", "MINIMIZE"]
    trials = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    for trial in trials:
        assert len(trial.values) == 2
        assert trial.intermediate_values == {}  # multi-objective trials cannot report
    front = reader.best(spec.storage, spec.name)
    assert isinstance(front, list)
    assert {t["number"] for t in front} == {t.number for t in study.best_trials}
    assert "Pareto front" in out


# ---------------------------------------------------------------------------------------------
# PostgreSQL, with a separate `hpo worker` process joining


@pytest.mark.slow
def test_postgresql_workers_and_a_separate_hpo_worker_share_the_budget(
    tmp_path, pg_url, capsys, monkeypatch
):
    # The server trusts local connections, so any password works: it must never be shown.
    pg_url = pg_url.replace("postgres@", "postgres:s3cret-pw@", 1)
    assert "s3cret-pw" in pg_url
    # The joining worker's first trial waits at a barrier until a worker of the run is in a
    # trial too: on a loaded machine it could otherwise train all 8 trials before the run's
    # workers start (helpers/barrier_models.py). A study file's factory takes no arguments of
    # its own, so a module next to it binds the barrier's.
    (tmp_path / "joining_barrier.py").write_text(
        "from helpers.barrier_models import gpt2_at_barrier\n\n\n"
        "def model(**overrides):\n"
        f"    config = {tiny_gpt2_config(n_positions=32)!r}\n"
        f"    return gpt2_at_barrier(barrier_dir={str(tmp_path / 'barrier')!r}, parties=2,"
        " **{**config, **overrides})\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))  # the run's workers import it too
    study_file = write_study_file(
        tmp_path,
        storage=pg_url,
        workers=2,
        budget={"n_trials": 8},
        training={"max_steps": 16},
    )
    study = yaml.safe_load(study_file.read_text(encoding="utf-8"))
    study["model"] = {"task": "causal-lm", "factory": "joining_barrier:model"}
    study_file.write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    env.pop("HPO_STORAGE", None)
    joining = subprocess.Popen(
        [sys.executable, "-m", "hpo.cli", "worker", str(study_file)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # The joining worker is in its first trial (waiting at the barrier) ...
        wait_until(
            lambda: (tmp_path / "barrier").is_dir() and any((tmp_path / "barrier").iterdir()),
            what=f"the joining worker {joining.pid} at the barrier",
            run=joining,
            timeout=120,
        )
        # ... when `hpo run study.yaml` (here, in this process) starts its two workers.
        code = run_study(load_study_file(study_file))
        worker_out, _ = joining.communicate(timeout=120)
    finally:
        joining.kill()
    out = capsys.readouterr().out
    assert code == 0, out
    assert joining.returncode == 0, worker_out
    study = optuna.load_study(study_name="tiny", storage=pg_url)
    trials = study.get_trials()
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 8  # exact, across three processes
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    pids = {t.user_attrs[WORKER_ATTR].rsplit(":", 1)[1] for t in finished}
    assert str(joining.pid) in pids  # the joining worker trained trials of the same study
    assert len(pids) >= 2
    assert "joining study 'tiny'" in worker_out
    assert "study 'tiny' on postgresql+psycopg2://postgres:***@127.0.0.1" in out
    assert "s3cret-pw" not in out + worker_out
