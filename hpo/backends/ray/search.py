"""The Ray backend's search algorithm: Tune's variant generator (`random`) or TPE (`tpe`).

A define-by-run space (conditional params, or a Python space) cannot be a Tune param space:
Tune draws every dimension of one. It goes to OptunaSearch as a define-by-run function
(`hpo.search.space.define_by_run`), with the study's sampler (random or TPE) built as on the
Optuna backend, so `sampler:` still decides how values are drawn.

TPE is Ray's OptunaSearch, told the truth about trials a scheduler stopped early: it would
tell them COMPLETE with their truncated value, and TPE would then model the space on values
of unfinished runs.
"""

from __future__ import annotations

from typing import Any

from ray.tune.search.optuna import OptunaSearch

from hpo.attrs import STEP_KEY
from hpo.backends.ray import ray_compat
from hpo.backends.ray.starts import SearchStarts
from hpo.spec import StudySpec


class TruthfulOptunaSearch(OptunaSearch):
    """OptunaSearch that tells its sampler PRUNED for trials a scheduler stopped early.

    Tune calls `on_trial_result` for every result except the one a scheduler answered with
    STOP; a trial whose last result the searcher never saw was stopped early, unless it had
    reached `max_steps` (the trainer's last step) by then.
    """

    def __init__(self, *args: Any, max_steps: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_steps = max_steps  # the trainer's last step: a trial there was not cut short
        self.seen_iterations: dict[str, Any] = {}  # trial id -> last training_iteration seen

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        super().on_trial_result(trial_id, result)
        self.seen_iterations[trial_id] = result.get("training_iteration")

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        if result is not None and not error and self._stopped_early(trial_id, result):
            ray_compat.tell_pruned(self, trial_id)
            return
        super().on_trial_complete(trial_id, result=result, error=error)

    def _stopped_early(self, trial_id: str, result: dict) -> bool:
        reached_end = self.max_steps is not None and result.get(STEP_KEY, 0) >= self.max_steps
        seen = self.seen_iterations.get(trial_id)
        return result.get("training_iteration") != seen and not reached_end


def build_search(
    spec: StudySpec,
    *,
    metric: str,
    mode: str,
    max_steps: int | None,
    starts: SearchStarts | None = None,
) -> tuple[Any, dict[str, Any]]:
    """(search_alg, param_space) for the Tuner: TPE draws the params itself; random, Tune's
    variant generator, draws them from the param space. Both evaluate `starts.points` first
    (Tune's `points_to_evaluate`); OptunaSearch is told `starts.evaluated` as finished trials
    (`add_evaluated_point`, what its `evaluated_rewards` calls, or for a define-by-run space,
    which that refuses, `ray_compat.add_finished_trials`)."""
    from ray.tune.search import BasicVariantGenerator

    from hpo.search.components import build_sampler
    from hpo.search.space import define_by_run, to_optuna_distributions, to_ray_param_space

    starts = starts or SearchStarts()
    if uses_optuna_search(spec):
        space = (
            define_by_run(spec) if spec.is_define_by_run else to_optuna_distributions(spec.space)
        )
        searcher = TruthfulOptunaSearch(
            space=space,
            metric=metric,
            mode=mode,
            sampler=build_sampler(spec.sampler, space=spec.space),
            max_steps=max_steps,
            points_to_evaluate=list(starts.points) or None,
        )
        if spec.is_define_by_run:
            # add_evaluated_point refuses a define-by-run space; each copy has its own
            # distributions (the params its trial had), so it goes into the study as it is.
            ray_compat.add_finished_trials(searcher, list(starts.evaluated))
        else:
            for trial in starts.evaluated:
                searcher.add_evaluated_point(trial.params, trial.values[0])
        return searcher, {}
    seed = spec.sampler.options.get("seed")
    # Tune applies max_concurrent_trials to Searchers only; the variant generator takes its own.
    generator = BasicVariantGenerator(
        random_state=seed,
        max_concurrent=spec.ray.get("max_concurrent_trials") or 0,
        points_to_evaluate=list(starts.points) or None,
    )
    return generator, to_ray_param_space(spec.space)


def uses_optuna_search(spec: StudySpec) -> bool:
    """Whether the study's Ray search is OptunaSearch (TPE, or any define-by-run space) rather
    than Tune's variant generator."""
    return spec.sampler.name == "tpe" or spec.is_define_by_run
