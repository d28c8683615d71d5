"""Every reliance of hpo on Ray Tune beyond its documented API, in one place.

Ray has no public way to tell an OptunaSearch trial PRUNED. Each such use is a small
function here, and tests/hpo/backends/ray/test_ray_compat.py checks every one against the
installed Ray, so that a Ray release that breaks one fails that test loudly instead of a study
at run time (or, worse, recording wrong trial states quietly).

Ray is imported only inside functions.
"""

from __future__ import annotations

from typing import Any


def tell_pruned(searcher: Any, trial_id: str) -> None:
    """Tell an `OptunaSearch`'s sampler that its trial `trial_id` was PRUNED.

    Uses OptunaSearch's own (public) `on_trial_complete`, called as the base class's so that
    a subclass's override is bypassed: given no result and no error, OptunaSearch tells its
    optuna trial PRUNED (optuna then records the last intermediate value as the value) and
    counts the trial as completed. That answer to a missing result is Ray's implementation,
    not its documentation, hence this function and its test.
    """
    from ray.tune.search.optuna import OptunaSearch

    OptunaSearch.on_trial_complete(searcher, trial_id, result=None, error=False)


def add_finished_trials(searcher: Any, trials: list[Any]) -> None:
    """Give an `OptunaSearch` over a define-by-run space finished trials (optuna FrozenTrials,
    each with its own distributions) to learn from.

    Its public way, `add_evaluated_point` (what `evaluated_rewards` calls), builds each trial
    from the searcher's space as a distribution dict, and raises TypeError when that space is a
    function. The searcher keeps its sampler's study in `_ot_study` (created in its constructor
    once it has a space, metric and mode); a trial added there is one the sampler sees, as a
    trial told through Tune would be. The attribute is Ray's implementation, hence this
    function and its test.
    """
    searcher._ot_study.add_trials(trials)
