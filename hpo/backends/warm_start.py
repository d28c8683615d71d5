"""Starting from what is known: the study file's `enqueue:` entries and `warm_start:` trials.

- `load_source` reads the earlier study of `warm_start:` before anything is written: a storage
  that cannot be opened or a study that is not there is a StudyFileError (exit 2). Its
  COMPLETE trials whose params fit this space become copies (`optuna.trial.create_trial`,
  this space's distributions, no intermediate values: they seed the sampler, not the pruner),
  each marked with `WARM_START_ATTR`. The copies count against no budget and are never the
  best trial (`hpo.backends.optuna.budget`, `hpo.storage.reader`, retention).
- `apply_to_study` adds the copies to the study once (`WARM_STARTED_FROM_ATTR` records each
  source) and queues each `enqueue:` entry once over every run (`ENQUEUED_CONFIGS_ATTR`).

The Ray backend gives the same trials to its searcher (`hpo.backends.ray.tuner`).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpo.attrs import (
    ENQUEUED_ATTR,
    ENQUEUED_CONFIGS_ATTR,
    WARM_START_ATTR,
    WARM_STARTED_FROM_ATTR,
)
from hpo.backends.study_record import Rerun, record
from hpo.errors import HpoError, StudyFileError
from hpo.search.membership import fit_config
from hpo.spec import StudySpec

if TYPE_CHECKING:
    import optuna


@dataclass
class WarmStart:
    """The copies taken from the earlier study, and the line that says how many and why."""

    source: str  # "study 'old' in sqlite:///...": the key of WARM_STARTED_FROM_ATTR
    trials: list[Any] = field(default_factory=list)  # optuna FrozenTrials to add
    summary: str = ""


def load_source(spec: StudySpec) -> WarmStart | None:
    """The earlier study's fitting trials as copies for this study; None without warm_start.

    Opens the source storage for reading only: a SQLite file that does not exist is refused,
    not created, and optuna's tables are not created where they are missing.
    """
    if spec.warm_start is None:
        return None
    import optuna

    from hpo.storage.reader import study_names_or_none
    from hpo.storage.urls import mask_url, scrub_passwords, sqlite_path, with_driver

    warm = spec.warm_start
    shown = mask_url(warm.storage)
    source = spec.source_path or "<study file>"

    def refuse(message: str) -> StudyFileError:
        return StudyFileError(source, [f"warm_start: {message}"])

    path = sqlite_path(warm.storage)
    if path is not None and not path.is_file():
        raise refuse(f"no storage at {shown}: the file {path} does not exist")
    # The names by SQL first: an empty database (no optuna tables) is "no study", and
    # nothing is created in it.
    try:
        names = study_names_or_none(warm.storage)
        if names is not None and warm.study in names:
            storage = optuna.storages.RDBStorage(
                with_driver(warm.storage), skip_table_creation=True
            )
    except Exception as error:  # any driver's error: the reason, with its password removed
        reason = _root_reason(error)
        raise refuse(
            f"cannot open the storage {shown}: {scrub_passwords(reason, warm.storage)}"
        ) from None
    names = names or []
    if warm.study not in names:
        there = ", ".join(repr(n) for n in names) if names else "none"
        raise refuse(f"no study named {warm.study!r} in {shown} (studies there: {there})")
    study = optuna.load_study(study_name=warm.study, storage=storage)
    directions = [d.name.lower() for d in study.directions]
    if directions != list(spec.objective.directions):
        raise refuse(
            f"study {warm.study!r} was run with directions {directions}, this study's "
            f"objective has {list(spec.objective.directions)}: its values cannot seed this one"
        )
    from hpo.attrs import STUDY_FILE_ATTR

    recorded = (study.user_attrs.get(STUDY_FILE_ATTR) or {}).get("objective") or {}
    metrics = recorded.get("metrics")
    if metrics is not None and metrics != list(spec.objective.metrics):
        raise refuse(
            f"study {warm.study!r} was run for {metrics}, this study for "
            f"{list(spec.objective.metrics)}: its values cannot seed this one"
        )
    key = f"study {warm.study!r} in {shown}"
    trials, summary = copies_of(spec, study.get_trials(deepcopy=False), warm.study)
    return WarmStart(source=key, trials=trials, summary=summary)


def _root_reason(error: BaseException) -> str:
    """The first line of the innermost cause: optuna wraps the driver's error ("connection
    refused") in one that says only that a commit failed; the reader's errors already say
    what they found after the URL."""
    if isinstance(error, HpoError):
        return str(error).split(": ", 1)[-1]
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def copies_of(spec: StudySpec, trials: list[Any], study_name: str) -> tuple[list[Any], str]:
    """(copies of the COMPLETE trials that fit the space, the line that says so)."""
    import optuna
    from optuna.trial import TrialState

    copies, not_finished, copied = [], Counter[str](), 0
    outside: list[str] = []
    for trial in trials:
        if trial.state != TrialState.COMPLETE:
            not_finished[trial.state.name.lower()] += 1
            continue
        if WARM_START_ATTR in trial.user_attrs:
            copied += 1  # itself a copy from a study before that one
            continue
        params, distributions, reasons = fit_trial(spec, trial.params, f"trial {trial.number}")
        if reasons:
            outside.append(reasons[0])
            continue
        copies.append(
            optuna.trial.create_trial(
                state=TrialState.COMPLETE,
                values=list(trial.values),
                params=params,
                distributions=distributions,
                user_attrs={WARM_START_ATTR: {"study": study_name, "trial": trial.number}},
            )
        )
    why = []
    if outside:
        why.append(f"{len(outside)} had params outside this space ({outside[0]})")
    if not_finished:
        states = ", ".join(f"{n} {state}" for state, n in sorted(not_finished.items()))
        why.append(f"{sum(not_finished.values())} had not completed ({states})")
    if copied:
        why.append(f"{copied} were themselves warm-start copies")
    summary = f"{len(copies)} of {len(trials)} trials taken from study {study_name!r}"
    return copies, summary + (": " + "; ".join(why) if why else "")


def fit_trial(
    spec: StudySpec, params: dict[str, Any], what: str
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(the params as this space holds them, their distributions, why they do not fit): a
    declared space by `fit_config` (conditions included), a Python space by replaying its
    function on the params (`membership.fit_replayed`)."""
    if spec.space_function is not None:
        from hpo.search.membership import fit_replayed

        return fit_replayed(spec.space_function, params, what=what)
    from hpo.search.space import to_optuna_distributions

    fitted, reasons = fit_config(params, spec.space)
    distributions = to_optuna_distributions(spec.space)
    return fitted, {name: distributions[name] for name in fitted}, reasons


