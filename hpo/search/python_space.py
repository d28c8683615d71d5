"""A search space written in Python: `space: package.module:function` in the study file.

The function has the signature of `Trainer.hyperparameter_search`'s `hp_space`: it gets an
`optuna.Trial`, suggests on it (define-by-run: what it suggests may depend on what it drew
before) and returns the trial's {TrainingArguments field or `model.<key>`: value}.

The storage records what the function *suggested* (its optuna params, with their
distributions), as for any optuna study; what a trial trains with is what the function
*returns*. The two can differ (`lr = trial.suggest_float("lr", ...)` returned as
`learning_rate`, or a value derived from several suggestions), so the places that turn a
stored trial into training settings (the optuna objective, `hpo export`, the Ray mirror for
the distributions) replay the function on an `optuna.trial.FixedTrial` of the stored params:
the same function on the same params returns the same dict, with no second source of truth
to keep in step. The function must therefore be deterministic given its trial's params. On
Ray, the driver puts the returned dict into the trial's config (`SpaceFunction`), so workers
never import the user's module.
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
    ref: str, params: Mapping[str, Any], *, what: str = "the stored params"
) -> tuple[dict[str, Any], dict[str, BaseDistribution]]:
    """(what the function returns, the distributions it suggests from) for a trial whose
    suggested params are `params` (`what` names them in an error)."""
    from optuna.trial import FixedTrial

    trial = FixedTrial(dict(params))
    try:
        result = load_space_function(ref)(trial)
    except HpoError:
        raise
    except Exception as error:
        raise HpoError(
            f"space: {ref} raised {type(error).__name__}: {error} when replayed on {what} "
            f"{dict(params)!r}"
        ) from error
    return returned_params(ref, result), dict(trial.distributions)


def training_params(ref: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """What a trial with the suggested `params` trains with: the function's returned dict."""
    return replay(ref, params)[0]


# The key of a Ray config under which `SpaceFunction` puts what the function returned.
RETURNED_KEY = "hpo_space_returned"


def config_training_params(ref: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """What a trial with this Ray config (or a rank's copy of an optuna trial's params)
    trains with: the returned dict the driver put in it, or the function replayed."""
    if RETURNED_KEY in config:
        return dict(config[RETURNED_KEY])
    return training_params(ref, config)


def suggested_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """A Ray config without the returned dict: the params the function suggested."""
    return {name: value for name, value in config.items() if name != RETURNED_KEY}


class SpaceFunction:
    """The function as Ray's `OptunaSearch(space=...)` define-by-run callable.

    Picklable by its reference (Tune pickles the searcher into its experiment state). Ray
    makes a trial's config of the suggested params plus what this returns: the function's
    dict goes under RETURNED_KEY, so the Ray workers train with it without importing the
    user's module (the driver imported it; a worker may not find it on its path).
    """

    def __init__(self, ref: str) -> None:
        self.ref = ref
        self._function: Callable[[Any], Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"ref": self.ref, "_function": None}

    def __call__(self, trial: Any) -> dict[str, Any]:
        if self._function is None:
            self._function = load_space_function(self.ref)
        return {RETURNED_KEY: returned_params(self.ref, self._function(trial))}
