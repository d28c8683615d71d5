"""Which pruner spends the least compute for the same best value? Replayed over recorded curves.

bench/record_curves.py recorded every trial of the bench study trained to its end (random
params, no pruner). This script draws the 10-trial budget from those curves many times and
replays each draw through real Optuna pruners, as `hpo run` would see it: `workers` trials at
a time, each reporting its value at every evaluation (the last one included) in the order of
the steps they have trained, and stopped when the pruner says so. For each pruner it prints
the optimizer steps spent, the evaluations run, and the best final value found, next to
transformers' setup (Optuna's MedianPruner, one trial at a time) on the same draws.

The compute is counted, not timed, so the figures hold on a loaded machine too.

Run:  python bench/replay_pruners.py                     (400 draws)
      python bench/replay_pruners.py --draws 50          (a quick look)
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` and `hpo` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BENCH_DIR, table

CURVES = BENCH_DIR / "curves" / "hpo_vs_transformers.json"
SLACK = 0.03  # the best value may be worse than transformers' by at most this much


# Compute is counted in forward passes of one row: a training row costs about three (forward
# and backward), an evaluated row one.
TRAIN_ROW_COST = 3


@dataclass(frozen=True)
class Curve:
    batch_size: int
    points: list[tuple[int, float]]  # (global step, eval value) at every evaluation
    value: float  # the trial's value (on the whole eval set; the points may be on a subset)


@dataclass(frozen=True)
class EvalCost:
    search_rows: int  # rows of each evaluation during training
    final_rows: int  # rows of one more evaluation of a completed trial (0: none)


@dataclass(frozen=True)
class Outcome:
    steps: int  # optimizer steps trained, all trials together
    evaluations: int  # evaluations run, all trials together
    compute: int  # row-forward passes, training and evaluation (see TRAIN_ROW_COST)
    best: float  # the best final value of a trial that completed (inf if none did)
    completed: int


def replay(
    curves: list[Curve], make_pruner: Callable[[], Any], workers: int, cost: EvalCost
) -> Outcome:
    """Run `curves` (in this order) through a fresh in-memory study with the pruner.

    `workers` trials run at once; a worker's clock advances by the steps it trains, so the
    reports reach the pruner in the order they would on `workers` equally fast processes.
    """
    import optuna

    # A fixed name: Hyperband assigns brackets by a hash of the study name and trial number.
    study = optuna.create_study(
        study_name="replay", pruner=make_pruner(), sampler=optuna.samplers.RandomSampler(seed=0)
    )
    queue = list(enumerate(curves))
    events: list[tuple[int, int, int, int]] = []  # (time, worker, curve index, eval index)
    trials: dict[int, Any] = {}
    steps = evaluations = completed = compute = 0
    best = float("inf")

    def start(worker: int, now: int) -> None:
        if not queue:
            return
        index, curve = queue.pop(0)
        trials[index] = study.ask()
        heapq.heappush(events, (now + curve.points[0][0], worker, index, 0))

    for worker in range(workers):
        start(worker, 0)
    while events:
        now, worker, index, k = heapq.heappop(events)
        curve, trial = curves[index], trials[index]
        step, value = curve.points[k]
        trial.report(value, step)
        evaluations += 1
        compute += cost.search_rows
        if trial.should_prune():
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        elif k + 1 == len(curve.points):
            study.tell(trial, value)
            completed += 1
            compute += cost.final_rows
            best = min(best, curve.value)
        else:
            next_step = curve.points[k + 1][0]
            heapq.heappush(events, (now + next_step - step, worker, index, k + 1))
            continue
        steps += step
        compute += step * curve.batch_size * TRAIN_ROW_COST
        start(worker, now)
    return Outcome(steps, evaluations, compute, best, completed)


def load_curves(path: Path) -> list[Curve]:
    """The recorded curves that ran to max_steps."""
    record = json.loads(path.read_text(encoding="utf-8"))
    max_steps = int(record["training"]["max_steps"])
    batch = int(record["training"].get("per_device_train_batch_size", 8))
    pool = [
        Curve(
            int(c["params"].get("per_device_train_batch_size", batch)),
            [(int(s), float(v)) for s, v in c["curve"]],
            float(c.get("value", c["curve"][-1][1])),
        )
        for c in record["curves"]
    ]
    return [c for c in pool if c.points and c.points[-1][0] == max_steps]


def pruners(
    max_steps: int, eval_steps: int, n_eval: int
) -> dict[str, tuple[Callable[[], Any], int, EvalCost]]:
    """name -> (pruner factory, workers, eval cost). The first is the reference (transformers):
    every evaluation on the whole eval set; hpo's evaluate SEARCH_EVAL_SAMPLES rows and a
    completed trial's whole set once."""
    import optuna

    from hpo.search.components import build_pruner
    from hpo.study.defaults import SEARCH_EVAL_SAMPLES, default_pruner

    training = {"eval_strategy": "steps", "eval_steps": eval_steps, "max_steps": max_steps}
    default = default_pruner(training)
    full = EvalCost(n_eval, 0)
    ours = EvalCost(min(n_eval, SEARCH_EVAL_SAMPLES), n_eval if n_eval > SEARCH_EVAL_SAMPLES else 0)
    candidates: dict[str, tuple[Callable[[], Any], int, EvalCost]] = {
        "transformers: median, 1 worker": (optuna.pruners.MedianPruner, 1, full),
        "median, 2 workers": (optuna.pruners.MedianPruner, 2, ours),
        "none, 2 workers": (optuna.pruners.NopPruner, 2, ours),
        "hyperband rf3 (old default), 2 workers": (
            lambda: optuna.pruners.HyperbandPruner(
                min_resource=eval_steps, max_resource=max_steps, reduction_factor=3
            ),
            2,
            ours,
        ),
        f"default: {default.name} {dict(default.options)}, 2 workers": (
            lambda: build_pruner(default),
            2,
            ours,
        ),
    }
    for startup, warmup in ((2, 0), (2, eval_steps), (3, eval_steps)):
        name = f"median startup {startup} warmup {warmup}, 2 workers"
        candidates[name] = (
            lambda s=startup, w=warmup: optuna.pruners.MedianPruner(
                n_startup_trials=s, n_warmup_steps=w
            ),
            2,
            ours,
        )
    for rate in (2, 3, 4):
        for first in (1, 2):
            if first * eval_steps >= max_steps:
                continue
            name = f"successive_halving min {first * eval_steps} rf{rate}, 2 workers"
            candidates[name] = (
                lambda r=rate, f=first: optuna.pruners.SuccessiveHalvingPruner(
                    min_resource=f * eval_steps, reduction_factor=r
                ),
                2,
                ours,
            )
    return candidates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--curves", type=Path, default=CURVES)
    parser.add_argument("--draws", type=int, default=400)
    parser.add_argument("--n-trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args(argv)

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    record = json.loads(opts.curves.read_text(encoding="utf-8"))
    max_steps = int(record["training"]["max_steps"])
    eval_steps = int(record["training"]["eval_steps"])
    pool = load_curves(opts.curves)
    rng = random.Random(opts.seed)
    draws = [rng.sample(pool, min(opts.n_trials, len(pool))) for _ in range(opts.draws)]
    print(
        f"{len(pool)} recorded curves ({opts.curves.name}), {len(draws)} draws of "
        f"{opts.n_trials} trials, max_steps {max_steps}, eval_steps {eval_steps}"
    )

    results: dict[str, list[Outcome]] = {}
    n_eval = int(record["n_eval"])
    for name, (make_pruner, workers, cost) in pruners(max_steps, eval_steps, n_eval).items():
        results[name] = [replay(draw, make_pruner, workers, cost) for draw in draws]
    reference = results["transformers: median, 1 worker"]
    rows = []
    for name, outcomes in results.items():
        gaps = [o.best - r.best for o, r in zip(outcomes, reference, strict=True)]
        oracle = [o.best - min(c.value for c in d) for o, d in zip(outcomes, draws, strict=True)]
        steps = statistics.mean(o.steps for o in outcomes)
        compute = statistics.mean(o.compute for o in outcomes)
        rows.append(
            [
                name,
                steps,
                steps / statistics.mean(r.steps for r in reference),
                statistics.mean(o.evaluations for o in outcomes),
                compute / statistics.mean(r.compute for r in reference),
                statistics.median(gaps),
                sum(g > SLACK for g in gaps) / len(gaps),
                statistics.median(oracle),
            ]
        )
    print(
        table(
            [
                "pruner",
                "steps (mean)",
                "steps vs transformers",
                "evals (mean)",
                "compute vs transformers",
                "best gap vs transformers (median)",
                f"P(gap > {SLACK})",
                "gap to the draw's best (median)",
            ],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
