"""`backend: ray`: a Ray Tune `Tuner` whose trainable is our Trainer, mirrored into the storage.

- search: `random` (Tune's variant generator over the space) or `tpe` (OptunaSearch, told
  the truth about trials the scheduler stopped); a conditional or Python space goes to
  OptunaSearch define-by-run with either sampler: `hpo.backends.ray.search`;
- schedulers: asha, hyperband, pbt, pb2, median, built by `hpo.search.components` from the options
  the study file validated;
- limits: resources per trial, max concurrent trials, time budget, max_failures;
- the trainable (our Trainer, checkpointing at each evaluation): `hpo.backends.ray.trainable`;
- the data cache is built once, here in the driver, for every trial;
- running `hpo run` again on an interrupted study restores the Tune experiment.

The study comes validated (`hpo.study.load`): one objective, sampler random or tpe.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hpo.attrs import INTERRUPTED, STEP_KEY, WARM_START_ATTR, eval_metric_key
from hpo.backends import EXIT_INTERRUPTED, EXIT_OK
from hpo.backends.ray.starts import SearchStarts, start_study
from hpo.backends.study_record import check_stored
from hpo.backends.warm_start import load_source
from hpo.errors import HpoError
from hpo.spec import StudySpec

# Where a cluster keeps Tune experiments when the study does not say (docker-compose.yml sets
# it to a volume every node mounts, so checkpoints outlive the job and a restore finds them).
STORAGE_PATH_ENV = "HPO_RAY_STORAGE_PATH"

# Set by `hpo submit` for the job: training.output_dir made absolute on the submitting side.
# A job runs in a temporary copy of its working dir (Ray's runtime cache): a relative
# output_dir there would put the experiment, the checkpoints and the paths recorded in the
# storage where they do not last, and a resubmitted study would not find its experiment.
OUTPUT_DIR_ENV = "HPO_OUTPUT_DIR"

INTERRUPTED_HINT = "interrupted: run `hpo run` again to restore and continue the experiment"


def run_study(spec: StudySpec, *, address: str | None = None, callbacks: Sequence[Any] = ()) -> int:
    """Run (or restore and continue) the study on Ray Tune; returns the exit status.

    `callbacks` are extra `ray.tune.Callback`s for a new experiment (a restored one keeps
    those it was started with).
    """
    from ray import tune

    from hpo.backends.placement import ray_trials_per_gpu
    from hpo.backends.ray.trainable import train_ray_trial, trial_resources
    from hpo.data.cache import prepare_data_cache
    from hpo.storage.urls import mask_url

    spec = _with_absolute_paths(spec)
    # Read before anything is written: a warm_start source that is not there, or a study
    # file whose objective or task changed since the study began, stops the run here.
    rerun, stored_attrs = check_stored(spec)
    warm = load_source(spec)
    # Trials a driver that was killed left RUNNING: say so, and queue them for the restore.
    _requeue_stopped(spec, "interrupted: the Ray Tune driver was gone (killed or stopped)")
    restoring = tune.Tuner.can_restore(experiment_path(spec))
    starts = start_study(spec, rerun, stored_attrs, warm, restoring=restoring)
    remaining = _remaining_trials(spec)
    if remaining == 0:
        print(f"study {spec.name!r}: budget reached (n_trials={spec.budget.n_trials})")
        return EXIT_OK

    cache_dir = str(prepare_data_cache(spec))  # tokenized once, here, for every trial
    _connect(address or spec.ray.get("address"))
    trainable = tune.with_resources(
        tune.with_parameters(train_ray_trial, spec=spec, cache_dir=cache_dir),
        trial_resources(spec),
    )
    experiment = experiment_path(spec)
    packing = ray_trials_per_gpu(trial_resources(spec)["gpu"])
    print(
        f"study {spec.name!r} on Ray Tune, storage {mask_url(spec.storage)}, "
        f"experiment {experiment}" + (f"; {packing}" if packing else "")
    )
    for warning in spec.warnings:  # e.g. that model.trust_remote_code is on
        print(f"note: {warning}")
    if restoring:
        print("restoring the interrupted experiment (its finished trials are kept)")
        tuner = tune.Tuner.restore(
            experiment, trainable, resume_unfinished=True, resume_errored=False
        )
    else:
        tuner = build_tuner(
            spec, trainable, num_samples=remaining, callbacks=callbacks, starts=starts
        )
    started = time.monotonic()
    try:
        with _stopped_by_sigterm(spec):
            tuner.fit()
    except KeyboardInterrupt:
        _requeue_stopped(spec, INTERRUPTED)
        print(INTERRUPTED_HINT)
        return EXIT_INTERRUPTED
    except Exception as error:  # a driver-side failure; the experiment stays restorable
        from hpo.storage.urls import scrub_passwords

        raise HpoError(
            "the Ray Tune run failed: "
            + scrub_passwords(str(error).strip().splitlines()[-1], spec.storage)
            + "; run `hpo run` again to restore it"
        ) from None
    _print_summary(spec, time.monotonic() - started)
    _retain(spec)
    if _stored_trials(spec, "RUNNING"):
        # Tune catches Ctrl-C itself: it saves the experiment and returns as if done. The
        # interrupted trials are failed as such and queued; the restore continues them.
        _requeue_stopped(spec, INTERRUPTED)
        print(INTERRUPTED_HINT)
        return EXIT_INTERRUPTED
    return EXIT_OK


def _requeue_stopped(spec: StudySpec, reason: str, storage: Any = None) -> None:
    from hpo.backends.ray.stored_study import ensure_study, requeue_stopped_trials
    from hpo.storage.rdb import open_storage

    storage = storage if storage is not None else open_storage(spec.storage)
    ensure_study(storage, spec.name, spec.objective.directions)
    stopped = requeue_stopped_trials(spec.storage, spec.name, reason, storage=storage)
    if stopped:
        print(f"trials {stopped} were stopped: failed ({reason}) and queued to resume")


@contextlib.contextmanager
def _stopped_by_sigterm(spec: StudySpec) -> Iterator[None]:
    """SIGTERM (`hpo submit --stop`, `ray job stop`, docker stop) ends the driver truthfully.

    Ray's job stop sends SIGTERM and SIGKILLs the driver a few seconds later; Tune would
    spend those saving and leave the storage with trials RUNNING for good. So the handler
    records the truth first (the running trials failed as interrupted and queued), then
    exits at once: Tune's experiment, saved as it runs, and the checkpoints its trials
    reported are what a resubmission restores. Only from the main thread (signal handlers).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    from hpo.backends.ray import mirror  # noqa: F401 - imported now, not in the handler
    from hpo.storage.rdb import open_storage

    # Opened now: Ray SIGKILLs the driver seconds after the SIGTERM, and opening a storage
    # (imports, schema check) could take most of them under load.
    storage = open_storage(spec.storage)

    def stop(signum: int, frame: Any) -> None:
        try:
            _requeue_stopped(spec, INTERRUPTED, storage)
            print(INTERRUPTED_HINT)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- building the Tuner ------------------------------------------------------------------


