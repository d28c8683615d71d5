"""The mirror records real Ray Tune trials in an Optuna storage with their true states.

Each test runs a real local Ray Tune experiment (tiny function trainables reporting at
"global steps" 10, 20, ...) and asserts by reading the SQLite storage back through optuna.
"""

from __future__ import annotations

import sys

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from hpo.attrs import (
    BEST_CHECKPOINT_ATTR,
    FAIL_REASON_ATTR,
    RAY_TRIAL_ID_ATTR,
    STEP_KEY,
    STOPPED_BY_ATTR,
)
from hpo.backends.ray.mirror import OptunaMirror

tune = pytest.importorskip("ray.tune")
cloudpickle = pytest.importorskip("ray.cloudpickle")
# Ray workers cannot import this test module by name: ship its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

STEPS = (10, 20, 30, 40)


def curve_trainable(config):
    """Loss falls with the steps; a larger `x` is a worse trial. a negative `x` (the best trial so far) raises at step 20."""
    for step in STEPS:
        if config["x"] < 0 and step == 20:
            raise ValueError("boom at step 20")
        tune.report({STEP_KEY: step, "eval_loss": config["x"] + 10.0 / step})


def _mirror(url: str, name: str = "mirrored") -> OptunaMirror:
    return OptunaMirror(
        url,
        name,
        metrics=["eval_loss"],
        directions=["minimize"],
        distributions={"x": CategoricalDistribution([1.0, 4.0, -1.0])},
        max_steps=STEPS[-1],
    )


def _tuner(
    tmp_path,
    mirror,
    *,
    scheduler=None,
    trainable=curve_trainable,
    extra_callbacks=(),
    **tune_config,
):
    return tune.Tuner(
        trainable,
        param_space={"x": tune.grid_search([1.0, 4.0, -1.0])},
        tune_config=tune.TuneConfig(
            metric="eval_loss",
            mode="min",
            scheduler=scheduler,
            max_concurrent_trials=1,
            **tune_config,
        ),
        run_config=tune.RunConfig(
            name="exp",
            storage_path=str(tmp_path / "ray"),
            callbacks=[mirror, *extra_callbacks],
            verbose=0,
        ),
    )


def _trials(url: str, name: str = "mirrored") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)


def test_states_params_and_intermediate_values_at_global_steps(ray_local, tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    # With the trials run one at a time, ASHA's first rung (step 10) holds x=1 when x=4
    # arrives, and stops x=4 there: it must be PRUNED, not COMPLETE as OptunaSearch has it.
    asha = tune.schedulers.ASHAScheduler(
        time_attr=STEP_KEY, max_t=40, grace_period=10, reduction_factor=2
    )
    _tuner(tmp_path, _mirror(url), scheduler=asha).fit()

    by_x = {t.params["x"]: t for t in _trials(url)}
    assert sorted(by_x) == [-1.0, 1.0, 4.0]

    finished = by_x[1.0]
    assert finished.state == TrialState.COMPLETE
    assert finished.value == pytest.approx(1.0 + 10.0 / 40)
    assert sorted(finished.intermediate_values) == list(STEPS)
    assert finished.intermediate_values[20] == pytest.approx(1.5)
    assert finished.distributions["x"] == CategoricalDistribution([1.0, 4.0, -1.0])

    pruned = by_x[4.0]
    assert pruned.state == TrialState.PRUNED
    assert max(pruned.intermediate_values) < STEPS[-1]
    assert pruned.user_attrs[STOPPED_BY_ATTR] == "scheduler"
    assert pruned.value == pytest.approx(
        pruned.intermediate_values[max(pruned.intermediate_values)]
    )

    failed = by_x[-1.0]
    assert failed.state == TrialState.FAIL
    assert "boom at step 20" in failed.user_attrs[FAIL_REASON_ATTR]
    assert sorted(failed.intermediate_values) == [10]

    assert len({t.user_attrs[RAY_TRIAL_ID_ATTR] for t in by_x.values()}) == 3


class CrashOnce(tune.Callback):
    """Raises in the driver once, mid-trial: the experiment stops as if the driver died."""

    def __init__(self, flag):
        self.flag = flag

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if trial.config["x"] == 4.0 and result[STEP_KEY] == 20 and not self.flag.exists():
            self.flag.touch()
            raise RuntimeError("driver crash")


def test_restore_continues_interrupted_trials_without_duplicates(ray_local, tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    tuner = _tuner(tmp_path, _mirror(url), extra_callbacks=[CrashOnce(tmp_path / "crashed")])
    with pytest.raises(Exception, match="driver crash"):
        tuner.fit()
    before = {t.params["x"]: t for t in _trials(url)}
    assert before[4.0].state == TrialState.RUNNING
    assert sorted(before[4.0].intermediate_values) == [10, 20]

    path = str(tmp_path / "ray" / "exp")
    assert tune.Tuner.can_restore(path)
    tune.Tuner.restore(path, curve_trainable, resume_errored=True).fit()

    after = _trials(url)
    assert len(after) == 3
    by_x = {t.params["x"]: t for t in after}
    assert by_x[4.0].state == TrialState.COMPLETE
    assert by_x[4.0].number == before[4.0].number
    assert sorted(by_x[4.0].intermediate_values) == list(STEPS)
    assert by_x[-1.0].state == TrialState.FAIL


def checkpointing_trainable(config):
    import os
    import tempfile

    for step in STEPS:
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "step.txt"), "w") as handle:
                handle.write(str(step))
            loss = 5.0 - step / 10.0 if step < 30 else 4.0  # best at step 20
            tune.report(
                {STEP_KEY: step, "eval_loss": loss},
                checkpoint=tune.Checkpoint.from_directory(folder),
            )


