"""Time to the same quality: `hpo run` against what a Transformers user runs instead.

Three contenders, each a whole process timed from launch to exit (imports included), on the
task of bench/studies/hpo_vs_transformers.yaml (a 2-layer character GPT-2 on CPython's
documentation topics, 20 trials of 300 steps, eval every 50), the file all three read:
  (a) `python bench/hf_search.py --backend optuna`: Trainer.hyperparameter_search at its
      defaults (MedianPruner, TPE seeded), its trials written to an SQLite storage;
  (b) `python bench/hf_search.py --backend ray`: the same with Ray Tune, ASHAScheduler passed
      as `scheduler=`, one CPU per trial;
  (c) `hpo run study.yaml` with the project's defaults.
Each seed runs the three alone, one after the other, in a rotating order (seed 0: a b c,
seed 1: b c a, seed 2: c a b), with the seed as sampler and training seed of all three.

For each seed it prints each contender's wall time and final best eval_loss and, against each
peer, the time-to-quality ratio: the peer's wall time divided by the moment `hpo run`'s
best-so-far first reaches that peer's final best + 0.03 (never: "missed"), and the gap between
the final bests; then the medians over seeds against the targets (>= 3x, <= +0.03). The
best-so-far curves come from the trials' timestamps in each contender's own records (the
Optuna storages' datetime_complete; Ray Tune's result.json, whose timestamps are whole
seconds), measured from the launch of its process.

The records go to bench/results/time_to_target.json, and the figure of one seed (best-so-far
against wall-clock seconds, each run's end marked) to docs/time-to-target.png, drawn with
plotly and photographed in headless Chromium as `hpo report --png` does.

Run (on a quiet machine: the load average is printed before and after):
  python bench/hpo_vs_transformers.py                 (seeds 0,1,2: nine 20-trial searches)
  python bench/hpo_vs_transformers.py --plot-only     (the PNG again, from the JSON)
  python bench/hpo_vs_transformers.py --smoke         (4 trials of 40 steps, eval every 20,
                                                       seed 0: a check that all three paths run,
                                                       not figures; its files go to a temp dir)
It prints tables; it asserts nothing.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` and `hpo` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    BENCH_DIR,
    REPO_ROOT,
    finished_trials,
    first_reach_s,
    load_line,
    machine_line,
    median_range,
    read_study,
    table,
    write_study,
)

STUDY = "hpo_vs_transformers"
SLACK = 0.03  # hpo's best may be worse than a peer's by at most this much
TARGET_RATIO = 3.0
RECORDS = BENCH_DIR / "results" / "time_to_target.json"
FIGURE = REPO_ROOT / "docs" / "time-to-target.png"
LABELS = {
    "a": "hyperparameter_search(backend='optuna')",
    "b": "hyperparameter_search(backend='ray'), ASHA",
    "c": "hpo run",
}
PEERS = ("a", "b")


def rotation(index: int) -> str:
    """The order the contenders run in for the index-th seed: each goes first once in three."""
    shift = index % 3
    return "abc"[shift:] + "abc"[:shift]


def seeded(base: dict[str, Any], seed: int) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    doc["sampler"] = {**doc.get("sampler", {}), "seed": seed}
    doc["training"]["seed"] = seed
    return doc


# ---------------------------------------------------------------------------------------------
# One contender: a process, timed whole, then its trials read back from its own records.


def command_for(key: str, study: Path, folder: Path) -> list[str]:
    if key == "c":
        return [sys.executable, "-m", "hpo.cli", "run", str(study)]
    peer = [sys.executable, str(BENCH_DIR / "hf_search.py"), str(study)]
    if key == "a":
        return [*peer, "--backend", "optuna", "--storage", storage_of(folder, study)]
    return [*peer, "--backend", "ray", "--ray-dir", str(folder / "ray")]


def storage_of(folder: Path, study: Path) -> str:
    return f"sqlite:///{folder / (study.stem + '.db')}"


def run_contender(key: str, doc: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Launch one contender as a fresh process; returns its wall time, best and curve points."""
    study = write_study(doc, folder)  # storage and output_dir inside `folder`
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    # (b) starts its own local Ray, as a user's script does on a quiet machine: ray.init() with
    # no address would join the latest cluster it finds on this one (/tmp/ray), a test's or
    # another user's; "local" makes it start a fresh one.
    env["RAY_ADDRESS"] = "local"
    started_at, started_unix = dt.datetime.now(), time.time()
    start = time.perf_counter()
    proc = subprocess.run(
        command_for(key, study, folder),
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall_s = time.perf_counter() - start
    (folder / "output.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    if proc.returncode != 0:
        print((proc.stdout + proc.stderr)[-4000:], file=sys.stderr)
        raise SystemExit(f"bench: ({key}) {LABELS[key]} exited with {proc.returncode}")
    if key == "b":
        points = ray_points(folder / "ray" / doc["name"], started_unix)
    else:
        trials = finished_trials(storage_of(folder, study), doc["name"], started_at)
        points = [(t.elapsed_s, t.value) for t in trials if t.state == "COMPLETE"]
    reported = reported_best(proc.stdout)
    best = reported if reported is not None else min((v for _, v in points), default=None)
    return {"label": LABELS[key], "wall_s": wall_s, "best": best, "points": points}


def ray_points(experiment: Path, started_unix: float) -> list[tuple[float, float]]:
    """(seconds from launch, value) per Ray Tune trial, from the last line of its result.json.

    A trial's value is its last reported objective, early-stopped or not: the scope
    (RAY_SCOPE="last") hyperparameter_search picks its best run by.
    """
    points = []
    for result in sorted(experiment.glob("*/result.json")):
        lines = [line for line in result.read_text(encoding="utf-8").splitlines() if line.strip()]
        if lines:
            last = json.loads(lines[-1])
            points.append((float(last["timestamp"]) - started_unix, float(last["objective"])))
    return sorted(points)


def reported_best(stdout: str) -> float | None:
    """The objective of the BestRun a peer printed (`best: {json}`); None for `hpo run`."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("best: "):
            return float(json.loads(line[len("best: ") :])["objective"])
    return None


# ---------------------------------------------------------------------------------------------
# The measure


def compare(sides: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Against each peer: the time-to-quality ratio and hpo's final best minus the peer's."""
    hpo = sides["c"]
    out: dict[str, dict[str, float | None]] = {}
    for peer in PEERS:
        best = sides[peer]["best"]
        reach = first_reach_s(hpo["points"], best + SLACK) if best is not None else None
        gap = hpo["best"] - best if hpo["best"] is not None and best is not None else None
        ratio = sides[peer]["wall_s"] / reach if reach else None
        out[peer] = {"reach_s": reach, "ratio": ratio, "gap": gap}
    return out


def verdict(value: float | None, met: bool) -> str:
    return "missed" if value is None or not met else "met"


def print_seed(row: dict[str, Any]) -> None:
    sides, vs = row["contenders"], row["compare"]
    print(f"\n== seed {row['seed']} (order {' '.join(row['order'])})")
    print(
        table(
            ["contender", "wall s", "final best", "trials with a value"],
            [
                [f"({k}) {s['label']}", s["wall_s"], s["best"], len(s["points"])]
                for k, s in sides.items()
            ],
        )
    )
    for peer in PEERS:
        v = vs[peer]
        ratio = f"{v['ratio']:.2f}x" if v["ratio"] else "- (never within reach)"
        gap = f"{v['gap']:+.4f}" if v["gap"] is not None else "- (none complete)"
        ratio_met = v["ratio"] is not None and v["ratio"] >= TARGET_RATIO
        gap_met = v["gap"] is not None and v["gap"] <= SLACK
        print(
            f"vs ({peer}): (c) first within ({peer})'s best + {SLACK}: {_s(v['reach_s'])}; "
            f"ratio {ratio}, target >= {TARGET_RATIO:g}x: {verdict(v['ratio'], ratio_met)}; "
            f"final best gap (c)-({peer}) {gap}, target <= +{SLACK}: {verdict(v['gap'], gap_met)}"
        )


def print_medians(rows: list[dict[str, Any]]) -> None:
    print(f"\n== over {len(rows)} seed(s): per seed, then the median")
    body = []
    for row in rows:
        line: list[Any] = [row["seed"], " ".join(row["order"])]
        line += [row["contenders"][k]["wall_s"] for k in "abc"]
        line += [row["contenders"][k]["best"] for k in "abc"]
        line += [row["compare"][p]["ratio"] for p in PEERS]
        line += [row["compare"][p]["gap"] for p in PEERS]
        body.append(line)
    headers = ["seed", "order", "(a) s", "(b) s", "(c) s", "(a) best", "(b) best", "(c) best"]
    headers += ["ratio vs (a)", "ratio vs (b)", "gap vs (a)", "gap vs (b)"]
    print(table(headers, body))
    for peer in PEERS:
        # A seed where hpo never came within reach counts as a ratio of 0 (a miss).
        ratios = [row["compare"][peer]["ratio"] or 0.0 for row in rows]
        gaps = [row["compare"][peer]["gap"] for row in rows]
        ratio = statistics.median(ratios)
        gap = statistics.median(g for g in gaps if g is not None) if None not in gaps else None
        print(
            f"vs ({peer}) {LABELS[peer]}: time-to-quality ratio {median_range(ratios)}: "
            f"median {ratio:.2f}x, target >= {TARGET_RATIO:g}x: "
            f"{verdict(ratio, ratio >= TARGET_RATIO)}; final best gap "
            f"{'-' if gap is None else f'{gap:+.4f}'}, target <= +{SLACK}: "
            f"{verdict(gap, gap is not None and gap <= SLACK)}"
        )


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


# ---------------------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--smoke", action="store_true", help="4 trials, 40 steps, 1 seed")
    parser.add_argument("--only", help="run these contenders only, e.g. `c` (no comparison)")
    parser.add_argument("--plot-only", action="store_true", help="the PNG from --records")
    parser.add_argument("--records", type=Path, help=f"the JSON (default {RECORDS})")
    parser.add_argument("--figure", type=Path, help=f"the PNG (default {FIGURE})")
    parser.add_argument("--figure-seed", type=int, help="the seed drawn (default: the first)")
    parser.add_argument("--workdir", type=Path, help="keep each run's files here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    opts = parse(argv)
    if opts.smoke:  # its records and figure never overwrite the real ones
        opts.workdir = opts.workdir or Path(tempfile.mkdtemp(prefix="hpo-bench-smoke-"))
        opts.records = opts.records or opts.workdir / "time_to_target.json"
        opts.figure = opts.figure or opts.workdir / "time-to-target.png"
        if opts.seeds == "0,1,2":
            opts.seeds = "0"
    records, figure = opts.records or RECORDS, opts.figure or FIGURE
    if opts.plot_only:
        return plot(json.loads(records.read_text(encoding="utf-8")), figure, opts.figure_seed)

    base = read_study(STUDY)
    if opts.smoke:
        base["budget"]["n_trials"] = 4
        base["training"].update(max_steps=40, eval_steps=20)
    only = set(opts.only or "abc")
    if not only <= set("abc"):
        raise SystemExit(f"bench: --only {opts.only!r}: give some of a, b, c (e.g. --only c)")
    seeds = [int(x) for x in opts.seeds.split(",") if x.strip()]
    training = base["training"]
    print(
        f"task: GPT-2 {base['model']['config']}, {base['budget']['n_trials']} trials, "
        f"max_steps {training['max_steps']}, eval_steps {training['eval_steps']}"
    )
    before = load_line()
    print(f"before: {before}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="hpo-bench-") as tmp:
        root = opts.workdir or Path(tmp)
        for index, seed in enumerate(seeds):
            doc, order = seeded(base, seed), [k for k in rotation(index) if k in only]
            sides = {}
            for key in order:
                print(f"seed {seed}: ({key}) {LABELS[key]} ...", flush=True)
                sides[key] = run_contender(key, doc, root / f"seed{seed}" / key)
                print(f"  {sides[key]['wall_s']:.1f} s, best {sides[key]['best']}", flush=True)
            row = {"seed": seed, "order": order, "contenders": dict(sorted(sides.items()))}
            if only == set("abc"):
                row["compare"] = compare(sides)
                print_seed(row)
            rows.append(row)
    after = load_line()
    if only == set("abc"):
        print_medians(rows)
    print(f"measured: {machine_line()}")
    print(f"after: {after}")
    record = {
        "measured": machine_line(),
        "date": dt.date.today().isoformat(),
        "load_before": before,
        "load_after": after,
        "smoke": bool(opts.smoke),
        "task": {"n_trials": base["budget"]["n_trials"], **training, "space": base["space"]},
        "labels": LABELS,
        "slack": SLACK,
        "seeds": rows,
    }
    records.parent.mkdir(parents=True, exist_ok=True)
    records.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"records -> {records}")
    return plot(record, figure, opts.figure_seed) if only == set("abc") else 0


def plot(record: dict[str, Any], figure: Path, seed: int | None) -> int:
    from bench.ttt_figure import write_png
    from hpo.errors import HpoError

    try:
        print(f"figure -> {write_png(record, figure, seed)}")
    except HpoError as error:  # no Chromium: the records stay; --plot-only makes it later
        print(f"bench: figure not written: {error}; then run with --plot-only", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
