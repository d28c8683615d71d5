"""`backend: ray` end to end on a real local Ray: our Trainer (a tiny GPT-2) as the trainable,
the study's scheduler and search, and every assertion read back from the Optuna storage."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from helpers import ray_schedulers
from helpers.study_files import tiny_gpt2_config
from optuna.trial import TrialState

from hpo.attrs import (
    BEST_CHECKPOINT_ATTR,
    FINAL_PARAMS_ATTR,
    PARAM_HISTORY_ATTR,
    RAY_TRIAL_PATH_ATTR,
)

tune = pytest.importorskip("ray.tune")
cloudpickle = pytest.importorskip("ray.cloudpickle")
cloudpickle.register_pickle_by_value(sys.modules[__name__])

MAX_STEPS = 6
EVAL_STEPS = 2


def ray_study(tmp_path: Path, **changes) -> dict:
    study = {
        "name": "ray-unit",
        "storage": f"sqlite:///{tmp_path / 'study.db'}",
        "backend": "ray",
        "objective": {"metric": "eval_loss", "direction": "minimize"},
        "budget": {"n_trials": 3},
        "workers": 1,
        "sampler": {"name": "random", "seed": 1},  # draws 3e-2, then 1e-6 twice
        "scheduler": {
            "name": "asha",
            "time_attr": "training_iteration",
            "grace_period": 1,
            "max_t": MAX_STEPS // EVAL_STEPS,
            "reduction_factor": 2,
        },
        "ray": {"max_concurrent_trials": 1, "resources_per_trial": {"cpu": 1}},
        "model": {
            "config": tiny_gpt2_config(n_positions=32, n_embd=16, n_layer=1),
            "task": "causal-lm",
        },
        "data": {
            "corpus": "pydoc-topics",
            "tokenizer": "bytes",
            "block_size": 32,
            "max_eval_samples": 32,
        },
        "training": {
            "output_dir": str(tmp_path / "runs"),
            "max_steps": MAX_STEPS,
            "per_device_train_batch_size": 8,
            "per_device_eval_batch_size": 32,
            "eval_strategy": "steps",
            "eval_steps": EVAL_STEPS,
            "logging_steps": 1,
            "lr_scheduler_type": "constant",
        },
        "space": {"learning_rate": {"type": "categorical", "choices": [3e-2, 1e-6]}},
    }
    study.update(changes)
    return study


def load_study(tmp_path: Path, study: dict):
    from hpo.study import load

    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return load(path)


def stored_trials(spec) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=spec.name, storage=spec.storage).get_trials()


@pytest.mark.slow
def test_asha_study_records_true_states_at_trainer_steps(ray_local, tmp_path):
    from hpo.backends.ray.tuner import run_study

    spec = load_study(tmp_path, ray_study(tmp_path))
    assert run_study(spec) == 0

    trials = stored_trials(spec)
    assert len(trials) == 3
    eval_points = set(range(EVAL_STEPS, MAX_STEPS + 1, EVAL_STEPS))
    for trial in trials:
        assert trial.params["learning_rate"] in (3e-2, 1e-6)
        # Intermediate values at the trainer's global steps, not Tune's iteration count.
        assert set(trial.intermediate_values) <= eval_points
        last_step = max(trial.intermediate_values)
        if trial.state == TrialState.COMPLETE:
            assert last_step == MAX_STEPS
            assert trial.value == pytest.approx(trial.intermediate_values[MAX_STEPS])
            assert Path(trial.user_attrs[BEST_CHECKPOINT_ATTR]).is_dir()
        else:
            assert trial.state == TrialState.PRUNED
            assert last_step < MAX_STEPS
    states = sorted(t.state.name for t in trials)
    # With trials run one at a time, a 1e-6 learning rate (no progress) after a 3e-2 one is
    # stopped at ASHA's first rung: the scheduler's stop is PRUNED in the storage.
    assert "COMPLETE" in states and "PRUNED" in states, states

    # A second `hpo run` restores the finished experiment: nothing runs, nothing is added.
    assert run_study(spec) == 0
    assert len(stored_trials(spec)) == 3


@pytest.mark.parametrize(
    ("scheduler", "class_name"),
    [
        ({"name": "asha", "grace_period": 1, "max_t": 3}, "AsyncHyperBandScheduler"),
        ({"name": "hyperband", "max_t": 3}, "HyperBandScheduler"),
        ({"name": "median", "grace_period": 1}, "MedianStoppingRule"),
        ({"name": "pbt", "perturbation_interval": 1}, "PopulationBasedTraining"),
        ({"name": "pb2", "perturbation_interval": 1}, "PB2"),
    ],
)
def test_each_scheduler_is_built_for_the_objective(tmp_path, scheduler, class_name):
    from hpo.backends.ray.tuner import build_scheduler

    study = ray_study(
        tmp_path, scheduler=scheduler, objective={"metric": "loss", "direction": "maximize"}
    )
    study["space"] = {
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "model.n_layer": {"type": "int", "low": 1, "high": 2},
    }
    built = build_scheduler(load_study(tmp_path, study))
    assert type(built).__name__ == class_name
    assert built.metric == "eval_loss"  # the name the trainer reports
    assert ray_schedulers.scheduler_mode(built) == "max"
    if scheduler["name"] == "pbt":
        # A population trial resumes another's checkpoint: the architecture cannot mutate.
        assert set(ray_schedulers.pbt_mutations(built)) == {"learning_rate"}
    if scheduler["name"] == "pb2":
        assert set(ray_schedulers.pb2_bounds(built)) == {"learning_rate"}


def report_curve(config):
    for iteration in range(1, 5):
        tune.report({"step": 10 * iteration, "eval_loss": config["x"] + 1.0 / iteration})


@pytest.mark.slow
def test_tpe_search_tells_its_sampler_pruned_for_scheduler_stops(ray_local, tmp_path):
    from optuna.distributions import FloatDistribution

    from hpo.backends.ray.search import TruthfulOptunaSearch

    # The searcher's own optuna study lives here: what its sampler was told is read back.
    told = optuna.storages.InMemoryStorage()
    searcher = TruthfulOptunaSearch(
        space={"x": FloatDistribution(0.0, 10.0)},
        metric="eval_loss",
        mode="min",
        sampler=optuna.samplers.TPESampler(seed=1),
        storage=told,
        study_name="tpe",
        max_steps=40,
    )
    asha = tune.schedulers.ASHAScheduler(
        time_attr="training_iteration", max_t=4, grace_period=1, reduction_factor=2
    )
    tune.Tuner(
        report_curve,
        tune_config=tune.TuneConfig(
            metric="eval_loss",
            mode="min",
            search_alg=searcher,
            scheduler=asha,
            num_samples=5,
            max_concurrent_trials=1,
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "ray"), verbose=0),
    ).fit()
    trials = optuna.load_study(study_name="tpe", storage=told).get_trials()
    assert len(trials) == 5
    for trial in trials:
        if trial.state == TrialState.PRUNED:
            # OptunaSearch would have told COMPLETE with this truncated value.
            assert len(trial.intermediate_values) < 3
        else:
            assert trial.state == TrialState.COMPLETE
            assert trial.value == pytest.approx(trial.params["x"] + 1.0 / 4)
    assert any(t.state == TrialState.PRUNED for t in trials)


@pytest.mark.slow
def test_pbt_exploit_resumes_from_the_checkpoint_with_the_mutated_learning_rate(
    ray_local, tmp_path
):
    from hpo.backends.ray.tuner import run_study

    study = ray_study(
        tmp_path,
        name="ray-pbt-unit",
        budget={"n_trials": 2},
        sampler={"name": "random", "seed": 1},  # 3e-2 and 1e-6
        scheduler={
            "name": "pbt",
            "time_attr": "training_iteration",
            # One exploit, at the second evaluation (step 4), when 1e-6 has clearly lost. At
            # every evaluation the worse trial would exploit the better one: a second exploit
            # of the same donor, mutated to the same rate, changes the lineage of the newest
            # checkpoint but not the config, so param_history cannot show it.
            "perturbation_interval": 2,
            "synch": True,  # both trials meet at step 4: the exploit is certain
            "quantile_fraction": 0.5,
            # The 1e-6 trial exploits the 3e-2 one and moves one place along this list
            # from 3e-2: its learning rate changes whichever way it moves.
            "resample_probability": 0.0,
            "hyperparam_mutations": {"learning_rate": [3e-2, 1e-2, 1e-6]},
        },
        ray={"max_concurrent_trials": 2, "resources_per_trial": {"cpu": 1}},
    )
    spec = load_study(tmp_path, study)
    assert run_study(spec) == 0

    trials = stored_trials(spec)
    assert len(trials) == 2
    mutated = [t for t in trials if t.user_attrs.get(PARAM_HISTORY_ATTR)]
    assert mutated, "PBT never exploited: no trial changed its config"
    for trial in trials:
        assert trial.state == TrialState.COMPLETE
        assert sorted(trial.intermediate_values) == [2, 4, 6]
    for trial in mutated:
        changes = trial.user_attrs[PARAM_HISTORY_ATTR]
        assert changes[-1]["params"] == trial.user_attrs[FINAL_PARAMS_ATTR]
        assert trial.user_attrs[BEST_CHECKPOINT_ATTR]
        last = changes[-1]
        if last["step"] is None:
            continue  # mutated at its last evaluation: nothing trained under it
        # The trial's newest checkpoint logs its lineage: the steps trained before the first
        # evaluation under the last mutation used the mutated learning rate (constant
        # schedule), not the rate saved in the donor's checkpoint it resumed from.
        folder = Path(trial.user_attrs[RAY_TRIAL_PATH_ATTR])
        states = [json.loads(p.read_text()) for p in folder.glob("checkpoint_*/trainer_state.json")]
        newest = max(states, key=lambda state: state["global_step"])
        rates = {
            row["step"]: row["learning_rate"]
            for row in newest["log_history"]
            if "learning_rate" in row
        }
        for step in range(last["step"] - EVAL_STEPS + 1, last["step"] + 1):
            assert rates[step] == pytest.approx(last["params"]["learning_rate"]), (changes, rates)


def test_a_resumed_run_trains_with_its_own_learning_rate_not_the_checkpoints(tmp_path):
    """What a PBT exploit does: resume another run's checkpoint with a mutated learning rate.
    Restoring the optimizer alone would bring the checkpoint's rate back."""
    from hpo.backends.objective import prepare, train_trial

    study = ray_study(tmp_path)
    study["training"]["save_total_limit"] = 10  # keep the step-2 checkpoint to resume from
    context = prepare(load_study(tmp_path, study))
    train_trial(context, {"learning_rate": 3e-2}, output_dir=tmp_path / "donor")
    donor_checkpoint = tmp_path / "donor" / "checkpoint-2"
    assert donor_checkpoint.is_dir()

    train_trial(
        context,
        {"learning_rate": 1e-3},
        output_dir=tmp_path / "mutated",
        resume_from_checkpoint=str(donor_checkpoint),
    )
    state = json.loads(
        (tmp_path / "mutated" / f"checkpoint-{MAX_STEPS}" / "trainer_state.json").read_text()
    )
    rates = {
        row["step"]: row["learning_rate"] for row in state["log_history"] if "learning_rate" in row
    }
    assert rates[2] == pytest.approx(3e-2)  # the donor's steps, inherited
    assert [rates[step] for step in range(3, MAX_STEPS + 1)] == pytest.approx(
        [1e-3] * (MAX_STEPS - 2)
    )