def config_key(config: dict[str, Any]) -> str:
    """A configuration as canonical text: how queued entries are recognised on a rerun."""
    return json.dumps(config, sort_keys=True)


def entries_to_queue(spec: StudySpec, stored_attrs: dict[str, Any]) -> list[tuple[int, dict]]:
    """(index, entry) of each `enqueue:` entry no run of the study has queued yet."""
    done = set(stored_attrs.get(ENQUEUED_CONFIGS_ATTR) or [])
    return [(i, e) for i, e in enumerate(spec.enqueue) if config_key(e) not in done]


def apply_to_study(
    spec: StudySpec,
    study: optuna.Study,
    warm: WarmStart | None,
    *,
    queue: bool = True,
    enqueue: bool = True,
) -> tuple[list[str], list[dict[str, Any]]]:
    """Add the warm-start copies and queue the new `enqueue:` entries, each once per study
    (the caller holds the study's lock). Returns (the lines to print, the entries queued now).

    `queue=False` (the Ray backend, whose searcher takes them as `points_to_evaluate`) only
    records the entries as queued; `enqueue=False` (a restored Ray experiment, whose searcher
    is not built again) leaves them for a later run."""
    lines = []
    attrs = study.user_attrs
    if warm is not None:
        done = {entry.get("source"): entry for entry in attrs.get(WARM_STARTED_FROM_ATTR) or []}
        if warm.source in done:
            lines.append(
                f"warm start from {warm.source}: done by an earlier run "
                f"({done[warm.source].get('taken', 0)} trials)"
            )
        else:
            study.add_trials(warm.trials)
            history = [*done.values(), {"source": warm.source, "taken": len(warm.trials)}]
            study.set_user_attr(WARM_STARTED_FROM_ATTR, history)
            lines.append(warm.summary)
    queued = entries_to_queue(spec, attrs) if enqueue else []
    for index, entry in queued if queue else ():
        study.enqueue_trial(entry, user_attrs={ENQUEUED_ATTR: index})
    if queued:
        keys = [*(attrs.get(ENQUEUED_CONFIGS_ATTR) or []), *(config_key(e) for _, e in queued)]
        study.set_user_attr(ENQUEUED_CONFIGS_ATTR, keys)
        lines.append(f"queued {len(queued)} configuration(s) of enqueue: to run first")
    elif spec.enqueue and not enqueue:
        lines.append("enqueue: a restored experiment keeps its searcher; not queued now")
    elif spec.enqueue:
        lines.append(
            f"enqueue: all {len(spec.enqueue)} configuration(s) were queued by an earlier run"
        )
    return lines, [entry for _, entry in queued]


def start_study(
    spec: StudySpec,
    study: optuna.Study,
    engine: Any,
    rerun: Rerun,
    stored_attrs: dict[str, Any] | None,
    warm: WarmStart | None,
    *,
    queue: bool = True,
    enqueue: bool = True,
) -> tuple[list[str], list[dict[str, Any]]]:
    """At the start of a run: record the study file (and what changed in its space), add the
    warm-start trials and queue the `enqueue:` entries, under the study's lock so that two
    `hpo run`s of one study do each once. Returns (the lines to print, the entries queued
    now; see `apply_to_study` for `queue`)."""
    from hpo.storage.study_lock import study_lock

    with study_lock(engine, spec.name):
        lines = record(rerun, study.set_user_attr, stored_attrs)
        applied, queued = apply_to_study(spec, study, warm, queue=queue, enqueue=enqueue)
        return lines + applied, queued


def warm_start_copies(trials: list[Any]) -> list[Any]:
    """The study's COMPLETE warm-start copies (to seed a searcher that starts empty)."""
    return [t for t in trials if WARM_START_ATTR in t.user_attrs and t.state.name == "COMPLETE"]
