"""`Trainer.hyperparameter_search`: Transformers' signature and result on optuna or Ray Tune.

It lives in `trainer/` and uses optuna and ray directly (imported lazily), because `trainer`
never imports `hpo` (docs/ARCHITECTURE.md, "hyperparameter_search"). What it keeps from
Transformers: `hp_space(trial)` picks a trial's params (args fields go onto a copy of the
args), `compute_objective(metrics)` turns every evaluation into the value reported (and pruned
on), each trial writes under `output_dir/run-<id>` (or `hp_name(trial)`), and the answer is
Transformers' own `BestRun`. What it adds: the optuna study is kept in an SQL storage (by default
a SQLite file in output_dir), so `hpo status` / `hpo best` and optuna-dashboard read every
trial, and a rerun of the same script continues the same study.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any, cast

from trainer.args import FIELD_NAMES
from trainer.keys import OUTPUT_DIR_ATTR
from trainer.search_study import (
    LastEvaluation,
    default_storage,
    default_study_name,
    open_storage,
    trial_args,
)

BACKENDS = ("optuna", "ray")


def hyperparameter_search(
    trainer: Any,  # a trainer.Trainer (trainer/trainer.py is imported by no other module)
    hp_space: Callable[[Any], dict[str, Any]] | None,
    compute_objective: Callable[[dict[str, float]], float] | None,
    n_trials: int,
    direction: str | list[str],
    backend: str | None,
    hp_name: Callable[[Any], str] | None,
    **kwargs: Any,
) -> Any:
    """See Trainer.hyperparameter_search."""
    from transformers.trainer_utils import (
        default_compute_objective,
        default_hp_space_optuna,
        default_hp_space_ray,
    )

    name = _backend_name(backend)
    if trainer.model_init is None:
        raise RuntimeError(
            "To use hyperparameter search, you need to pass your model through a model_init "
            "function (Trainer(model_init=...)): each trial builds a fresh model"
        )
    compute = compute_objective or default_compute_objective
    if name == "optuna":
        space = hp_space or default_hp_space_optuna
        return _run_optuna(trainer, space, compute, n_trials, direction, hp_name, kwargs)
    from trainer.search_ray import run_ray  # imports ray only when it runs

    space = hp_space or default_hp_space_ray
    return run_ray(trainer, space, compute, n_trials, direction, hp_name, kwargs)


def _backend_name(backend: Any) -> str:
    import importlib.util

    if backend is None:
        for candidate in BACKENDS:
            if importlib.util.find_spec(candidate) is not None:
                return candidate
        raise RuntimeError("hyperparameter_search needs optuna or ray: pip install optuna")
    name = str(getattr(backend, "value", backend))
    if name not in BACKENDS:
        raise ValueError(
            f"backend={name!r}: hyperparameter_search runs on 'optuna' or 'ray' "
            "(sigopt and wandb are not supported)"
        )
    return name


def _run_optuna(trainer, hp_space, compute, n_trials, direction, hp_name, kwargs) -> Any:
    import optuna
    from transformers.trainer_utils import BestRun

    timeout = kwargs.pop("timeout", None)
    n_jobs = kwargs.pop("n_jobs", 1)
    gc_after_trial = kwargs.pop("gc_after_trial", False)
    catch = kwargs.pop("catch", ())
    if n_jobs != 1:
        # One Trainer holds one model at a time; threads would share it. `hpo run` with
        # `workers:` runs trials in parallel processes on the same kind of storage.
        raise ValueError(
            f"n_jobs={n_jobs}: this trainer runs one trial at a time in-process; for parallel "
            "trials run the same script in several processes (they share the study in "
            "output_dir's storage, or in one storage= and study_name=), or `hpo run` with workers:"
        )
    template = trainer._args_template
    kwargs["storage"] = open_storage(kwargs.get("storage") or default_storage(template.output_dir))
    kwargs.setdefault("study_name", default_study_name(template.output_dir))
    kwargs.setdefault("load_if_exists", True)
    directions = direction if isinstance(direction, list) else None
    study = optuna.create_study(
        direction=None if directions else direction, directions=directions, **kwargs
    )
    last_evaluation = LastEvaluation()

    def objective(trial: Any) -> Any:
        params = hp_space(trial)
        run_dir = os.path.join(
            template.output_dir, hp_name(trial) if hp_name else f"run-{trial.number}"
        )
        _warn_unused(params, trial.params)
        trainer._args_template = trial_args(template, params, run_dir)
        trial.set_user_attr(OUTPUT_DIR_ATTR, run_dir)
        last_evaluation.metrics = None
        try:
            trainer.train(trial=trial)
            metrics = last_evaluation.metrics
            if metrics is None:  # no evaluation during training
                metrics = trainer.evaluate()
            return compute(metrics)
        finally:
            trainer._release()  # the next trial starts without this one's model in memory

    trainer._hp_compute_objective = compute
    trainer.add_callback(last_evaluation)
    try:
        study.optimize(
            objective,
            n_trials=n_trials,
            timeout=timeout,
            n_jobs=1,
            gc_after_trial=gc_after_trial,
            catch=catch,
        )
    finally:
        trainer.remove_callback(last_evaluation)
        trainer._hp_compute_objective = None
        trainer._args_template = trainer.args = template
    if len(study.directions) > 1:
        return [BestRun(str(t.number), t.values, t.params, study) for t in study.best_trials]
    best = study.best_trial
    value = cast(float, best.value)  # a single objective's best trial is COMPLETE: it has one
    return BestRun(str(best.number), value, best.params, study)


def _warn_unused(params: dict[str, Any], suggested: dict[str, Any]) -> None:
    # Transformers warns about hp_space keys that are no args field; ours reach model_init only
    # through the trial, so a key that is neither a field nor a suggested param goes nowhere.
    lost = sorted(k for k in params if k not in FIELD_NAMES and k not in suggested)
    if lost:
        warnings.warn(
            f"hp_space returned {lost}, which are no TrainingArguments fields and no params of "
            "the trial; model_init cannot read them (suggest them on the trial instead)",
            stacklevel=3,
        )
