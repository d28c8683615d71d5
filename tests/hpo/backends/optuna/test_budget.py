"""hpo.backends.optuna.budget: the study's trials counted by SQL on optuna's schema."""

from __future__ import annotations

import optuna
import pytest
from helpers.stored_studies import set_schema_revision
from optuna.trial import TrialState

from hpo.backends.optuna.budget import count_trials
from hpo.errors import HpoError
from hpo.storage.rdb import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_counts_by_state_match_what_optuna_stored(tmp_path):
    url = f"sqlite:///{tmp_path / 'budget.db'}"
    study = optuna.create_study(study_name="budget", storage=open_storage(url))
    for state in (TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL):
        trial = study.ask()
        study.tell(trial, 1.0 if state == TrialState.COMPLETE else None, state=state)
    study.ask()  # RUNNING
    counts = count_trials(study)
    assert (counts.complete, counts.pruned, counts.failed, counts.running) == (2, 1, 1, 1)
    assert counts.finished == 3


def test_a_schema_the_count_was_not_written_for_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'future.db'}"
    study = optuna.create_study(study_name="future", storage=open_storage(url))
    set_schema_revision(url, "v9.9.9.z")  # as a newer optuna would leave it
    with pytest.raises(HpoError, match="v9.9.9.z") as error:
        count_trials(study)
    assert "upgrade hpo" in str(error.value)
