"""`hyperparameter_search(backend="ray")`: Ray Tune runs the trials, then each one is written
into an optuna storage (the same default as the optuna backend: `output_dir/hp_search.db`, the
study named after output_dir's folder), so `hpo status`, `hpo best` and optuna-dashboard read
a Ray search too.

A trial's state there: FAIL when it raised, PRUNED when it stopped before `max_steps` (a
scheduler stopped it), COMPLETE otherwise; its value is its last `objective`, its intermediate
values the objective at each reported step. Ray's search space becomes optuna distributions
(loguniform/uniform -> float, randint -> int, choice and grid_search -> categorical).
"""

from __future__ import annotations

import os
from typing import Any, Literal, cast

from trainer.keys import OUTPUT_DIR_ATTR, RAY_TRIAL_ID_ATTR, STEP_KEY
from trainer.search_study import (
    LastEvaluation,
    default_storage,
    default_study_name,
    open_storage,
    trial_args,
)

RAY_KWARGS = (
    "resources_per_trial",
    "scheduler",
    "search_alg",
    "max_concurrent_trials",
    "time_budget_s",
    "storage_path",
    "name",
    "verbose",
    "storage",
    "study_name",
)


def run_ray(trainer, hp_space, compute, n_trials, direction, hp_name, kwargs) -> Any:
    from ray import tune
    from transformers.trainer_utils import BestRun

    if isinstance(direction, list):
        raise ValueError("backend='ray' takes one direction ('minimize' or 'maximize')")
    unknown = sorted(set(kwargs) - set(RAY_KWARGS))
    if unknown:
        raise ValueError(
            f"hyperparameter_search(backend='ray') does not take {unknown}; it takes "
            f"{', '.join(RAY_KWARGS)}"
        )
    template = trainer._args_template
    trainer._release()  # the model does not travel to the Ray workers
    study_name = kwargs.get("study_name") or default_study_name(template.output_dir)
    run_config = tune.RunConfig(
        name=kwargs.get("name", study_name),
        storage_path=kwargs.get(
            "storage_path", os.path.abspath(os.path.join(template.output_dir, "ray_results"))
        ),
        verbose=kwargs.get("verbose", 0),
    )
    tune_config = tune.TuneConfig(
        num_samples=n_trials,
        scheduler=kwargs.get("scheduler"),
        search_alg=kwargs.get("search_alg"),
        max_concurrent_trials=kwargs.get("max_concurrent_trials"),
        time_budget_s=kwargs.get("time_budget_s"),
        metric="objective",
        mode=direction[:3],
    )
    trainable = tune.with_resources(
        tune.with_parameters(
            _ray_trial, trainer=trainer, template=template, compute=compute, hp_name=hp_name
        ),
        kwargs.get("resources_per_trial", {"cpu": 1}),
    )
    param_space = hp_space(None)
    tuner = tune.Tuner(
        trainable, param_space=param_space, tune_config=tune_config, run_config=run_config
    )
    results = tuner.fit()
    storage = kwargs.get("storage") or default_storage(template.output_dir)
    record_in_optuna(results, param_space, storage, study_name, direction, template, hp_name)
    best = results.get_best_result(metric="objective", mode=direction[:3], scope="last")
    assert best.metrics is not None  # chosen by its "objective" metric: it has metrics
    config = cast(dict[str, Any], best.config)  # a Tune trial's config, set at its start
    return BestRun(best.metrics["trial_id"], best.metrics["objective"], config, results)


def _ray_trial(config, trainer, template, compute, hp_name) -> None:
    """One Ray Tune trial: train with the config; the RayReporter reports `objective`."""
    from ray import tune

    trial_id = tune.get_context().get_trial_id()
    run_dir = _run_dir(template, hp_name, config, trial_id)
    trainer._args_template = trial_args(template, dict(config), run_dir)
    trainer._hp_compute_objective = compute
    last_evaluation = LastEvaluation()
    trainer.add_callback(last_evaluation)
    trainer.train(trial=dict(config))
    if last_evaluation.metrics is None:  # no evaluation during training: report one now
        metrics = trainer.evaluate()
        tune.report({**metrics, "objective": float(compute(metrics))})


