"""`backend: ray`: a Ray Tune `Tuner` whose trainable is our Trainer, mirrored into the storage.

- search: `random` (Tune's variant generator over the space) or `tpe` (OptunaSearch, told
  the truth about trials the scheduler stopped);
- schedulers: asha, hyperband, pbt, pb2, median, built by `hpo.search.components` from the options
  the study file validated;
- limits: resources per trial, max concurrent trials, time budget, max_failures;
- every trial reports at each evaluation with a checkpoint of the trainer, and resumes from
  the checkpoint Tune hands back (a PBT exploit, a retry after a failure, a restore);
- the data cache is built once by the driver; each Ray worker process opens it (memory
  mapped) once and keeps it for every trial it runs (actors are reused);
- running `hpo run` again on an interrupted study restores the Tune experiment.
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ray.tune.search.optuna import OptunaSearch

from hpo.attrs import STEP_KEY, eval_metric_key
from hpo.errors import HpoError
from hpo.spec import StudySpec

# One context per study per worker process: datasets opened once, model_init built once.
_CONTEXTS: dict[str, Any] = {}


def run_study(spec: StudySpec, *, address: str | None = None, callbacks: Sequence[Any] = ()) -> int:
    """Run (or restore and continue) the study on Ray Tune; returns the exit status.

    `callbacks` are extra `ray.tune.Callback`s for a new experiment (a restored one keeps
    those it was started with).
    """
    from ray import tune

    from hpo.storage.urls import mask_url

    _check_supported(spec)
    spec = _with_absolute_paths(spec)
    remaining = _remaining_trials(spec)
    if remaining == 0:
        print(f"study {spec.name!r}: budget reached (n_trials={spec.budget.n_trials})")
        return 0

    from hpo.data.cache import prepare_data_cache

    cache_dir = str(prepare_data_cache(spec))  # tokenized once, here, for every trial
    _connect(address or spec.ray.get("address"))
    trainable = tune.with_resources(
        tune.with_parameters(train_ray_trial, spec=spec, cache_dir=cache_dir),
        _resources(spec),
    )
    experiment = experiment_path(spec)
    print(
        f"study {spec.name!r} on Ray Tune, storage {mask_url(spec.storage)}, "
        f"experiment {experiment}"
    )
    if tune.Tuner.can_restore(experiment):
        print("restoring the interrupted experiment (its finished trials are kept)")
        tuner = tune.Tuner.restore(
            experiment, trainable, resume_unfinished=True, resume_errored=False
        )
    else:
        tuner = build_tuner(spec, trainable, num_samples=remaining, callbacks=callbacks)
    started = time.monotonic()
    try:
        tuner.fit()
    except KeyboardInterrupt:
        print("interrupted: run `hpo run` again to restore and continue the experiment")
        return 130
    except Exception as error:  # a driver-side failure; the experiment stays restorable
        from hpo.storage.urls import scrub_passwords

        raise HpoError(
            "the Ray Tune run failed: "
            + scrub_passwords(str(error).strip().splitlines()[-1], spec.storage)
            + "; run `hpo run` again to restore it"
        ) from None
    _print_summary(spec, time.monotonic() - started)
    if _unfinished_trials(spec):
        # Tune catches Ctrl-C itself: it saves the experiment and returns as if done.
        print("interrupted: run `hpo run` again to restore and continue the experiment")
        return 130
    return 0


run = run_study  # the name the backend contract uses


# --- the trainable -----------------------------------------------------------------------


def train_ray_trial(config: dict[str, Any], *, spec: StudySpec, cache_dir: str) -> None:
    """One Tune trial: our Trainer on the trial's config dict.

    The trainer's Ray reporter calls `tune.report(..., checkpoint=...)` at every evaluation
    and resumes from `tune.get_checkpoint()` when Tune hands one back.
    """
    import torch
    from ray import tune

    from hpo.backends.objective import train_trial

    cpus = max(1, int(spec.ray.get("resources_per_trial", {}).get("cpu", 1) or 1))
    torch.set_num_threads(cpus)
    context = _context(spec, cache_dir)
    trial_id = tune.get_context().get_trial_id()
    output_dir = Path(spec.output_dir) / f"ray-{trial_id}"
    if tune.get_checkpoint() is not None:
        # A restart (PBT exploit, retry, restore) writes beside the first attempt's
        # checkpoints, never over them: the trainer resumes from Tune's checkpoint.
        output_dir = output_dir / f"resumed-{uuid.uuid4().hex[:8]}"
    # A resumed run trains with this trial's (possibly mutated) params: the trainer puts them
    # back over the ones restored from the checkpoint's optimizer and scheduler.
    output = train_trial(context, dict(config), output_dir=output_dir)
    _report_final_evaluation(spec, output)


def _context(spec: StudySpec, cache_dir: str) -> Any:
    from hpo.backends.objective import TrialContext
    from hpo.data import study_model_init
    from hpo.data.cache import open_datasets, prepare_data_cache

    key = f"{spec.name}:{cache_dir}"
    context = _CONTEXTS.get(key)
    if context is None:
        cache = Path(cache_dir)
        if not (cache / "meta.json").exists():  # another node of a cluster: build it once here
            cache = prepare_data_cache(spec)
        train, evaluation = open_datasets(cache, spec.data.max_eval_samples)
        context = TrialContext(
            spec=spec,
            train_dataset=train,
            eval_dataset=evaluation,
            model_init=study_model_init(spec),
        )
        _CONTEXTS[key] = context
    return context


def _report_final_evaluation(spec: StudySpec, output: Any) -> None:
    """The trainer evaluates once more at the end when max_steps is not a multiple of
    eval_steps, without reporting it: report it, so the final value is the run's last."""
    from ray import tune

    eval_steps = spec.training.get("eval_steps")
    if spec.training.get("eval_strategy") != "steps" or not eval_steps:
        return
    if output.global_step % int(eval_steps) == 0:
        return
    metrics = {
        key: float(value)
        for key, value in output.metrics.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }
    tune.report({**metrics, STEP_KEY: output.global_step})


