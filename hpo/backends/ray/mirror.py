"""Every Ray Tune trial, recorded truthfully in the study's Optuna storage.

Ray's own OptunaSearch tells a trial that the scheduler stopped early as COMPLETE with its
truncated value, which misleads both the sampler and anyone reading the study. This callback
runs in the Tune driver and writes each trial through optuna's storage API instead:

- params (with the study's distributions), at the trial's start;
- intermediate values, keyed by the trainer's global step;
- the final state: COMPLETE when the trainable ran to its end, PRUNED when the scheduler
  (or the time budget) stopped it first, FAIL when it raised (the reason in a user attr);
- the Ray trial id in a user attr, so a restored experiment continues its trials instead of
  duplicating them.

So `hpo status/best/export` and optuna-dashboard show a Ray study exactly like an Optuna one.

`Trainer.hyperparameter_search(backend="ray")` writes its Ray trials into optuna on its own
(trainer/search_ray.py, `record_in_optuna`), after the Tuner has finished. This mirror does
not reuse it: it must write while trials run (the live view, a restore that continues the same
optuna trials, a stopped driver's requeue), and it decides a trial's state from what Tune
reports (a scheduler's stop, the time budget), where that one infers it from the last step.
Nor can that one reuse this: trainer never imports hpo (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ray.tune import Callback

from hpo.attrs import (
    BEST_CHECKPOINT_ATTR,
    FAIL_REASON_ATTR,
    FINAL_PARAMS_ATTR,
    OUTPUT_DIR_ATTR,
    PARAM_HISTORY_ATTR,
    RAY_FAILURES_ATTR,
    RAY_TRIAL_ID_ATTR,
    RAY_TRIAL_PATH_ATTR,
    STEP_KEY,
    STOPPED_BY_ATTR,
    STOPPED_BY_SCHEDULER,
    STOPPED_BY_TIME_BUDGET,
    TRAIN_METRICS_ATTR,
)
from hpo.backends.ray.stored_study import ensure_study
from hpo.backends.ray.trainable import ray_trial_output_dir
from hpo.backends.ray.tune_results import error_reason, is_number, jsonable, train_metrics

if TYPE_CHECKING:
    import optuna
    from ray.tune.experiment import Trial

logger = logging.getLogger(__name__)


class OptunaMirror(Callback):
    """A `ray.tune.Callback` that records Ray trials in an Optuna study.

    `distributions` maps each searched param name (as it appears in the Ray config) to its
    optuna distribution. Intermediate values are keyed by the step each result reports under
    `step_key` (the trainer's global step; Tune's own iteration count when a result has
    none). `max_steps` lets a trial that the scheduler stopped exactly at its last step count
    as COMPLETE. `time_budget_s` is the Tuner's, so that trials it cuts short are told apart
    from trials of an interrupted run (both end TERMINATED in Tune).
    """

    def __init__(
        self,
        storage_url: str,
        study_name: str,
        *,
        metrics: Sequence[str],
        directions: Sequence[str],
        distributions: Mapping[str, optuna.distributions.BaseDistribution],
        space_function: str | None = None,
        max_steps: int | None = None,
        step_key: str = STEP_KEY,
        time_budget_s: float | None = None,
        output_dir: str | None = None,
    ) -> None:
        self.storage_url = storage_url
        self.study_name = study_name
        self.metrics = tuple(metrics)
        self.directions = tuple(directions)
        self.distributions = dict(distributions)
        # A Python space's distributions are known per trial only: replayed from its config.
        self.space_function = space_function
        self.max_steps = max_steps
        self.step_key = step_key
        self.time_budget_s = time_budget_s
        self.output_dir = output_dir  # training.output_dir: each trial's folder is under it
        self._started_at = time.monotonic()
        self._storage: optuna.storages.BaseStorage | None = None
        self._study_id: int | None = None
        self._optuna_ids: dict[str, int] = {}  # ray trial id -> optuna trial id
        self._finished: set[str] = set()  # ray trial ids whose optuna trial is final
        self._stopped_early: set[str] = set()  # ray trial ids the scheduler stopped
        self._last_config: dict[str, dict[str, Any]] = {}  # for PBT mutations
        self._pending_changes: dict[str, dict[str, Any]] = {}  # mutated, not yet evaluated
        self._best: dict[str, tuple[float, str]] = {}  # ray trial id -> (score, ckpt path)

    # Tune pickles the callbacks with the experiment (Tuner.restore unpickles them): keep the
    # database connection out, it is reopened in setup().
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_storage"] = None
        state["_study_id"] = None
        return state

    @property
    def storage(self) -> optuna.storages.BaseStorage:
        if self._storage is None:
            self._connect()
        assert self._storage is not None
        return self._storage

    @property
    def study_id(self) -> int:
        if self._study_id is None:
            self._connect()
        assert self._study_id is not None
        return self._study_id

    def setup(self, **info: Any) -> None:  # type: ignore[override]  # Tune passes keywords only
        self._started_at = time.monotonic()
        self._connect()

    def _connect(self) -> None:
        from hpo.storage.rdb import open_storage

        self._storage = open_storage(self.storage_url)
        self._study_id = ensure_study(self._storage, self.study_name, self.directions)
        self._load_trial_map()

    def _load_trial_map(self) -> None:
        """Rebuild ray id -> optuna id from the storage, so a restore reuses the trials.

        A Ray trial whose run was stopped has two optuna trials: the stopped one (FAIL) and
        its WAITING copy (`stored_study.requeue_stopped_trials`); the newest is the one that continues.
        """
        storage, study_id = self.storage, self.study_id
        for frozen in storage.get_all_trials(study_id, deepcopy=False):  # oldest first
            ray_id = frozen.user_attrs.get(RAY_TRIAL_ID_ATTR)
            if ray_id is None:
                continue
            optuna_id = storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number)
            self._optuna_ids[ray_id] = optuna_id
            if frozen.state.is_finished():
                self._finished.add(ray_id)
            else:
                self._finished.discard(ray_id)

    def _continue(self, ray_id: str) -> None:
        """A re-queued (WAITING) copy runs again: mark it RUNNING (a no-op when it is)."""
        from optuna.trial import TrialState

        optuna_id = self._optuna_ids[ray_id]
        if self.storage.get_trial(optuna_id).state == TrialState.WAITING:
            self.storage.set_trial_state_values(optuna_id, TrialState.RUNNING)

    # --- Tune hooks -------------------------------------------------------------------

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any):
        if trial.trial_id in self._finished:
            return
        if trial.trial_id not in self._optuna_ids:
            self._create(trial)
        else:
            self._continue(trial.trial_id)
            self._note_config_change(trial)

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict, **info: Any
    ):
        ray_id = trial.trial_id
        if ray_id in self._finished:
            return
        if ray_id not in self._optuna_ids:  # a restore that started before setup saw it
            self._create(trial)
        self._continue(ray_id)
        optuna_id = self._optuna_ids[ray_id]
        step = self._step_of(result)
        # Optuna keeps intermediate values for single-objective studies only.
        value = result.get(self.metrics[0])
        if len(self.metrics) == 1 and step is not None and is_number(value):
            self.storage.set_trial_intermediate_value(optuna_id, int(step), float(value))
        # The result's own config: a PBT scheduler may already have mutated trial.config in
        # answer to this very result, before callbacks see it.
        self._note_config_change(trial, result.get("config"))
        if ray_id in self._pending_changes:
            self._append_history(ray_id, step)
        # Tune marks a result `done` when the scheduler or a stopper decides to stop the
        # trial; a trainable that returns on its own ends with a result callbacks never see.
        if result.get("done"):
            self._stopped_early.add(ray_id)

    def on_checkpoint(
        self, iteration: int, trials: list[Trial], trial: Trial, checkpoint: Any, **info: Any
    ):
        value = trial.last_result.get(self.metrics[0]) if trial.last_result else None
        if not is_number(value) or trial.trial_id in self._finished:
            return
        score = float(value) if self.directions[0] == "minimize" else -float(value)
        best = self._best.get(trial.trial_id)
        if best is None or score <= best[0]:
            self._best[trial.trial_id] = (score, checkpoint.path)
            optuna_id = self._optuna_ids.get(trial.trial_id)
            if optuna_id is not None:
                self.storage.set_trial_user_attr(optuna_id, BEST_CHECKPOINT_ATTR, checkpoint.path)

    def on_trial_recover(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any):
        optuna_id = self._optuna_ids.get(trial.trial_id)
        if optuna_id is not None:
            self.storage.set_trial_user_attr(optuna_id, RAY_FAILURES_ATTR, trial.num_failures)

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any):
        from optuna.trial import TrialState

        ray_id = trial.trial_id
        if ray_id in self._finished or ray_id not in self._optuna_ids:
            return
        result = trial.last_result or {}
        values = [result.get(metric) for metric in self.metrics]
        if ray_id in self._stopped_early and not self._reached_max_steps(result):
            self._finish_pruned(trial, stopped_by=STOPPED_BY_SCHEDULER)
        elif all(is_number(v) for v in values):
            self._finish(trial, TrialState.COMPLETE, [float(v) for v in values])  # type: ignore[arg-type]  # all numbers: checked above
        else:
            missing = [m for m, v in zip(self.metrics, values, strict=True) if not is_number(v)]
            self._fail(trial, f"the trial ended without a finite value of {', '.join(missing)}")

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any):
        if trial.trial_id in self._finished or trial.trial_id not in self._optuna_ids:
            return
        self._fail(trial, error_reason(trial))

    def on_experiment_end(self, trials: list[Trial], **info: Any):
        """Trials the time budget cut short get no on_trial_complete: record them PRUNED.

        Tune also marks the running trials TERMINATED when the driver is interrupted
        (Ctrl-C, a crash), after saving them as running for a restore; those stay RUNNING in
        the storage so that the restore continues the same optuna trials.
        """
        budget_spent = self.time_budget_s is not None and (
            time.monotonic() - self._started_at >= self.time_budget_s - 1.0
        )
        for trial in trials:
            if trial.trial_id in self._finished or trial.trial_id not in self._optuna_ids:
                continue
            if trial.status == "ERROR":
                self._fail(trial, error_reason(trial))
            elif trial.status == "TERMINATED" and budget_spent:
                if self._reached_max_steps(trial.last_result or {}):
                    self.on_trial_complete(0, trials, trial)
                else:
                    self._finish_pruned(trial, stopped_by=STOPPED_BY_TIME_BUDGET)

    # --- writes ------------------------------------------------------------------------

    def _create(self, trial: Trial) -> None:
        storage = self.storage
        optuna_id = storage.create_new_trial(self.study_id)
        for name, distribution in self._distributions_of(trial.config).items():
            if name not in trial.config:  # a conditional param this trial does not have
                continue
            value = trial.config[name]
            storage.set_trial_param(
                optuna_id, name, distribution.to_internal_repr(value), distribution
            )
        storage.set_trial_user_attr(optuna_id, RAY_TRIAL_ID_ATTR, trial.trial_id)
        root = getattr(self, "output_dir", None)  # absent in a mirror pickled by older hpo
        if root is not None:
            folder = ray_trial_output_dir(root, trial.trial_id)
            storage.set_trial_user_attr(optuna_id, OUTPUT_DIR_ATTR, str(folder))
        if trial.path:
            storage.set_trial_user_attr(optuna_id, RAY_TRIAL_PATH_ATTR, str(trial.path))
        self._optuna_ids[trial.trial_id] = optuna_id
        self._last_config[trial.trial_id] = self._searched(trial.config)

    def _note_config_change(self, trial: Trial, config: Mapping[str, Any] | None = None) -> None:
        """PBT and PB2 mutate a running trial's config: keep the history in user attrs.

        Optuna params cannot change once set, so the params stay the trial's starting point;
        `final_params` is what it ran with last, and `param_history` lists each change with
        the step of the first evaluation made under it (None: the trial ended before one).
        """
        current = self._searched(trial.config if config is None else config)
        previous = self._last_config.get(trial.trial_id)
        self._last_config[trial.trial_id] = current
        if previous is None or current == previous:
            return
        optuna_id = self._optuna_ids[trial.trial_id]
        self.storage.set_trial_user_attr(optuna_id, FINAL_PARAMS_ATTR, jsonable(current))
        if trial.trial_id in self._pending_changes:  # changed twice without an evaluation
            self._append_history(trial.trial_id, None)
        self._pending_changes[trial.trial_id] = current

    def _append_history(self, ray_id: str, step: int | None) -> None:
        params = self._pending_changes.pop(ray_id)
        optuna_id = self._optuna_ids[ray_id]
        frozen = self.storage.get_trial(optuna_id)
        history = list(frozen.user_attrs.get(PARAM_HISTORY_ATTR, []))
        history.append({"step": step, "params": jsonable(params)})
        self.storage.set_trial_user_attr(optuna_id, PARAM_HISTORY_ATTR, history)

    def _finish(self, trial: Trial, state: optuna.trial.TrialState, values: list[float] | None):
        optuna_id = self._optuna_ids[trial.trial_id]
        if trial.trial_id in self._pending_changes:
            self._append_history(trial.trial_id, None)
        if trial.last_result:
            self.storage.set_trial_user_attr(
                optuna_id, TRAIN_METRICS_ATTR, train_metrics(trial.last_result)
            )
        if trial.trial_id not in self._best and trial.checkpoint is not None:
            # No scored checkpoint seen (e.g. only restored ones): the newest is the best known.
            self.storage.set_trial_user_attr(optuna_id, BEST_CHECKPOINT_ATTR, trial.checkpoint.path)
        self.storage.set_trial_state_values(optuna_id, state, values)
        self._finished.add(trial.trial_id)

    def _finish_pruned(self, trial: Trial, stopped_by: str) -> None:
        from optuna.trial import TrialState

        optuna_id = self._optuna_ids[trial.trial_id]
        self.storage.set_trial_user_attr(optuna_id, STOPPED_BY_ATTR, stopped_by)
        # As optuna's own tell() does: a pruned trial's value is its last intermediate value.
        values = None
        if len(self.metrics) == 1:
            intermediate = self.storage.get_trial(optuna_id).intermediate_values
            if intermediate:
                values = [intermediate[max(intermediate)]]
        self._finish(trial, TrialState.PRUNED, values)

    def _fail(self, trial: Trial, reason: str) -> None:
        from optuna.trial import TrialState

        from hpo.storage.urls import scrub_passwords

        optuna_id = self._optuna_ids[trial.trial_id]
        reason = scrub_passwords(reason, self.storage_url)
        self.storage.set_trial_user_attr(optuna_id, FAIL_REASON_ATTR, reason)
        self._finish(trial, TrialState.FAIL, None)

    # --- reading results ---------------------------------------------------------------

    def _searched(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return {name: config[name] for name in self._distributions_of(config) if name in config}

    def _distributions_of(
        self, config: Mapping[str, Any]
    ) -> Mapping[str, optuna.distributions.BaseDistribution]:
        """The study's distributions, or under a Python space, those its function suggests
        from for this config (the config is the suggested params: `python_space.SpaceFunction`)."""
        if getattr(self, "space_function", None) is None:  # absent in an older pickled mirror
            return self.distributions
        from hpo.search.python_space import replay, suggested_params

        return replay(self.space_function, suggested_params(config))[1]  # type: ignore[arg-type]  # set: checked above

    def _step_of(self, result: Mapping[str, Any]) -> int | None:
        step = result.get(self.step_key, result.get("training_iteration"))
        return int(step) if is_number(step) else None

    def _reached_max_steps(self, result: Mapping[str, Any]) -> bool:
        if self.max_steps is None:
            return False
        step = self._step_of(result)
        return step is not None and step >= self.max_steps