def test_best_checkpoint_is_the_best_evaluation(ray_local, tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    mirror = OptunaMirror(
        url,
        "mirrored",
        metrics=["eval_loss"],
        directions=["minimize"],
        distributions={"x": FloatDistribution(0.0, 1.0)},
        max_steps=STEPS[-1],
    )
    tuner = tune.Tuner(
        checkpointing_trainable,
        param_space={"x": 0.5},
        tune_config=tune.TuneConfig(metric="eval_loss", mode="min"),
        run_config=tune.RunConfig(
            name="exp", storage_path=str(tmp_path / "ray"), callbacks=[mirror], verbose=0
        ),
    )
    tuner.fit()
    (trial,) = _trials(url)
    assert trial.state == TrialState.COMPLETE
    assert trial.value == pytest.approx(4.0)
    with open(f"{trial.user_attrs[BEST_CHECKPOINT_ATTR]}/step.txt") as handle:
        assert handle.read() == "20"


def slow_trainable(config):
    """Reports every 0.2 s; each report blocks until the driver asks for the next one."""
    import time

    for step in range(1, 200):
        time.sleep(0.2)
        tune.report({STEP_KEY: step, "eval_loss": 1.0 / step})


TIME_BUDGET_S = 2


class TimeBudgetFromFirstResult(tune.stopper.TimeoutStopper):
    """Tune's time budget (TuneConfig(time_budget_s=...) is this TimeoutStopper) with its clock
    started at the first result instead of the experiment's start.

    With Tune's own clock the budget can run out before a slow Ray worker has reported at
    all, leaving nothing to mirror. Tune calls the stopper on each result in the driver, just
    before the callbacks see it, and `stop_all` after each event: the mirror has recorded the
    first result before the budget starts, and the stop comes TIME_BUDGET_S later, long
    before the trainable's 199 reports (0.2 s each) could end the trial on its own.
    """

    def __init__(self, timeout):
        super().__init__(timeout)
        self.first_result_seen = False

    def __call__(self, trial_id, result):
        self.first_result_seen = True
        return super().__call__(trial_id, result)

    def stop_all(self):
        return self.first_result_seen and super().stop_all()


def test_a_trial_cut_short_by_the_time_budget_is_pruned(ray_local, tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    mirror = OptunaMirror(
        url,
        "mirrored",
        metrics=["eval_loss"],
        directions=["minimize"],
        distributions={},
        max_steps=199,
        time_budget_s=TIME_BUDGET_S,
    )
    tune.Tuner(
        slow_trainable,
        tune_config=tune.TuneConfig(metric="eval_loss", mode="min"),
        run_config=tune.RunConfig(
            name="exp",
            storage_path=str(tmp_path / "ray"),
            stop=TimeBudgetFromFirstResult(TIME_BUDGET_S),
            callbacks=[mirror],
            verbose=0,
        ),
    ).fit()
    (trial,) = _trials(url)
    assert trial.state == TrialState.PRUNED
    assert trial.user_attrs[STOPPED_BY_ATTR] == "time_budget"
    assert 0 < max(trial.intermediate_values) < 199


def _running_ray_trial(url: str, name: str) -> int:
    """A study with one RUNNING trial that a Tune driver mirrored (it carries a Ray trial id)."""
    study = optuna.create_study(study_name=name, storage=url)
    trial = study.ask({"x": CategoricalDistribution([1.0, 4.0])})
    study._storage.set_trial_user_attr(trial._trial_id, RAY_TRIAL_ID_ATTR, "abc_00000")
    study._storage.set_trial_intermediate_value(trial._trial_id, 10, 1.5)
    return trial.number


def test_a_driver_killed_while_requeueing_leaves_one_copy_and_the_next_start_fails_the_trial(
    tmp_path, monkeypatch
):
    """SIGKILL between queueing the copy and failing the trial: the storage keeps the trial
    RUNNING beside its copy (never FAILED with no copy), and the next driver's requeue fails
    it without queueing a second copy."""
    import hpo.storage.rdb as rdb
    from hpo.backends.ray.stored_study import requeue_stopped_trials

    url = f"sqlite:///{tmp_path / 'killed.db'}"
    number = _running_ray_trial(url, "killed")

    class Killed(BaseException):
        pass

    def killed(*args, **kwargs):
        raise Killed

    with monkeypatch.context() as patched:
        patched.setattr(rdb, "fail_with_reason", killed)
        with pytest.raises(Killed):
            requeue_stopped_trials(url, "killed", "interrupted")
    trials = optuna.load_study(study_name="killed", storage=url).get_trials()
    assert [t.state for t in trials] == [TrialState.RUNNING, TrialState.WAITING]
    assert trials[1].system_attrs["retry_history"] == [number]

    assert requeue_stopped_trials(url, "killed", "the driver was gone") == [number]
    trials = optuna.load_study(study_name="killed", storage=url).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]
    assert trials[0].user_attrs[FAIL_REASON_ATTR] == "the driver was gone"
    copy = trials[1]
    assert copy.user_attrs[RAY_TRIAL_ID_ATTR] == "abc_00000"
    assert FAIL_REASON_ATTR not in copy.user_attrs
    assert copy.intermediate_values == {10: 1.5}
