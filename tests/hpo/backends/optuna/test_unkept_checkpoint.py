"""A trial that completes worse than the study's best writes no last checkpoint (keep: best).

Real trials of a tiny GPT-2 run through the worker against a SQLite study, with enqueued params
that make some trials clearly worse than others.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import optuna
import pytest
from helpers.study_files import tiny_spec

from hpo.attrs import FIRST_STEP_ATTR, LAST_CHECKPOINT_ATTR, RESUMED_FROM_ATTR
from hpo.backends import EXIT_OK
from hpo.backends.objective import prepare
from hpo.backends.optuna.requeue import fail_and_retry
from hpo.backends.optuna.shared_study import open_study
from hpo.backends.optuna.trial import train_optuna_trial
from hpo.backends.optuna.unkept_checkpoint import applies
from hpo.backends.optuna.worker import work
from hpo.spec import BudgetSpec
from hpo.storage.rdb import open_storage

POOR = {"learning_rate": 1e-4, "model.n_layer": 1}  # 8 steps at 1e-4 barely move the loss
GOOD = {"learning_rate": 1e-2, "model.n_layer": 2}


def run_poor_good_poor(spec) -> list[optuna.trial.FrozenTrial]:
    spec = dataclasses.replace(spec, budget=BudgetSpec(n_trials=3))
    study = open_study(spec, open_storage(spec.storage))
    for params in (POOR, GOOD, POOR):
        study.enqueue_trial(params)
    assert work(spec) == EXIT_OK
    return optuna.load_study(study_name=spec.name, storage=spec.storage).trials


def checkpoints(spec, number: int) -> list[str]:
    return sorted(
        p.name for p in (Path(spec.output_dir) / f"trial-{number:04d}").glob("checkpoint-*")
    )


@pytest.mark.parametrize("keep", ["best", "all"])
def test_a_trial_worse_than_the_best_skips_its_last_checkpoint_under_keep_best(tmp_path, keep):
    spec = dataclasses.replace(tiny_spec(tmp_path), keep=keep)
    trials = run_poor_good_poor(spec)
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    assert trials[1].value < trials[0].value == trials[2].value  # the premise of the params
    # Trial 0 had nothing to beat and trial 1 is the best: both keep their last checkpoint.
    for number in (0, 1):
        assert "checkpoint-8" in checkpoints(spec, number)
        assert trials[number].user_attrs[LAST_CHECKPOINT_ATTR].endswith("checkpoint-8")
    if keep == "best":
        # Trial 2 completes, worse than trial 1: retention would delete its checkpoints at
        # once, so the last one is never written; the storage names the one before.
        assert checkpoints(spec, 2) == ["checkpoint-4"]
        assert trials[2].user_attrs[LAST_CHECKPOINT_ATTR].endswith("checkpoint-4")
    else:
        assert "checkpoint-8" in checkpoints(spec, 2)


def test_the_skip_applies_only_where_the_last_evaluation_gives_the_value(tmp_path):
    ctx = prepare(tiny_spec(tmp_path))
    assert ctx.final_eval_dataset is None and applies(ctx)
    assert not applies(dataclasses.replace(ctx, spec=dataclasses.replace(ctx.spec, keep="all")))
    # With a final evaluation on the whole eval set (a study without max_eval_samples), the
    # value is known only after the last checkpoint has been written.
    assert not applies(dataclasses.replace(ctx, final_eval_dataset=ctx.eval_dataset))


def test_a_trial_cut_short_after_its_skipped_save_resumes_one_evaluation_earlier(tmp_path):
    # The window the skip opens: trained to the end, last checkpoint cancelled, not yet told.
    # A worker killed there leaves the trial RUNNING; its retry resumes from checkpoint-4 and
    # ends with the value the uninterrupted trial had.
    spec = dataclasses.replace(tiny_spec(tmp_path), budget=BudgetSpec(n_trials=2))
    storage = open_storage(spec.storage)
    study = open_study(spec, storage)
    study.enqueue_trial(GOOD)
    study.enqueue_trial(POOR)
    assert work(dataclasses.replace(spec, budget=BudgetSpec(n_trials=1))) == EXIT_OK
    trial = study.ask()  # POOR, worse than GOOD
    value = train_optuna_trial(prepare(spec), trial, threading.Event())
    assert checkpoints(spec, trial.number) == ["checkpoint-4"]
    assert fail_and_retry(study, trial._trial_id, "killed before the tell")

    assert work(spec) == EXIT_OK
    retry = optuna.load_study(study_name=spec.name, storage=spec.storage).trials[-1]
    assert retry.state.name == "COMPLETE"
    assert retry.user_attrs[RESUMED_FROM_ATTR].endswith("checkpoint-4")
    assert retry.user_attrs[FIRST_STEP_ATTR] == 5
    assert retry.value == value
