"""How the study runs: the `workers` (and where they train), `objective` and `budget` keys."""

from __future__ import annotations

from hpo.durations import DURATION_HELP, parse_duration
from hpo.spec import DIRECTIONS, BudgetSpec, ObjectiveSpec, PlacementSpec
from hpo.study.keys import BUDGET_KEYS, OBJECTIVE_KEYS
from hpo.study.reader import Reader


def read_workers(reader: Reader, cli_workers: int | None) -> int:
    """`workers` (default 1; `auto` counts as 1 here: the run places them), or `--workers`."""
    raw = reader.raw.get("workers")
    if raw == "auto":
        raw = None
    elif isinstance(raw, str):
        reader.problems.found("workers", raw, "an integer >= 1, or auto (one per GPU)")
        raw = None
    workers = reader.integer(raw, "workers", minimum=1, default=1)
    if cli_workers is not None:
        workers = reader.integer(cli_workers, "--workers", minimum=1, default=workers)
    return workers or 1


def read_placement(reader: Reader, cli_workers: int | None) -> PlacementSpec:
    """`workers: auto`, `devices`, `trials_per_device`, `trial_processes` (see
    hpo.backends.placement for how they become workers on GPUs)."""
    raw = reader.raw
    devices_raw = raw.get("devices")
    devices = None
    if devices_raw is not None:
        if isinstance(devices_raw, list) and all(
            reader.integer(d, "devices", minimum=0) is not None for d in devices_raw
        ):
            devices = tuple(devices_raw)
        elif not isinstance(devices_raw, list):
            reader.problems.found(
                "devices", devices_raw, "a list of GPU indices, e.g. [0, 1] ([] for CPU only)"
            )
    workers_raw = raw.get("workers")
    if isinstance(workers_raw, str) and workers_raw != "auto":
        workers_raw = None  # read_workers reports it
    auto = cli_workers is None and (
        workers_raw == "auto" or (workers_raw is None and devices is not None)
    )
    return PlacementSpec(
        auto=auto,
        devices=devices,
        trials_per_device=reader.integer(
            raw.get("trials_per_device"), "trials_per_device", minimum=1, default=1
        )
        or 1,
        trial_processes=reader.integer(
            raw.get("trial_processes"), "trial_processes", minimum=1, default=1
        )
        or 1,
    )


def read_objective(reader: Reader) -> ObjectiveSpec:
    """One or several metrics, each with its direction (minimize for a "...loss" metric)."""
    problems = reader.problems
    section = reader.mapping("objective")
    problems.unknown_keys(section, OBJECTIVE_KEYS, "objective")
    metrics = reader.text_list(
        section.get("metric", "eval_loss"),
        "objective.metric",
        "a metric name (e.g. eval_loss) or a list of them",
    )
    directions_raw = section.get("direction")
    if directions_raw is None:
        if all(m.endswith("loss") for m in metrics):
            directions_raw = ["minimize"] * len(metrics)
        else:
            problems.add(
                "objective.direction",
                f"missing for metric(s) {', '.join(metrics)}; expected minimize or maximize",
            )
            directions_raw = ["minimize"] * len(metrics)
    directions = reader.text_list(
        directions_raw, "objective.direction", "minimize | maximize, or a list"
    )
    for index, direction in enumerate(directions):
        path = (
            "objective.direction"
            if isinstance(directions_raw, str)
            else f"objective.direction[{index}]"
        )
        reader.choice(direction, path, DIRECTIONS)
    if metrics and directions and len(metrics) != len(directions):
        problems.add(
            "objective",
            f"{len(metrics)} metric(s) {metrics} but {len(directions)} direction(s) "
            f"{directions}; expected one direction per metric",
        )
    return ObjectiveSpec(tuple(metrics) or ("eval_loss",), tuple(directions) or ("minimize",))


def read_budget(reader: Reader, cli_n_trials: int | None) -> BudgetSpec:
    """n_trials (overridden by `--n-trials`), timeout as a duration, max_failed_trials."""
    problems = reader.problems
    section = reader.mapping("budget")
    problems.unknown_keys(section, BUDGET_KEYS, "budget")
    n_trials = reader.integer(section.get("n_trials"), "budget.n_trials", minimum=1)
    if cli_n_trials is not None:
        n_trials = reader.integer(cli_n_trials, "--n-trials", minimum=1, default=n_trials)
    timeout = None
    if section.get("timeout") is not None:
        try:
            timeout = parse_duration(section["timeout"])
        except ValueError:
            problems.found("budget.timeout", section["timeout"], DURATION_HELP)
        else:
            if timeout <= 0:
                problems.found("budget.timeout", section["timeout"], "a duration > 0")
                timeout = None
    max_failed = reader.integer(
        section.get("max_failed_trials"), "budget.max_failed_trials", minimum=0
    )
    return BudgetSpec(n_trials=n_trials, timeout_s=timeout, max_failed_trials=max_failed)


def warn_about_budget(reader: Reader, budget: BudgetSpec) -> None:
    """A study without n_trials or timeout runs until interrupted: legal, but worth saying."""
    if budget.n_trials is None and budget.timeout_s is None:
        reader.warnings.append(
            "budget: no n_trials and no timeout; the study runs until it is interrupted"
        )