# --- building the Tuner ------------------------------------------------------------------


def build_tuner(
    spec: StudySpec, trainable: Any, *, num_samples: int, callbacks: Sequence[Any] = ()
) -> Any:
    """A new Tuner for the study: search, scheduler, limits, storage and the mirror."""
    from ray import tune

    from hpo.backends.ray.mirror import OptunaMirror
    from hpo.search.space import to_optuna_distributions

    metric, mode = tune_metric(spec), tune_mode(spec)
    search_alg, param_space = _search(spec, metric, mode)
    mirror = OptunaMirror(
        spec.storage,
        spec.name,
        metrics=[metric],
        directions=spec.objective.directions,
        distributions=to_optuna_distributions(spec.space),
        max_steps=_max_steps(spec),
        step_key=STEP_KEY,
        time_budget_s=spec.budget.timeout_s,
    )
    return tune.Tuner(
        trainable,
        param_space=param_space,
        # metric and mode are given to the scheduler and the searcher themselves (Tune
        # refuses them twice).
        tune_config=tune.TuneConfig(
            search_alg=search_alg,
            scheduler=build_scheduler(spec),
            num_samples=num_samples,
            max_concurrent_trials=(
                spec.ray.get("max_concurrent_trials") if spec.sampler.name == "tpe" else None
            ),
            time_budget_s=spec.budget.timeout_s,
            reuse_actors=True,  # one worker process runs many trials: data opened once
        ),
        run_config=tune.RunConfig(
            name=spec.name,
            storage_path=str(Path(experiment_path(spec)).parent),
            failure_config=tune.FailureConfig(max_failures=int(spec.ray.get("max_failures") or 0)),
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=_checkpoints_to_keep(spec),
                checkpoint_score_attribute=metric,
                checkpoint_score_order=mode,
            ),
            callbacks=[mirror, *callbacks],
            verbose=1,
        ),
    )


