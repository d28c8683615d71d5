"""What a study gets without asking: the default sampler, pruner and scheduler."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

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
    """ASHA counted in evaluations (Tune's `training_iteration`: one per report).

    The grace period is the first evaluation; `max_t` is the number of evaluations in a run
    when max_steps and eval_steps are known.
    """
    eval_steps = training.get("eval_steps")
    max_steps = training.get("max_steps", -1)
    evaluations = 100
    if is_int(max_steps) and max_steps > 0 and is_int(eval_steps) and eval_steps >= 1:
        evaluations = max(1, math.ceil(max_steps / eval_steps))
    return ComponentSpec(
        "asha",
        {
            "time_attr": "training_iteration",
            "grace_period": 1,
            "max_t": evaluations,
            "reduction_factor": 3,
        },
    )
