"""Helpers shared by the benchmarks: study files, the `hpo` CLI as a subprocess, tables.

Benchmarks print figures; they never assert times. Everything here is plain and synchronous
so that what a benchmark measures is the thing it names, not this module.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
STUDIES_DIR = BENCH_DIR / "studies"


def read_study(name: str) -> dict[str, Any]:
    """The raw YAML document of `bench/studies/<name>.yaml` (a fresh copy each call)."""
    with open(STUDIES_DIR / f"{name}.yaml", encoding="utf-8") as handle:
        return copy.deepcopy(yaml.safe_load(handle))


def write_study(doc: dict[str, Any], directory: Path, storage: str | None = None) -> Path:
    """Write `doc` into `directory` with its storage and output_dir pointing inside it.

    A benchmark never touches the user's runs/ folder: every file it makes lives in a
    temporary directory that the caller removes.
    """
    directory.mkdir(parents=True, exist_ok=True)
    doc = copy.deepcopy(doc)
    doc["storage"] = storage or f"sqlite:///{directory / (doc['name'] + '.db')}"
    doc.setdefault("training", {})["output_dir"] = str(directory / "runs" / doc["name"])
    path = directory / f"{doc['name']}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@dataclass(frozen=True)
class CliRun:
    returncode: int
    wall_s: float
    started_at: dt.datetime  # local naive time, the same clock Optuna stamps trials with
    output: str


def run_hpo(args: Sequence[str], env: dict[str, str] | None = None, echo: bool = True) -> CliRun:
    """Run `hpo ARGS` as a fresh process (the way a user runs it) and time it whole."""
    command = [sys.executable, "-m", "hpo.cli", *args]
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), full_env.get("PYTHONPATH", "")) if p
    )
    started_at = dt.datetime.now()
    start = time.perf_counter()
    proc = subprocess.run(
        command, cwd=REPO_ROOT, env=full_env, capture_output=True, text=True, check=False
    )
    wall_s = time.perf_counter() - start
    output = proc.stdout + proc.stderr
    if echo and proc.returncode != 0:
        print(output[-4000:], file=sys.stderr)
    return CliRun(proc.returncode, wall_s, started_at, output)


@dataclass(frozen=True)
class FinishedTrial:
    number: int
    state: str  # "COMPLETE" | "PRUNED" | "FAIL" | ...
    value: float | None
    started_s: float  # seconds from the start of the run to this trial's start
    elapsed_s: float  # seconds from the start of the run to this trial's completion
    steps: int  # intermediate values reported (evaluations run)
    last_step: int  # the global step of its last report: the optimizer steps it trained


def finished_trials(storage: str, study_name: str, started_at: dt.datetime) -> list[FinishedTrial]:
    """Every finished trial of a study, in completion order, read back from its storage."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=study_name, storage=storage)
    rows = [
        FinishedTrial(
            number=t.number,
            state=t.state.name,
            value=t.value if t.state.name == "COMPLETE" else None,
            started_s=(t.datetime_start - started_at).total_seconds(),
            elapsed_s=(t.datetime_complete - started_at).total_seconds(),
            steps=len(t.intermediate_values),
            last_step=max(t.intermediate_values, default=0),
        )
        for t in study.get_trials(deepcopy=False)
        if t.datetime_complete is not None and t.datetime_start is not None
    ]
    return sorted(rows, key=lambda r: r.elapsed_s)


def first_reach_s(
    points: Sequence[tuple[float, float]], target: float, tolerance: float = 1e-9
) -> float | None:
    """The first time (s) at which a completed value <= target (minimization), else None."""
    hits = [elapsed for elapsed, value in points if value <= target + tolerance]
    return min(hits) if hits else None


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain fixed-width text table (Markdown-compatible, so it pastes into docs/BENCHMARKS.md)."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells
    ]
    return "\n".join([line, rule, *body])


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def load_line() -> str:
    """The load average (1, 5, 15 min): printed before and after every benchmark, because only
    figures measured on a quiet machine (load < 1 from start to end) count."""
    one, five, fifteen = os.getloadavg()
    quiet = "quiet" if one < 1 else "NOT quiet: figures do not count"
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} ({quiet})"


def median_range(values: Sequence[float]) -> str:
    """`median (min-max, n rounds)` of a benchmark's rounds."""
    import statistics

    if not values:
        return "-"
    return (
        f"{_fmt(statistics.median(values))} ({_fmt(min(values))}-{_fmt(max(values))}, "
        f"{len(values)} rounds)"
    )


def machine_line() -> str:
    """One line naming what the figures were measured on, for the tables of docs/BENCHMARKS.md."""
    import platform

    import torch

    # The load average matters: on a shared machine, torch's OpenMP threads slow down many
    # times over once the cores are oversubscribed, so figures taken under load mislead.
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{dt.date.today().isoformat()}, {os.cpu_count()} cores, {platform.machine()}, "
        f"python {platform.python_version()}, torch {torch.__version__}, load average {load}"
    )