class InterruptOnce(tune.Callback):
    """Ctrl-C in the driver once the second trial has reported (what a user does)."""

    def __init__(self, flag):
        self.flag = flag

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if len(trials) >= 2 and trial is trials[1] and not self.flag.exists():
            self.flag.touch()
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.slow
def test_hpo_run_again_restores_an_interrupted_study_without_duplicates(ray_local, tmp_path):
    from hpo.backends.ray.tuner import experiment_path, run_study

    spec = load_study(tmp_path, ray_study(tmp_path, budget={"n_trials": 2}))
    assert run_study(spec, callbacks=[InterruptOnce(tmp_path / "interrupted")]) == 130
    before = {t.number: t for t in stored_trials(spec)}
    # The storage says what happened: the interrupted trial failed as such, and is queued.
    assert TrialState.RUNNING not in [t.state for t in before.values()]
    (stopped,) = [t for t in before.values() if t.state == TrialState.FAIL]
    assert stopped.user_attrs["fail_reason"] == "interrupted"
    (queued,) = [t for t in before.values() if t.state == TrialState.WAITING]
    assert queued.system_attrs["failed_trial"] == stopped.number

    # `hpo run` again: the experiment is restored (Tuner.can_restore), not started over.
    assert tune.Tuner.can_restore(experiment_path(spec))
    assert run_study(spec) == 0
    after = stored_trials(spec)
    assert sorted(t.number for t in after) == sorted(before)  # the same trials, no duplicates
    for trial in after:
        if trial.number == stopped.number:
            continue
        assert trial.state in (TrialState.COMPLETE, TrialState.PRUNED)
        assert trial.params == before[trial.number].params


