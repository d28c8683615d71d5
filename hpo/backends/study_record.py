"""What a study was started with, recorded on it, and what a rerun's study file changed.

The first run of a study records its space, objective and task (`STUDY_FILE_ATTR`, a study
user attr). A later run compares its own study file with that record before anything is
written: a changed objective or task would mix values that mean different things in one
study, so it is refused (exit 2, a new study name is the fix); a changed space continues, with
each difference printed and appended to `SPACE_CHANGES_ATTR`. One kind of space change is
refused too: Optuna keeps one kind of distribution per parameter in a study (float, int or
categorical with fixed choices, log or not), and its storage would refuse the first trial of
the new kind in the middle of the run.

Both backends call `check_rerun` on the storage they write (the Ray backend into its mirror's
study) and `record` once the study exists.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hpo.attrs import SPACE_CHANGES_ATTR, STUDY_FILE_ATTR
from hpo.errors import StudyFileError
from hpo.spec import ParamSpec, StudySpec


def param_record(param: ParamSpec) -> dict[str, Any]:
    """One parameter's definition as JSON, as the study file writes it (`when` included: a
    changed condition changes which trials have the param)."""
    if param.type == "categorical":
        record: dict[str, Any] = {"type": "categorical", "choices": list(param.choices)}
    else:
        record = {"type": param.type, "low": param.low, "high": param.high}
        if param.log:
            record["log"] = True
        if param.step is not None:
            record["step"] = param.step
    if param.when:
        record["when"] = {parent: list(values) for parent, values in param.when}
    return record


def fingerprint(spec: StudySpec) -> dict[str, Any]:
    """The space, objective and task of `spec`: what a rerun is compared with. A Python space
    is recorded by its reference (`space_function`; its params are known only by running it)."""
    recorded = {
        "objective": {
            "metrics": list(spec.objective.metrics),
            "directions": list(spec.objective.directions),
        },
        "task": spec.model.task,
        "space": {param.name: param_record(param) for param in spec.space},
    }
    if spec.space_function is not None:
        recorded["space_function"] = spec.space_function
    return recorded


@dataclass(frozen=True)
class Rerun:
    """What `check_rerun` found: the record to write, and the space's changes (if any)."""

    fingerprint: dict[str, Any]
    first_record: bool  # the study had no record yet (new, or started before records)
    space_changes: tuple[str, ...] = ()


def check_rerun(spec: StudySpec, stored_attrs: dict[str, Any] | None) -> Rerun:
    """Compare `spec` with the study's record (`stored_attrs`: its user attrs, None when the
    study does not exist yet); raises StudyFileError (exit 2) for a change that cannot continue.
    """
    current = fingerprint(spec)
    recorded = (stored_attrs or {}).get(STUDY_FILE_ATTR)
    if not isinstance(recorded, dict):
        return Rerun(current, first_record=True)
    problems = []
    if recorded.get("objective") != current["objective"]:
        problems.append(
            f"objective: the study {spec.name!r} was run for {_objective(recorded['objective'])}, "
            f"this file asks for {_objective(current['objective'])}"
        )
    if recorded.get("task") != current["task"]:
        problems.append(
            f"model.task: the study {spec.name!r} was run with task {recorded.get('task')!r}, "
            f"this file asks for {current['task']!r}"
        )
    old_space = recorded.get("space") or {}
    changes = space_changes(old_space, current["space"])
    old_function, new_function = recorded.get("space_function"), current.get("space_function")
    if old_function != new_function:
        changes.insert(0, f"space function {_show(old_function)} -> {_show(new_function)}")
    problems += [
        f"space.{name}: {why}" for name, why in incompatible_changes(old_space, current["space"])
    ]
    if problems:
        problems.append(
            "a study keeps the objective, task and kind of each parameter it was started with: "
            "give this study a new `name:` (`warm_start: {study: "
            f"{spec.name}}}` carries its fitting trials over), or restore the file"
        )
        raise StudyFileError(spec.source_path or "<study file>", problems)
    return Rerun(current, first_record=False, space_changes=tuple(changes))


