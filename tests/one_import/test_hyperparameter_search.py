"""The one-import claim for a Transformers hyperparameter_search script (optuna backend)."""

from __future__ import annotations

import os

import pytest
from helpers.one_import import REPO, SCRIPTS, run_script, tagged_json

pytestmark = pytest.mark.slow  # each script runs twice, in fresh processes


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("hp_search")
    return {
        implementation: tagged_json(
            run_script("hyperparameter_search.py", implementation, workdir), "BEST_RUN"
        )
        for implementation in ("transformers", "ours")
    }


def test_both_return_transformers_best_run_with_the_same_fields(both):
    theirs, ours = both["transformers"], both["ours"]
    assert theirs["type"] == ours["type"] == "transformers.trainer_utils.BestRun"
    assert (
        theirs["fields"]
        == ours["fields"]
        == ["run_id", "objective", "hyperparameters", "run_summary"]
    )
    for run in (theirs, ours):
        assert run["run_id"].isdigit()
        assert isinstance(run["objective"], float)
        # hp_space's params and the one model_init suggested on the trial
        assert set(run["hyperparameters"]) == {
            "learning_rate",
            "per_device_train_batch_size",
            "n_layer",
        }


def test_both_run_every_trial_into_the_storage_and_prune(both):
    for implementation, run in both.items():
        assert len(run["states"]) == 4, implementation
        assert "PRUNED" in run["states"], implementation
        assert set(run["states"]) <= {"COMPLETE", "PRUNED"}, implementation
        # the best run is the best complete trial of the stored study
        assert run["states"][int(run["run_id"])] == "COMPLETE", implementation


def test_a_pruned_trial_writes_no_checkpoint_at_its_pruning_evaluation_in_both(tmp_path):
    # Both report to optuna and ask the pruner before saving: the evaluation that prunes a
    # trial leaves no checkpoint (nobody loads a pruned trial's weights); the earlier ones stay.
    path = os.pathsep.join([str(REPO), str(SCRIPTS)])  # the script imports `common`
    runs = {
        implementation: tagged_json(
            run_script("pruned_checkpoints.py", implementation, tmp_path, env={"PYTHONPATH": path}),
            "TRIALS",
        )
        for implementation in ("transformers", "ours")
    }
    completed = {
        "state": "COMPLETE",
        "steps": [2, 4, 6, 8],
        "checkpoints": ["checkpoint-2", "checkpoint-4", "checkpoint-6", "checkpoint-8"],
    }
    pruned = {"state": "PRUNED", "steps": [2, 4], "checkpoints": ["checkpoint-2"]}
    assert runs["transformers"] == [completed, pruned]
    assert runs["ours"] == runs["transformers"]
