"""Models named in a study -> a cheap `model_init(trial)` that builds a fresh model per trial.

Three sources (`ModelSpec`): a `config` (AutoConfig.for_model + AutoModelFor<task>.from_config),
`pretrained` (a local path, or a hub id where the network allows; a `config` beside it overrides
the saved config) and a user `factory` ("package.module:function", called with the `config`
keys, then the trial's overrides, as keyword arguments).

Each trial's `model.<key>` params override the config for that trial. Everything that does not
depend on the trial (imports, the model class, the base config, pretrained weights) is resolved
once, when the first model is built, so model_init costs a few milliseconds for a tiny model.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
from collections.abc import Callable, Mapping
from typing import Any

from hpo.attrs import MODEL_PREFIX
from hpo.data.factory import load_factory
from hpo.errors import HpoError
from hpo.spec import LABELLED_TASKS, TASK_MODEL_CLASSES, TASKS, ModelSpec

ModelInit = Callable[..., Any]  # (trial_or_None=None) -> torch.nn.Module


def model_overrides(trial: Any = None) -> dict[str, Any]:
    """The trial's `model.<key>` params as {key: value}.

    `trial` is None, an optuna Trial / FrozenTrial (`.params`), or a Ray Tune config dict
    (flat "model.n_layer" keys, or a nested {"model": {...}}).
    """
    if trial is None:
        return {}
    params = trial if isinstance(trial, Mapping) else getattr(trial, "params", None)
    if params is None:
        raise TypeError(
            f"model_init got {type(trial).__name__}; expected None, an optuna Trial or a dict"
        )
    overrides = {
        key[len(MODEL_PREFIX) :]: value
        for key, value in params.items()
        if isinstance(key, str) and key.startswith(MODEL_PREFIX)
    }
    nested = params.get("model") if isinstance(params, Mapping) else None
    if isinstance(nested, Mapping):
        overrides.update(nested)
    # numpy scalars (Ray samples them) would break config.to_json_string() at checkpoint time.
    return {key: getattr(value, "item", lambda v=value: v)() for key, value in overrides.items()}


def build_model_init(
    model: ModelSpec,
    *,
    pad_token_id: int | None = None,
    data_settings: Mapping[str, Any] | None = None,
) -> ModelInit:
    """A `model_init(trial=None) -> nn.Module` for the spec.

    `pad_token_id` is the data's padding id; configs of every task but causal-lm without one
    get it (GPT-2 style classifiers find the last real token through it). `data_settings` are
    config values the data decides (`task_settings`: labels, special token ids); keys the
    study's model.config sets win over them.
    """
    if model.task not in TASKS:
        raise HpoError(f"model.task: {model.task!r} is not a task; expected one of {TASKS}")
    # `config` alone builds the model; beside `pretrained` it overrides the saved config, and
    # beside `factory` it is the factory's keyword arguments.
    if model.pretrained and model.factory:
        raise HpoError("model: give pretrained or factory, not both")
    if not (model.config or model.pretrained or model.factory):
        raise HpoError("model: no model; give config, pretrained or factory")
    settings = dict(data_settings or {})
    if pad_token_id is not None:
        settings.setdefault("pad_token_id", pad_token_id)
    if model.factory:
        return _factory_model_init(model)
    if model.pretrained:
        return _pretrained_model_init(model, settings)
    return _config_model_init(model, settings)


def _auto_model_class(task: str) -> Any:
    import transformers

    return getattr(transformers, TASK_MODEL_CLASSES[task])


def task_settings(
    task: str,
    *,
    pad_token_id: int | None = None,
    label_names: list[str] | None = None,
    special_token_ids: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The config values a task takes from its data: labels and special token ids."""
    if task == "causal-lm":
        return {}
    settings: dict[str, Any] = {"pad_token_id": 0 if pad_token_id is None else pad_token_id}
    if task == "regression":
        settings.update(num_labels=1, problem_type="regression")
    if task in LABELLED_TASKS and label_names:
        settings["id2label"] = dict(enumerate(label_names))
        settings["label2id"] = {name: i for i, name in enumerate(label_names)}
    special = dict(special_token_ids or {})
    if task == "seq2seq-lm":
        for name in ("bos_token_id", "eos_token_id"):
            if name in special:
                settings[name] = special[name]
        # T5's convention: the decoder starts from the pad token (BART's default id may lie
        # outside a small trained vocabulary).
        settings["decoder_start_token_id"] = settings["pad_token_id"]
    return settings


