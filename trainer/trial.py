"""The one place that knows what an optuna.Trial or a Ray Tune config dict is.

optuna and ray are imported only when a trial of theirs is actually handled, so `import trainer`
loads neither. A trial's params that are TrainingArguments fields go onto a copy of the args
(before seeding and before model_init); the others are for model_init, which must read them.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from trainer.args import TrainingArguments, field_names
from trainer.callbacks import objective_name
from trainer.compat import in_tune_session
from trainer.keys import STEP_KEY


class Reporter(Protocol):
    """How the training loop talks to a search backend at each evaluation."""

    # True when report() needs a checkpoint directory written at that evaluation (Ray Tune).
    needs_checkpoint: bool

    def report(
        self, metrics: dict[str, float], step: int, checkpoint_dir: str | None, final: bool = False
    ) -> None:
        """One evaluation's metrics; `final` when it is the run's last step."""

    def should_stop(self) -> bool: ...

    def on_stop(self) -> None:
        """Called after the loop has ended cleanly; may raise (optuna.TrialPruned)."""

    def resume_checkpoint(self) -> str | None: ...


# hyperparameter_search's compute_objective: the metrics of one evaluation -> the objective.
ComputeObjective = Callable[[dict[str, float]], float]


class OptunaReporter:
    needs_checkpoint = False

    def __init__(
        self, trial: Any, objective_metric: str, compute_objective: ComputeObjective | None = None
    ) -> None:
        self.trial = trial
        self.objective_metric = objective_metric
        self.compute_objective = compute_objective
        self.pruned_at: tuple[int, float] | None = None

    def report(
        self, metrics: dict[str, float], step: int, checkpoint_dir: str | None, final: bool = False
    ) -> None:
        if self.compute_objective is not None:
            value = float(self.compute_objective(dict(metrics)))
        else:
            value = float(_objective(metrics, self.objective_metric))
        self.trial.report(value, step)
        # A trial that has trained its last step is not pruned there: pruning it would throw
        # away a finished model (a rung can fall on max_steps) and its value on the full set.
        if not final and self.trial.should_prune():
            self.pruned_at = (step, value)

    def should_stop(self) -> bool:
        return self.pruned_at is not None

    def on_stop(self) -> None:
        if self.pruned_at is not None:
            import optuna

            step, value = self.pruned_at
            raise optuna.TrialPruned(f"pruned at step {step} ({self.objective_metric}={value:.6g})")

    def resume_checkpoint(self) -> str | None:
        return None


class RayReporter:
    needs_checkpoint = True

    def __init__(
        self, objective_metric: str, compute_objective: ComputeObjective | None = None
    ) -> None:
        self.objective_metric = objective_metric
        self.compute_objective = compute_objective

    def report(
        self, metrics: dict[str, float], step: int, checkpoint_dir: str | None, final: bool = False
    ) -> None:
        from ray import tune

        row: dict[str, Any] = {**metrics, STEP_KEY: step}
        if self.compute_objective is not None:
            # Transformers' hyperparameter_search reports its objective under this name.
            row["objective"] = float(self.compute_objective(dict(metrics)))
        else:
            _objective(metrics, self.objective_metric)  # fail loudly if it is missing
        checkpoint = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        tune.report(row, checkpoint=checkpoint)

    def should_stop(self) -> bool:
        return False  # Tune's schedulers stop a trial themselves

    def on_stop(self) -> None:
        return None

    def resume_checkpoint(self) -> str | None:
        from ray import tune

        checkpoint = tune.get_checkpoint()
        return checkpoint.to_directory() if checkpoint is not None else None


def _objective(metrics: Mapping[str, float], name: str) -> float:
    if name not in metrics:
        raise ValueError(
            f"the objective metric {name!r} is not among the evaluation metrics {sorted(metrics)}; "
            "set metric_for_best_model to one of them"
        )
    return metrics[name]


def is_optuna_trial(trial: Any) -> bool:
    optuna = sys.modules.get("optuna")  # an optuna trial cannot exist unless optuna is loaded
    return optuna is not None and isinstance(trial, optuna.trial.BaseTrial)


def reporter_for(
    trial: Any, objective_metric: str, compute_objective: ComputeObjective | None = None
) -> Reporter | None:
    """The reporter for a trial: optuna (single objective), Ray Tune (inside a Tune session),
    or None (no trial, a multi-objective optuna study, a plain dict outside Tune). With
    `compute_objective` (hyperparameter_search) it, not the named metric, gives the value."""
    if trial is None:
        return None
    if is_optuna_trial(trial):
        study = getattr(trial, "study", None)
        if study is not None and len(study.directions) > 1:
            return None  # optuna cannot prune multi-objective trials (trial.report refuses)
        return OptunaReporter(trial, objective_metric, compute_objective)
    if isinstance(trial, Mapping):
        return RayReporter(objective_metric, compute_objective) if in_tune_session() else None
    raise ValueError(
        f"trial={type(trial).__name__}: train(trial=...) takes an optuna.Trial or a Ray Tune "
        "config dict"
    )


def trial_params(trial: Any) -> dict[str, Any]:
    if trial is None:
        return {}
    if is_optuna_trial(trial):
        return dict(trial.params)
    if isinstance(trial, Mapping):
        return dict(trial)
    raise ValueError(
        f"trial={type(trial).__name__}: train(trial=...) takes an optuna.Trial or a Ray Tune "
        "config dict"
    )


class RecordingParams(Mapping[str, Any]):
    """A read-only view of trial params that remembers which keys were read."""

    def __init__(self, params: Mapping[str, Any], reads: set[str]) -> None:
        self._params = dict(params)
        self._reads = reads

    def __getitem__(self, key: str) -> Any:
        value = self._params[key]
        self._reads.add(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def copy(self) -> dict[str, Any]:
        self._reads.update(self._params)
        return dict(self._params)


class RecordingTrial:
    """An optuna trial for model_init: `.params` records reads, and so does `suggest_*`."""

    def __init__(self, trial: Any, reads: set[str]) -> None:
        self._trial = trial
        self._reads = reads

    @property
    def params(self) -> RecordingParams:
        return RecordingParams(self._trial.params, self._reads)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._trial, name)
        if name.startswith("suggest_") and callable(attribute):

            def suggest(param_name: str, *args: Any, **kwargs: Any) -> Any:
                self._reads.add(param_name)
                return attribute(param_name, *args, **kwargs)

            return suggest
        return attribute


@dataclass
class TrialPlan:
    """What train() needs from a trial: the args copy, the model params, the reporter."""

    args: TrainingArguments
    trial: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    model_keys: frozenset[str] = frozenset()
    reporter: Reporter | None = None
    trial_name: str | None = None

    def call_model_init(self, model_init: Callable[..., Any]) -> Any:
        """Calls model_init with no argument or with a recording view of the trial, then checks
        that every param meant for the model was read."""
        if _takes_no_arguments(model_init):
            if self.model_keys:
                raise ValueError(
                    f"trial params {sorted(self.model_keys)} are not TrainingArguments fields and "
                    "model_init takes no arguments, so nothing reads them; give model_init a "
                    "`trial` parameter and read them there"
                )
            return model_init()
        reads: set[str] = set()
        if self.trial is None:
            view: Any = None
        elif is_optuna_trial(self.trial):
            view = RecordingTrial(self.trial, reads)
        else:
            view = RecordingParams(self.params, reads)
        model = model_init(view)
        unread = sorted(self.model_keys - reads)
        if unread:
            raise ValueError(
                f"trial params {unread} are neither TrainingArguments fields nor read by "
                "model_init; fix their names or read them in model_init(trial)"
            )
        return model


def _takes_no_arguments(function: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return not any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in parameters
    )


def plan_trial(
    args: TrainingArguments,
    trial: Any,
    model_init: Callable[..., Any] | None,
    *,
    has_model: bool,
    compute_objective: ComputeObjective | None = None,
) -> TrialPlan:
    params = trial_params(trial)
    field_params = {key: value for key, value in params.items() if key in field_names(args)}
    model_keys = frozenset(params) - frozenset(field_params)
    if model_keys and model_init is None:
        raise ValueError(
            f"trial params {sorted(model_keys)} are not TrainingArguments fields and there is no "
            "model_init to read them; pass model_init=, or fix the param names"
        )
    try:
        trial_args = dataclasses.replace(args, **field_params) if field_params else args
    except ValueError as error:
        raise ValueError(
            f"trial params {field_params} give invalid TrainingArguments: {error}"
        ) from error
    name = None
    if is_optuna_trial(trial):
        name = f"trial-{trial.number}"
    return TrialPlan(
        args=trial_args,
        trial=trial,
        params=params,
        model_keys=model_keys,
        reporter=reporter_for(trial, objective_name(trial_args), compute_objective),
        trial_name=name,
    )