def _run_dir(template: Any, hp_name: Any, config: Any, trial_id: str) -> str:
    return os.path.join(template.output_dir, hp_name(config) if hp_name else f"run-{trial_id}")


def record_in_optuna(
    results: Any,
    param_space: dict[str, Any],
    storage: Any,
    study_name: str,
    direction: Literal["minimize", "maximize"],
    template: Any,
    hp_name: Any,
) -> None:
    """Every Ray trial of `results` (a ResultGrid) as a finished trial of an optuna study.

    Not built on hpo's live mirror (hpo/backends/ray/mirror.py), nor the mirror on this:
    trainer never imports hpo, and the mirror leans on hpo's study (its attrs, a Python
    space replayed per trial, the storage's heartbeats and requeue of a stopped driver's
    trials); moving it down here would change what this path records. The two also differ
    in kind: this writes each trial once, finished, after `tuner.fit()` returns (PRUNED: it
    ended before max_steps, without a value), while the mirror is a Tune callback that writes
    trials while they run, so a restore continues them, and calls a trial PRUNED only when
    the scheduler or the time budget stopped it, with its last intermediate value as optuna's
    tell() gives one. What both share is the storage's opener (trainer/sqlite_storage.py).
    """
    import optuna
    from optuna.trial import TrialState, create_trial

    study = optuna.create_study(
        storage=open_storage(storage),
        study_name=study_name,
        direction=direction,
        load_if_exists=True,
    )
    for result in results:
        metrics = result.metrics or {}
        history = _objective_by_step(result)
        if result.error is not None or "objective" not in metrics:
            state, value = TrialState.FAIL, None
        elif template.max_steps > 0 and max(history, default=0) < template.max_steps:
            state, value = TrialState.PRUNED, None
        else:
            state, value = TrialState.COMPLETE, float(metrics["objective"])
        config = {k: v for k, v in result.config.items() if k in param_space}
        trial_id = metrics.get("trial_id", "")
        study.add_trial(
            create_trial(
                state=state,
                value=value,
                params=config,
                distributions={k: _distribution(param_space[k], v) for k, v in config.items()},
                intermediate_values=history,
                user_attrs={
                    OUTPUT_DIR_ATTR: _run_dir(template, hp_name, result.config, trial_id),
                    RAY_TRIAL_ID_ATTR: trial_id,
                },
            )
        )


def _objective_by_step(result: Any) -> dict[int, float]:
    frame = result.metrics_dataframe
    if frame is None or "objective" not in frame or STEP_KEY not in frame:
        return {}
    rows = frame[[STEP_KEY, "objective"]].dropna()
    pairs = zip(rows[STEP_KEY], rows["objective"], strict=True)
    return {int(step): float(value) for step, value in pairs}


def _distribution(domain: Any, value: Any) -> Any:
    """The optuna distribution of one Ray param space entry (holding `value`)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )
    from ray.tune.search import sample

    if isinstance(domain, sample.Float):
        log = isinstance(domain.get_sampler(), sample.LogUniform)
        return FloatDistribution(domain.lower, domain.upper, log=log)
    if isinstance(domain, sample.Integer):  # Ray's upper bound is exclusive
        log = isinstance(domain.get_sampler(), sample.LogUniform)
        return IntDistribution(domain.lower, domain.upper - 1, log=log)
    if isinstance(domain, sample.Categorical):
        return CategoricalDistribution(domain.categories)
    if isinstance(domain, dict) and "grid_search" in domain:
        return CategoricalDistribution(domain["grid_search"])
    return CategoricalDistribution([value])  # a constant, or a domain optuna has no name for
