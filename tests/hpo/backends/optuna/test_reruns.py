"""Reruns and failures: a rerun continues the sampler's sequence instead of replaying it, and
max_failed_trials counts the failures of one run, exactly, with a default for every study.

The fast tests run the worker loop (`work`) in this process; the slow ones run `hpo run`'s
supervisor with real worker processes.
"""

from __future__ import annotations

import dataclasses
import time

import optuna
import pytest
from helpers.study_files import tiny_gpt2_config, tiny_spec
from optuna.trial import TrialState

from hpo.backends import EXIT_FAILED, EXIT_OK
from hpo.backends.optuna.budget import FAILURES_PER_WORKER
from hpo.backends.optuna.shared_study import worker_seed
from hpo.backends.optuna.supervisor import OptunaRun
from hpo.backends.optuna.worker import work
from hpo.spec import BudgetSpec, ComponentSpec, ParamSpec

SAMPLERS = [
    ComponentSpec("random", {"seed": 0}),
    # TPE proposes at random (from its seed) until n_startup_trials trials have finished.
    ComponentSpec("tpe", {"seed": 0, "n_startup_trials": 10}),
]


def params_of(spec) -> list[tuple]:
    trials = optuna.load_study(study_name=spec.name, storage=spec.storage).get_trials()
    return [tuple(sorted(t.params.items())) for t in trials if t.params]


def with_budget(spec, **budget):
    return dataclasses.replace(spec, budget=BudgetSpec(**budget))


def failing(spec):
    """Every trial fails: 3 heads cannot split a 32-wide embedding."""
    return dataclasses.replace(
        spec, space=(ParamSpec("model.n_head", "categorical", choices=(3,)),)
    )


# ---------------------------------------------------------------------------------------------
# A rerun continues the sequence


@pytest.mark.slow
@pytest.mark.parametrize("sampler", SAMPLERS, ids=lambda s: s.name)
def test_a_rerun_proposes_none_of_the_first_runs_params(tmp_path, sampler):
    spec = dataclasses.replace(tiny_spec(tmp_path), sampler=sampler)
    assert work(with_budget(spec, n_trials=3)) == EXIT_OK  # the first run, then the budget grows
    first = params_of(spec)
    assert work(with_budget(spec, n_trials=6)) == EXIT_OK
    second = params_of(spec)[3:]
    assert len(first) == len(second) == 3
    assert not set(first) & set(second), (first, second)


@pytest.mark.slow
def test_an_uninterrupted_study_stays_reproducible(tmp_path):
    folders = [tmp_path / "a", tmp_path / "b"]
    for folder in folders:
        folder.mkdir()
    specs = [dataclasses.replace(tiny_spec(f), budget=BudgetSpec(n_trials=3)) for f in folders]
    for spec in specs:
        assert work(spec) == EXIT_OK
    assert params_of(specs[0]) == params_of(specs[1])
    assert worker_seed(7, 1, 0) == 8  # a fresh study: seed + worker index, as before
    assert len({worker_seed(7, 0, n) for n in range(1000)}) == 1000


@pytest.mark.slow
def test_a_rerun_of_hpo_run_with_two_workers_repeats_no_params(tmp_path):
    spec = dataclasses.replace(tiny_spec(tmp_path, workers=2), sampler=SAMPLERS[0])
    assert OptunaRun(with_budget(spec, n_trials=2)).run() == EXIT_OK
    first = params_of(spec)
    assert OptunaRun(with_budget(spec, n_trials=4)).run() == EXIT_OK
    second = params_of(spec)[len(first) :]
    assert len(first) >= 2 and len(second) >= 2
    assert not set(first) & set(second), (first, second)


# ---------------------------------------------------------------------------------------------
# max_failed_trials


def test_failures_of_an_earlier_run_do_not_stop_a_rerun(tmp_path):
    spec = with_budget(tiny_spec(tmp_path), n_trials=2, max_failed_trials=0)
    assert work(failing(spec)) == EXIT_FAILED
    # The cause is fixed (48 splits into 3 heads); the limit counts this run's failures only.
    fixed = dataclasses.replace(
        failing(spec),
        model=dataclasses.replace(spec.model, config=tiny_gpt2_config(n_positions=32, n_embd=48)),
    )
    assert work(fixed) == EXIT_OK
    states = [t.state for t in optuna.load_study(study_name="tiny", storage=spec.storage).trials]
    assert states == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]


def test_a_timeout_budget_alone_still_has_a_failure_limit(tmp_path):
    spec = failing(with_budget(tiny_spec(tmp_path), timeout_s=600))
    # Without a default limit this fails trials until the deadline (hundreds of them).
    assert work(spec, deadline=time.time() + 600) == EXIT_FAILED
    trials = optuna.load_study(study_name="tiny", storage=spec.storage).trials
    assert len(trials) == FAILURES_PER_WORKER + 1
    assert all(t.state == TrialState.FAIL for t in trials)


@pytest.mark.slow
def test_the_failure_limit_holds_exactly_across_workers(tmp_path, capsys):
    # Three workers, no failure tolerated: all three used to start a trial at once and all
    # three failed. A trial now starts only if the failures so far plus the running trials
    # stay within the limit, so one trial fails and the run stops.
    spec = failing(with_budget(tiny_spec(tmp_path, workers=3), n_trials=9, max_failed_trials=0))
    assert OptunaRun(spec).run() == EXIT_FAILED
    captured = capsys.readouterr()
    assert "stops at 1 failed" in captured.out  # the header says what happens
    assert "1 trials failed in this run, more than budget.max_failed_trials=0" in captured.err
    trials = optuna.load_study(study_name="tiny", storage=spec.storage).trials
    assert [t.state for t in trials if t.state != TrialState.WAITING] == [TrialState.FAIL]