def build_tuner(
    spec: StudySpec,
    trainable: Any,
    *,
    num_samples: int,
    callbacks: Sequence[Any] = (),
    starts: SearchStarts | None = None,
) -> Any:
    """A new Tuner for the study: search (starting from `starts`), scheduler, limits, storage
    and the mirror."""
    from ray import tune

    from hpo.backends.ray.mirror import OptunaMirror
    from hpo.backends.ray.search import build_search, uses_optuna_search
    from hpo.search.space import to_optuna_distributions

    metric, mode = tune_metric(spec), tune_mode(spec)
    search_alg, param_space = build_search(
        spec, metric=metric, mode=mode, max_steps=_max_steps(spec), starts=starts
    )
    mirror = OptunaMirror(
        spec.storage,
        spec.name,
        metrics=[metric],
        directions=spec.objective.directions,
        distributions=to_optuna_distributions(spec.space),
        space_function=spec.space_function,
        max_steps=_max_steps(spec),
        step_key=STEP_KEY,
        time_budget_s=spec.budget.timeout_s,
        output_dir=spec.output_dir,
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
                spec.ray.get("max_concurrent_trials") if uses_optuna_search(spec) else None
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
    from hpo.search.components import POPULATION_SCHEDULERS

    population = spec.scheduler is not None and spec.scheduler.name in POPULATION_SCHEDULERS
    return None if population else 1


def build_scheduler(spec: StudySpec) -> Any:
    """The study's scheduler for the objective metric (None: run every trial to the end).

    PBT and PB2 mutate only the training params of the space (`hpo.search.components`).
    """
    from hpo.search.components import build_scheduler as build

    if spec.scheduler is None:
        return None
    return build(spec.scheduler, metric=tune_metric(spec), mode=tune_mode(spec), space=spec.space)


def tune_metric(spec: StudySpec) -> str:
    """The metric name as the trainer reports it (with the `eval_` prefix)."""
    name = spec.objective.metrics[0]
    return eval_metric_key(name)


def tune_mode(spec: StudySpec) -> str:
    """The objective's direction in Tune's words: "min" or "max"."""
    return "min" if spec.objective.directions[0] == "minimize" else "max"


def experiment_path(spec: StudySpec) -> str:
    """Where Tune keeps the experiment (checkpoints, state for a restore)."""
    root = (
        spec.ray.get("storage_path")
        or os.environ.get(STORAGE_PATH_ENV)
        or str(Path(spec.output_dir) / "ray")
    )
    return str(Path(root).expanduser().absolute() / spec.name)


def _max_steps(spec: StudySpec) -> int | None:
    max_steps = spec.training.get("max_steps")
    return int(max_steps) if isinstance(max_steps, int) and max_steps > 0 else None


def _with_absolute_paths(spec: StudySpec) -> StudySpec:
    """Tune runs trials in their own directories: pin the study's paths to this one."""
    from hpo.storage.urls import sqlite_path

    training = dict(spec.training)
    output_dir = os.environ.get(OUTPUT_DIR_ENV) or spec.output_dir
    training["output_dir"] = str(Path(output_dir).expanduser().absolute())
    storage = spec.storage
    path = sqlite_path(storage)
    if path is not None and not path.is_absolute():
        storage = f"sqlite:///{path.absolute()}"
    return dataclasses.replace(spec, training=training, storage=storage)


# --- counting trials ---------------------------------------------------------------------


def _remaining_trials(spec: StudySpec) -> int:
    """Trials still to run under n_trials (-1: no count limit, the time budget stops)."""
    n_trials = spec.budget.n_trials
    if n_trials is None:
        return -1 if spec.budget.timeout_s else 1
    if Path(experiment_path(spec)).exists():
        return n_trials  # a restore: Tune's own count already covers its trials
    # A study whose Ray experiment was deleted: its finished trials count.
    return max(0, n_trials - _stored_trials(spec, "COMPLETE", "PRUNED"))


def _stored_trials(spec: StudySpec, *states: str) -> int:
    """How many of the study's trials the storage holds in `states` (optuna state names),
    warm-start copies left out (they were never trained here)."""
    from optuna.trial import TrialState

    from hpo.backends.ray.stored_study import ensure_study
    from hpo.storage.rdb import open_storage

    storage = open_storage(spec.storage)
    study_id = ensure_study(storage, spec.name, spec.objective.directions)
    wanted = tuple(TrialState[state] for state in states)
    trials = storage.get_all_trials(study_id, deepcopy=False, states=wanted)
    return sum(WARM_START_ATTR not in trial.user_attrs for trial in trials)


# --- the Ray cluster and the summary -----------------------------------------------------


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


def _retain(spec: StudySpec) -> None:
    """The same retention as the Optuna backend's (`hpo.storage.retention`), over the
    trainer's checkpoints in each trial's folder; Tune's copies keep Tune's num_to_keep."""
    import optuna

    from hpo.storage.retention import apply_retention

    try:
        apply_retention(spec, optuna.load_study(study_name=spec.name, storage=spec.storage))
    except OSError as error:  # disk cleanup must never fail a finished study
        print(f"checkpoint cleanup skipped: {error}")


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
