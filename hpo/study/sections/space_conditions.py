"""`when:` on a space param: the conditions under which it exists, checked as a whole.

`when: {optim: adamw_torch}` (or `{optim: [adamw_torch, adamw_torch_fused]}`) makes the param
exist only in trials whose `optim` took one of those values; several parents must all hold.
A parent may itself be conditional (its child then exists only where both hold), as long as
no chain of conditions comes back to where it started. Each problem is reported: an unknown
parent, a value the parent can never take, a continuous parent (one exact float almost never
comes up), a cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hpo.search.membership import fit_value
from hpo.search.space import describe_range, is_gridable
from hpo.spec import ParamSpec
from hpo.study.problems import did_you_mean
from hpo.study.reader import Reader


def read_when(reader: Reader, name: str, value: Any) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """The shape of one param's `when`: {parent: value or [values]}; () when absent or bad."""
    path = f"space.{name}.when"
    if value is None:
        return ()
    if not isinstance(value, dict) or not value:
        reader.problems.found(path, value, "{param: value or [values]}, e.g. {optim: adamw_torch}")
        return ()
    conditions = []
    for parent, values in value.items():
        listed = values if isinstance(values, list) else [values]
        if not listed:
            reader.problems.found(f"{path}.{parent}", values, "a value or a non-empty list")
            continue
        conditions.append((str(parent), tuple(listed)))
    return tuple(conditions)


def check_conditions(reader: Reader, params: tuple[ParamSpec, ...], all_names: set[str]) -> None:
    """Every `when` against the whole space: parents exist, values are possible, no cycle.

    `all_names` are every param the file names (also those whose definition had a problem,
    so that a typo there is not reported twice as an unknown parent).
    """
    by_name = {param.name: param for param in params}
    for param in params:
        for parent, values in param.when:
            path = f"space.{param.name}.when.{parent}"
            if parent == param.name:
                reader.problems.add(path, "a param cannot depend on itself; remove it from when")
            elif parent not in all_names:
                hint = did_you_mean(parent, sorted(all_names))
                reader.problems.add(
                    path, f"unknown param {parent!r}{hint}; when: names params of this space"
                )
            elif parent in by_name:
                _check_values(reader, path, by_name[parent], values)
    cycle = _find_cycle(params)
    if cycle:
        reader.problems.add(
            f"space.{cycle[0]}.when",
            f"the conditions form a cycle ({' -> '.join(cycle)}), so none of them could ever "
            "be suggested first; remove one of these conditions",
        )


def _check_values(reader: Reader, path: str, parent: ParamSpec, values: tuple[Any, ...]) -> None:
    if not is_gridable(parent):
        reader.problems.add(
            path,
            f"{parent.name} is a continuous float, which almost never takes one exact value; "
            "condition on a categorical or int param (or give the float a step)",
        )
        return
    for value in values:
        if fit_value(parent, value)[1] is not None:
            reader.problems.add(
                path,
                f"{value!r} is a value {parent.name} never takes ({describe_range(parent)}), so "
                "the condition never holds; expected one of its values",
            )


def _find_cycle(params: tuple[ParamSpec, ...]) -> list[str]:
    """One cycle of conditions as [a, b, ..., a], or [] when there is none."""
    parents: Mapping[str, list[str]] = {
        p.name: [parent for parent, _ in p.when if parent != p.name] for p in params
    }
    state: dict[str, str] = {}  # name -> "visiting" | "done"

    def visit(name: str, trail: list[str]) -> list[str]:
        state[name] = "visiting"
        for parent in parents.get(name, []):
            if state.get(parent) == "visiting":
                return [*trail[trail.index(parent) :], parent] if parent in trail else []
            if parent in parents and state.get(parent) is None:
                found = visit(parent, [*trail, parent])
                if found:
                    return found
        state[name] = "done"
        return []

    for name in parents:
        if state.get(name) is None:
            found = visit(name, [name])
            if found:
                return found
    return []