def space_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Each added, removed or changed parameter, with old -> new."""
    lines = [f"added {name} ({_describe(new[name])})" for name in new if name not in old]
    lines += [f"removed {name} ({_describe(old[name])})" for name in old if name not in new]
    for name in new:
        if name in old and old[name] != new[name]:
            keys = dict.fromkeys([*old[name], *new[name]])
            diffs = [
                f"{key} {_show(old[name].get(key))} -> {_show(new[name].get(key))}"
                for key in keys
                if old[name].get(key) != new[name].get(key)
            ]
            lines.append(f"changed {name}: {', '.join(diffs)}")
    return lines


def incompatible_changes(old: dict[str, Any], new: dict[str, Any]) -> Iterable[tuple[str, str]]:
    """(name, why) for each change Optuna's storage refuses within one study."""
    for name, definition in new.items():
        before = old.get(name)
        if before is None:
            continue
        if before.get("type") != definition.get("type"):
            yield (
                name,
                (
                    f"type {before.get('type')} -> {definition.get('type')}: Optuna keeps one kind "
                    "of distribution per parameter in a study"
                ),
            )
        elif before.get("type") == "categorical" and before.get("choices") != definition.get(
            "choices"
        ):
            yield (
                name,
                (
                    f"choices {before.get('choices')} -> {definition.get('choices')}: Optuna keeps "
                    "the choices of a categorical parameter fixed in a study"
                ),
            )
        elif bool(before.get("log")) != bool(definition.get("log")):
            yield (
                name,
                (
                    f"log {bool(before.get('log'))} -> {bool(definition.get('log'))}: Optuna keeps "
                    "the scale of a parameter fixed in a study"
                ),
            )


def check_stored(spec: StudySpec) -> tuple[Rerun, dict[str, Any] | None]:
    """`check_rerun` against the study in `spec.storage`, and its user attrs (None: no study).
    Read by SQL: creates no SQLite file and no optuna tables."""
    from hpo.storage.reader import study_user_attrs

    stored = study_user_attrs(spec.storage, spec.name)
    return check_rerun(spec, stored), stored


def stored_study_attrs(storage: Any, study_name: str) -> dict[str, Any] | None:
    """The user attrs of the study in an open optuna storage; None when it does not exist."""
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return None
    return storage.get_study_user_attrs(study_id)


def record(
    rerun: Rerun, set_study_attr: Callable[[str, Any], None], stored_attrs: dict[str, Any] | None
) -> list[str]:
    """Write the record (and the space's changes) with `set_study_attr(key, value)`; returns
    the lines to print."""
    if not rerun.first_record and not rerun.space_changes:
        return []
    set_study_attr(STUDY_FILE_ATTR, rerun.fingerprint)
    if not rerun.space_changes:
        return []
    history = list((stored_attrs or {}).get(SPACE_CHANGES_ATTR) or [])
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    history.append({"at": now, "changes": list(rerun.space_changes)})
    set_study_attr(SPACE_CHANGES_ATTR, history)
    return ["the space changed since the study's last run (recorded on the study):"] + [
        f"  {line}" for line in rerun.space_changes
    ]


def _objective(objective: dict[str, Any]) -> str:
    pairs = zip(objective.get("metrics", []), objective.get("directions", []), strict=False)
    return ", ".join(f"{direction} {metric}" for metric, direction in pairs)


def _describe(definition: dict[str, Any]) -> str:
    if definition.get("type") == "categorical":
        return f"categorical {definition.get('choices')}"
    text = f"{definition.get('type')} {definition.get('low')!r}..{definition.get('high')!r}"
    if definition.get("log"):
        text += " log"
    if definition.get("step") is not None:
        text += f" step {definition['step']!r}"
    if definition.get("when"):
        text += f" when {definition['when']!r}"
    return text


def _show(value: Any) -> str:
    return "(none)" if value is None else repr(value)