def _checkpoints_to_keep(spec: StudySpec) -> int | None:
    """One (the best by the objective; Tune always keeps the newest too), except under PBT
    and PB2: a trial may exploit a donor's checkpoint after the donor has moved on, and
    Tune would have deleted it by then ("checkpoint does not exist on storage anymore")."""
    population = spec.scheduler is not None and spec.scheduler.name in ("pbt", "pb2")
    return None if population else 1


def build_scheduler(spec: StudySpec) -> Any:
    """The study's scheduler for the objective metric (None: run every trial to the end)."""
    from hpo.search.components import build_scheduler as build

    if spec.scheduler is None:
        return None
    space = spec.space
    if spec.scheduler.name in ("pbt", "pb2"):
        # A population trial continues from another's checkpoint: architecture params
        # (model.*) cannot change under it, only training params can be mutated.
        space = tuple(p for p in spec.space if not p.is_model_param)
    return build(spec.scheduler, metric=tune_metric(spec), mode=tune_mode(spec), space=space)


def _search(spec: StudySpec, metric: str, mode: str) -> tuple[Any, dict[str, Any]]:
    """(search_alg, param_space): TPE draws the params itself; random uses the space."""
    from ray.tune.search import BasicVariantGenerator

    from hpo.search.components import build_sampler
    from hpo.search.space import to_optuna_distributions, to_ray_param_space

    if spec.sampler.name == "tpe":
        searcher = TruthfulOptunaSearch(
            space=to_optuna_distributions(spec.space),
            metric=metric,
            mode=mode,
            sampler=build_sampler(spec.sampler, space=spec.space),
        )
        searcher.max_steps = _max_steps(spec)
        return searcher, {}
    seed = spec.sampler.options.get("seed")
    # Tune applies max_concurrent_trials to Searchers only; the variant generator takes its own.
    generator = BasicVariantGenerator(
        random_state=seed, max_concurrent=spec.ray.get("max_concurrent_trials") or 0
    )
    return generator, to_ray_param_space(spec.space)


def tune_metric(spec: StudySpec) -> str:
    """The metric name as the trainer reports it (with the `eval_` prefix)."""
    name = spec.objective.metrics[0]
    return eval_metric_key(name)


def tune_mode(spec: StudySpec) -> str:
    return "min" if spec.objective.directions[0] == "minimize" else "max"


# Where a cluster keeps Tune experiments when the study does not say (docker-compose.yml sets
# it to a volume every node mounts, so checkpoints outlive the job and a restore finds them).
STORAGE_PATH_ENV = "HPO_RAY_STORAGE_PATH"


def experiment_path(spec: StudySpec) -> str:
    """Where Tune keeps the experiment (checkpoints, state for a restore)."""
    root = (
        spec.ray.get("storage_path")
        or os.environ.get(STORAGE_PATH_ENV)
        or str(Path(spec.output_dir) / "ray")
    )
    return str(Path(root).expanduser().absolute() / spec.name)


def _resources(spec: StudySpec) -> dict[str, float]:
    resources = spec.ray.get("resources_per_trial") or {}
    return {"cpu": float(resources.get("cpu", 1)), "gpu": float(resources.get("gpu", 0))}


def _max_steps(spec: StudySpec) -> int | None:
    max_steps = spec.training.get("max_steps")
    return int(max_steps) if isinstance(max_steps, int) and max_steps > 0 else None


def _check_supported(spec: StudySpec) -> None:
    if spec.objective.is_multi:
        raise HpoError(
            "objective: backend ray takes one metric (its schedulers compare one value); "
            "use backend optuna for multi-objective studies"
        )
    if spec.sampler.name not in ("random", "tpe"):
        raise HpoError(
            f"sampler: {spec.sampler.name!r} is not available with backend ray; use random or tpe"
        )


