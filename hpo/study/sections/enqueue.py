"""`enqueue`: configurations trained first, each checked against the space.

Each entry is a mapping of parameter names to values. On the Optuna backend an entry may name
only some parameters (the sampler draws the rest, as `study.enqueue_trial` does); Ray's
OptunaSearch over a flat space takes whole points only, so with `backend: ray` and
`sampler: tpe` every entry names every parameter. A conditional param is named only where
its `when` holds in the entry (a child without its parent would be dropped silently).

A Python space cannot be judged without running it: each entry is replayed through the
function on an `optuna.trial.FixedTrial` (`membership.fit_replayed`), so an entry names
every param the function suggests for it, each inside the distribution it is suggested
from. Each entry is queued once over every run of the study (`hpo.backends.warm_start`).
"""

from __future__ import annotations

from typing import Any

from hpo.search.membership import fit_config
from hpo.spec import BudgetSpec, ParamSpec
from hpo.study.problems import show
from hpo.study.reader import Reader

ENQUEUE_HELP = "a list of {parameter: value} mappings, e.g. [{learning_rate: 3.0e-4}]"


def read_enqueue(
    reader: Reader,
    space: tuple[ParamSpec, ...],
    *,
    backend: str,
    sampler: str,
    budget: BudgetSpec,
    space_function: str | None = None,
    replay: bool = False,
) -> tuple[dict[str, Any], ...]:
    """The entries as the space holds them; a problem for each name or value that does not fit.
    With a Python space, `replay` says the function loaded and ran (its dry run found no
    problem); without it the entries are checked for shape only."""
    raw = reader.raw.get("enqueue")
    if raw is None:
        return ()
    problems = reader.problems
    if not isinstance(raw, list) or not raw:
        problems.found("enqueue", raw, ENQUEUE_HELP)
        return ()
    # A parameter whose own definition is wrong is reported under space: already.
    defined: dict[str, Any] = (
        reader.raw["space"] if isinstance(reader.raw.get("space"), dict) else {}
    )
    usable = tuple(space)
    usable_names = {p.name for p in usable}
    define_by_run = space_function is not None or any(p.is_conditional for p in usable)
    whole_points = backend == "ray" and sampler == "tpe" and not define_by_run
    entries: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(raw):
        path = f"enqueue[{index}]"
        if not isinstance(entry, dict) or not entry:
            problems.found(path, entry, "a mapping of {parameter: value}")
            continue
        if space_function is not None:
            fitted, reasons = _fit_python_space(space_function, entry, replay, path)
        else:
            judged = {
                name: value
                for name, value in entry.items()
                if name in usable_names or name not in defined
            }
            fitted, reasons = fit_config(judged, usable, complete=whole_points)
        for reason in reasons:
            if space_function is not None:
                reason += "; change the entry or the space function"
            elif reason.startswith("no value for"):
                reason += " (with backend: ray and sampler: tpe each entry names every parameter)"
            elif reason.endswith("is not a parameter of the space"):
                reason += f"; the space has {', '.join(p.name for p in usable) or 'none'}"
            else:
                reason += "; change the entry or the space"
            problems.add(path, reason)
        if reasons:
            continue
        key = show(sorted(fitted.items()))
        if key in seen:
            problems.add(path, f"the same configuration as enqueue[{seen[key]}]; list it once")
            continue
        seen[key] = index
        entries.append(fitted)
    if budget.n_trials is not None and len(entries) > budget.n_trials:
        reader.warnings.append(
            f"enqueue lists {len(entries)} configurations but budget.n_trials is "
            f"{budget.n_trials}: the last {len(entries) - budget.n_trials} wait for a larger budget"
        )
    return tuple(entries)


def _fit_python_space(
    ref: str, entry: dict[str, Any], replay: bool, path: str
) -> tuple[dict[str, Any], list[str]]:
    if not replay:  # the function's own problems are reported under space:
        return dict(entry), []
    from hpo.search.membership import fit_replayed

    fitted, _, reasons = fit_replayed(ref, entry, what=path)
    if reasons and "is not found" in reasons[0]:
        reasons[0] += (
            " (with a Python space each entry names every param the function suggests for it)"
        )
    return fitted, reasons
