"""A search space written in Python: `space: package.module:function` in the study file.

The function has the signature of `Trainer.hyperparameter_search`'s `hp_space`: it gets an
`optuna.Trial`, suggests on it (define-by-run: what it suggests may depend on what it drew
before) and returns the trial's {TrainingArguments field or `model.<key>`: value}.

The storage records what the function *suggested* (its optuna params, with their
distributions), as for any optuna study; what a trial trains with is what the function
*returns*. The two can differ (`lr = trial.suggest_float("lr", ...)` returned as
`learning_rate`, or a value derived from several suggestions), so every place that turns a
trial into training settings (the objective on both backends, `hpo export`) replays the
function on an `optuna.trial.FixedTrial` of the stored params: the same function on the same
params returns the same dict, with no second source of truth to keep in step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from hpo.errors import HpoError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from optuna.distributions import BaseDistribution

SPACE_KEY = "space"


def load_space_function(ref: str) -> Callable[[Any], Any]:
    """The function `ref` names ("package.module:function"), imported like a model factory."""
    from hpo.data.factory import load_factory

    return load_factory(ref, SPACE_KEY)


def returned_params(ref: str, result: Any) -> dict[str, Any]:
    """The function's return value as a params dict; HpoError naming the function otherwise."""
    if not isinstance(result, Mapping):
        raise HpoError(
            f"space: {ref} returned {type(result).__name__}; expected a dict of "
            "{TrainingArguments field or model.<key>: value}, as hyperparameter_search's hp_space"
        )
    bad = [key for key in result if not isinstance(key, str)]
    if bad:
        raise HpoError(f"space: {ref} returned keys {bad!r}; expected names (text)")
    return dict(result)


def replay(
    ref: str, params: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, BaseDistribution]]:
    """(what the function returns, the distributions it suggests from) for a trial whose
    suggested params are `params`."""
    from optuna.trial import FixedTrial

    trial = FixedTrial(dict(params))
    try:
        result = load_space_function(ref)(trial)
    except HpoError:
        raise
    except Exception as error:
        raise HpoError(
            f"space: {ref} raised {type(error).__name__}: {error} when replayed on the stored "
            f"params {dict(params)!r}"
        ) from error
    return returned_params(ref, result), dict(trial.distributions)


def training_params(ref: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """What a trial with the suggested `params` trains with: the function's returned dict."""
    return replay(ref, params)[0]


class SpaceFunction:
    """The function as Ray's `OptunaSearch(space=...)` define-by-run callable.

    Picklable by its reference (Tune pickles the searcher into its experiment state), and
    returning None: the Ray config is then exactly the suggested params, as the optuna
    backend stores them, and the trainable replays the function for the training settings.
    """

    def __init__(self, ref: str) -> None:
        self.ref = ref
        self._function: Callable[[Any], Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"ref": self.ref, "_function": None}

    def __call__(self, trial: Any) -> None:
        if self._function is None:
            self._function = load_space_function(self.ref)
        returned_params(self.ref, self._function(trial))
