"""`enqueue`: configurations trained first, each checked against the space.

Each entry is a mapping of parameter names to values. On the Optuna backend an entry may name
only some parameters (the sampler draws the rest, as `study.enqueue_trial` does); Ray's
OptunaSearch takes whole points only, so with `backend: ray` and `sampler: tpe` every entry
names every parameter. Each entry is queued once over every run of the study
(`hpo.backends.warm_start`).
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
) -> tuple[dict[str, Any], ...]:
    """The entries as the space holds them; a problem for each name or value that does not fit."""
    raw = reader.raw.get("enqueue")
    if raw is None:
        return ()
    problems = reader.problems
    if not isinstance(raw, list) or not raw:
        problems.found("enqueue", raw, ENQUEUE_HELP)
        return ()
    # A parameter whose own definition is wrong is reported under space: already.
    defined = reader.raw.get("space") if isinstance(reader.raw.get("space"), dict) else {}
    usable = tuple(space)
    usable_names = {p.name for p in usable}
    whole_points = backend == "ray" and sampler == "tpe"
    entries: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(raw):
        path = f"enqueue[{index}]"
        if not isinstance(entry, dict) or not entry:
            problems.found(path, entry, "a mapping of {parameter: value}")
            continue
        judged = {
            name: value
            for name, value in entry.items()
            if name in usable_names or name not in defined
        }
        fitted, reasons = fit_config(judged, usable, complete=whole_points)
        for reason in reasons:
            if reason.startswith("no value for"):
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