class KillWorkerOnce(tune.Callback):
    """SIGKILL the trial's worker process at its second report (a real crash), when Tune
    holds the checkpoint of the first."""

    def __init__(self, flag):
        self.flag = flag

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result["training_iteration"] == 2 and not self.flag.exists():
            self.flag.touch()
            os.kill(result["pid"], signal.SIGKILL)


@pytest.mark.slow
def test_a_crashed_trial_is_retried_from_its_checkpoint(ray_local, tmp_path):
    from hpo.attrs import RAY_FAILURES_ATTR, RAY_TRIAL_ID_ATTR
    from hpo.backends.ray.tuner import run_study

    study = ray_study(
        tmp_path,
        budget={"n_trials": 1},
        scheduler={"name": "asha", "max_t": MAX_STEPS, "grace_period": MAX_STEPS},
        ray={"max_concurrent_trials": 1, "max_failures": 1},
        keep="all",  # the trainer's own checkpoints below are the evidence (no retention)
    )
    spec = load_study(tmp_path, study)
    assert run_study(spec, callbacks=[KillWorkerOnce(tmp_path / "killed")]) == 0

    (trial,) = stored_trials(spec)
    assert trial.state == TrialState.COMPLETE
    assert trial.user_attrs[RAY_FAILURES_ATTR] == 1
    assert sorted(trial.intermediate_values) == [2, 4, 6]
    # The retry wrote its checkpoints beside the first attempt's, starting after the
    # checkpoint Tune handed back: it resumed, it did not train from step 0 again.
    trial_dir = tmp_path / "runs" / f"ray-{trial.user_attrs[RAY_TRIAL_ID_ATTR]}"
    (retry_dir,) = trial_dir.glob("resumed-*")
    steps = sorted(int(p.name.split("-")[1]) for p in retry_dir.glob("checkpoint-*"))
    assert steps and steps[0] > EVAL_STEPS, steps


@pytest.mark.slow
def test_issue_asha_example_stops_trials_at_step_40(ray_local, tmp_path):
    # grace_period 40 with max_steps 160 and eval_steps 40: counted in reports (4 per trial),
    # ASHA never acted and all 6 trials completed. Counted in steps, its first rung is step 40.
    from hpo.backends.ray.tuner import run_study

    study = ray_study(
        tmp_path,
        budget={"n_trials": 6},
        scheduler={"name": "asha", "grace_period": 40, "reduction_factor": 3},
    )
    study["training"].update(max_steps=160, eval_steps=40, logging_steps=40)
    spec = load_study(tmp_path, study)
    assert spec.scheduler.options["time_attr"] == "step"
    assert run_study(spec) == 0

    trials = stored_trials(spec)
    assert len(trials) == 6
    stopped = [t for t in trials if t.state == TrialState.PRUNED]
    assert stopped, [(t.params, t.state.name) for t in trials]
    for trial in stopped:
        # Stopped at a rung (step 40 or 120), never after the run's last step.
        assert max(trial.intermediate_values) in (40, 80, 120)