def _task_defaults(model: ModelSpec, data_settings: Mapping[str, Any]) -> dict[str, Any]:
    if model.task == "causal-lm":
        return {}
    defaults = dict(data_settings)
    defaults.setdefault("pad_token_id", 0)
    if model.task in LABELLED_TASKS:
        num_labels = model.num_labels or len(defaults.get("id2label") or {}) or 2
        if len(defaults.get("id2label") or {}) != num_labels:  # more outputs than data labels
            defaults.pop("id2label", None)
            defaults.pop("label2id", None)
        defaults["num_labels"] = num_labels
    if model.task == "regression":
        defaults.update(num_labels=1, problem_type="regression")
    return defaults


def _config_model_init(model: ModelSpec, data_settings: Mapping[str, Any]) -> ModelInit:
    settings = dict(model.config or {})
    model_type = settings.pop("model_type", None)
    if not model_type:
        raise HpoError("model.config: no model_type; expected e.g. {model_type: gpt2, ...}")
    config_class = _config_class(str(model_type))
    base = _task_defaults(model, data_settings)
    base.update(settings)
    auto_model = _auto_model_class(model.task)

    def make_config(overrides: dict[str, Any]) -> Any:
        values = {**base, **overrides}
        try:
            return config_class(**_default_ids_outside_vocab(config_class, values), **values)
        except Exception as error:  # transformers raises ValueError, TypeError, StrictDataclass*
            where = (
                f"model.config with trial overrides {overrides}" if overrides else "model.config"
            )
            raise HpoError(f"{where}: {model_type} rejects it: {error}") from error

    base_config = make_config({})  # a bad key or value fails here, before any trial

    def model_init(trial: Any = None) -> Any:
        overrides = model_overrides(trial)
        config = make_config(overrides) if overrides else base_config
        return auto_model.from_config(config)

    return model_init


def _config_class(model_type: str) -> Any:
    from transformers import CONFIG_MAPPING

    try:
        return CONFIG_MAPPING[model_type]
    except KeyError:
        close = difflib.get_close_matches(model_type, list(CONFIG_MAPPING.keys()), n=3)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise HpoError(
            f"model.config.model_type: {model_type!r} is not a transformers model type{hint}"
        ) from None


def _default_ids_outside_vocab(config_class: Any, values: dict[str, Any]) -> dict[str, Any]:
    """None for the special token ids whose class default lies outside the vocabulary.

    A gpt2 config with vocab_size 256 would otherwise keep bos/eos 50256 (and transformers
    warns); ids the user set explicitly are kept as given.
    """
    vocab = values.get("vocab_size")
    if not isinstance(vocab, int) or not dataclasses.is_dataclass(config_class):
        return {}
    return {
        field.name: None
        for field in dataclasses.fields(config_class)
        if field.name.endswith("_token_id")
        and field.name not in values
        and isinstance(field.default, int)
        and not 0 <= field.default < vocab
    }


def _pretrained_model_init(model: ModelSpec, data_settings: Mapping[str, Any]) -> ModelInit:
    path = str(model.pretrained)
    auto_model = _auto_model_class(model.task)
    task_kwargs = _task_defaults(model, data_settings)
    task_kwargs.update({k: v for k, v in (model.config or {}).items() if k != "model_type"})
    loaded: dict[str, Any] = {}  # the weights read once; later trials copy them

    def load(overrides: dict[str, Any]) -> Any:
        try:
            return auto_model.from_pretrained(
                path, trust_remote_code=model.trust_remote_code, **{**task_kwargs, **overrides}
            )
        except (OSError, ValueError) as error:
            raise HpoError(
                f"model.pretrained: {path!r} could not be loaded ({error}); give a local "
                "folder written by save_pretrained, or a hub id where the network allows"
            ) from error

    def model_init(trial: Any = None) -> Any:
        overrides = model_overrides(trial)
        if overrides:  # a changed architecture needs its own load
            return load(overrides)
        if "template" not in loaded:
            loaded["template"] = load({})
        return copy.deepcopy(loaded["template"])

    return model_init


def _factory_model_init(model: ModelSpec) -> ModelInit:
    factory = load_factory(str(model.factory), "model.factory")
    base = dict(model.config or {})
    if model.task in LABELLED_TASKS and model.num_labels:
        base.setdefault("num_labels", model.num_labels)

    def model_init(trial: Any = None) -> Any:
        import torch

        built = factory(**{**base, **model_overrides(trial)})
        if not isinstance(built, torch.nn.Module):
            raise HpoError(
                f"model.factory: {model.factory!r} returned {type(built).__name__}; "
                "expected a torch.nn.Module"
            )
        return built

    return model_init