def _with_absolute_paths(spec: StudySpec) -> StudySpec:
    """Tune runs trials in their own directories: pin the study's paths to this one."""
    training = dict(spec.training)
    training["output_dir"] = str(Path(spec.output_dir).expanduser().absolute())
    storage = spec.storage
    from hpo.storage.urls import sqlite_path

    path = sqlite_path(storage)
    if path is not None and not path.is_absolute():
        storage = f"sqlite:///{path.absolute()}"
    return dataclasses.replace(spec, training=training, storage=storage)


def _remaining_trials(spec: StudySpec) -> int:
    """Trials still to run under n_trials (-1: no count limit, the time budget stops)."""
    n_trials = spec.budget.n_trials
    if n_trials is None:
        return -1 if spec.budget.timeout_s else 1
    if Path(experiment_path(spec)).exists():
        return n_trials  # a restore: Tune's own count already covers its trials
    return max(0, n_trials - _finished_ray_trials(spec))


def _finished_ray_trials(spec: StudySpec) -> int:
    """Finished trials already in the storage (a study whose Ray experiment was deleted)."""
    from optuna.trial import TrialState

    from hpo.backends.ray.mirror import ensure_study
    from hpo.storage.rdb import open_storage

    storage = open_storage(spec.storage)
    study_id = ensure_study(storage, spec.name, spec.objective.directions)
    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    return len(storage.get_all_trials(study_id, deepcopy=False, states=finished))


def _unfinished_trials(spec: StudySpec) -> int:
    """Mirrored trials still RUNNING after fit(): the run was interrupted."""
    from optuna.trial import TrialState

    from hpo.storage.rdb import open_storage

    storage = open_storage(spec.storage)
    study_id = storage.get_study_id_from_name(spec.name)
    running = storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
    return len(running)


def _connect(address: str | None) -> None:
    import ray

    if ray.is_initialized():
        return
    # Ray's workers log every trial's output to this terminal; the storage and the summary
    # say what matters.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "1")
    try:
        ray.init(address=address, log_to_driver=False, include_dashboard=False)
    except (ConnectionError, ValueError) as error:
        raise HpoError(
            f"ray.address {address!r}: cannot connect to a Ray cluster ({error}); start one "
            "with `ray start --head`, or leave ray.address out to run Ray on this machine"
        ) from None


def _print_summary(spec: StudySpec, elapsed_s: float) -> None:
    from hpo.report.progress import best_summary, format_progress
    from hpo.storage import reader

    report = reader.status(spec.storage, spec.name)
    best = best_summary(report["best"])
    print(
        format_progress(
            report["counts"], n_trials=spec.budget.n_trials, best=best, elapsed_s=elapsed_s
        )
    )
    if best:
        print(f"best trial: {best}; see it with `hpo best`, or open `hpo dashboard`")


# --- TPE that knows which trials the scheduler stopped ------------------------------------


class TruthfulOptunaSearch(OptunaSearch):
    """OptunaSearch that tells its sampler PRUNED for trials a scheduler stopped early.

    Tune calls `on_trial_result` for every result except the one a scheduler answered with
    STOP; a trial whose last result the searcher never saw was stopped early. OptunaSearch
    itself tells such a trial COMPLETE with its truncated value, and TPE then models the
    space on values of unfinished runs.
    """

    max_steps: int | None = None

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        super().on_trial_result(trial_id, result)
        self._seen_iterations = getattr(self, "_seen_iterations", {})
        self._seen_iterations[trial_id] = result.get("training_iteration")

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        from optuna.trial import TrialState

        seen = getattr(self, "_seen_iterations", {}).get(trial_id)
        reached_end = (
            self.max_steps is not None and (result or {}).get(STEP_KEY, 0) >= self.max_steps
        )
        stopped_early = (
            result is not None
            and not error
            and result.get("training_iteration") != seen
            and not reached_end
        )
        if not stopped_early or trial_id in self._completed_trials:
            super().on_trial_complete(trial_id, result=result, error=error)
            return
        self._ot_study.tell(self._ot_trials[trial_id], state=TrialState.PRUNED)
        self._completed_trials.add(trial_id)
