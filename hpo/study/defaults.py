"""What a study gets without asking: the default sampler, pruner and scheduler."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from hpo.attrs import STEP_KEY
from hpo.spec import ComponentSpec
from hpo.study.reader import is_int, is_number

# Evaluations during a search only rank trials for the pruner: a fixed subset of this many eval
# rows ranks them as well as the whole set at a fraction of the cost (on the bench study an
# evaluation of all 728 rows costs about 15 training steps; every 25 steps that is 40% of a
# trial). A trial that completes is evaluated once more on the whole eval set, and that is its
# value. A study that sets data.max_eval_samples evaluates that subset throughout.
SEARCH_EVAL_SAMPLES = 256


def default_sampler() -> ComponentSpec:
    """Seeded TPE: reproducible, and strong on small budgets."""
    return ComponentSpec("tpe", {"seed": 0})


def default_pruner(training: Mapping[str, Any]) -> ComponentSpec:
    """Successive halving on the evaluation grid, halving at each rung.

    Trials report at their global step, so `min_resource = eval_steps` judges a trial as soon
    as it has one value; rungs follow at 2x, 4x, 8x that. Chosen by replaying recorded learning
    curves of the bench study (bench/replay_pruners.py over bench/curves/): on a 10-trial
    budget (27 curves, 400 draws) it spends 0.58x the optimizer steps of Optuna's MedianPruner
    (transformers' default) and 0.71x those of Hyperband (the previous default, reduction
    factor 3), with the same median best value. A factor of 3 or 4, or a first rung at the first evaluation with
    Hyperband's brackets, either saved less or lost the best trial far more often.
    Without step-wise evaluation there is nothing to prune on, so pruning is off.
    """
    strategy = training.get("eval_strategy", "no")
    max_steps = training.get("max_steps", -1)
    max_steps = max_steps if is_int(max_steps) and max_steps > 0 else None
    if strategy == "epoch":
        min_resource = 1
    elif strategy == "steps":
        eval_steps = training.get("eval_steps") or training.get("logging_steps", 500)
        if is_number(eval_steps) and 0 < eval_steps < 1:  # a fraction of the run
            eval_steps = math.ceil(eval_steps * max_steps) if max_steps else 1
        min_resource = int(eval_steps) if is_number(eval_steps) and eval_steps >= 1 else 1
    else:
        return ComponentSpec("none")
    return ComponentSpec(
        "successive_halving",
        {"min_resource": min_resource, "reduction_factor": 2, "min_early_stopping_rate": 0},
    )


def default_scheduler(training: Mapping[str, Any]) -> ComponentSpec:
    """ASHA counted in optimizer steps (the global step every Ray report carries), like the
    default pruner: its first rung is the first evaluation and `max_t` is max_steps.

    Without a known evaluation grid it counts reports instead (Tune's `training_iteration`),
    with up to 100 of them.
    """
    eval_steps = training.get("eval_steps")
    max_steps = training.get("max_steps", -1)
    if is_int(max_steps) and max_steps > 0 and is_int(eval_steps) and 1 <= eval_steps <= max_steps:
        return ComponentSpec(
            "asha",
            {
                "time_attr": STEP_KEY,
                "grace_period": eval_steps,
                "max_t": max_steps,
                "reduction_factor": 3,
            },
        )
    return ComponentSpec(
        "asha",
        {
            "time_attr": "training_iteration",
            "grace_period": 1,
            "max_t": 100,
            "reduction_factor": 3,
        },
    )
