"""The `model` section, and whether a model can be built from it (on the meta device)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from hpo.attrs import MODEL_PREFIX
from hpo.spec import LABELLED_TASKS, TASK_MODEL_CLASSES, TASKS, ModelSpec, ParamSpec
from hpo.study.guarded_calls import one_line, quiet
from hpo.study.keys import MODEL_KEYS, MODEL_SOURCES
from hpo.study.problems import did_you_mean
from hpo.study.reader import Reader
from hpo.study.references import read_factory, read_local_or_hub


@dataclasses.dataclass
class BuiltModel:
    """The transformers config built from `model.config`, for the checks that follow."""

    config: Any = None  # None unless model.config is given and names a known model_type
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    task: str = "causal-lm"


def read_model(reader: Reader) -> tuple[ModelSpec, BuiltModel]:
    """Exactly one source (config, pretrained or factory), its task, and its config built."""
    problems = reader.problems
    section = reader.mapping("model", required=True)
    problems.unknown_keys(section, MODEL_KEYS, "model")
    problems.exactly_one_of(section, MODEL_SOURCES, "model")
    task = reader.choice(section.get("task", "causal-lm"), "model.task", TASKS)
    num_labels = reader.integer(section.get("num_labels"), "model.num_labels", minimum=1)
    if num_labels is not None and task not in LABELLED_TASKS:
        one_output = " (regression has one output)" if task == "regression" else ""
        problems.add(
            "model.num_labels",
            f"found {num_labels}; it applies to tasks {', '.join(LABELLED_TASKS)} only"
            f"{one_output}; leave it out",
        )
    built = BuiltModel()
    config = None
    if section.get("config") is not None:
        config = _model_config(reader, built, section["config"], task, num_labels)
    pretrained = read_local_or_hub(reader, section.get("pretrained"), "model.pretrained", "a model")
    factory_ref = read_factory(reader, section.get("factory"), "model.factory")
    trust_remote_code = _read_trust_remote_code(reader, section, pretrained)
    spec = ModelSpec(
        task=task,
        config=config,
        pretrained=pretrained,
        factory=factory_ref,
        num_labels=num_labels,
        trust_remote_code=trust_remote_code,
    )
    return spec, built


def _read_trust_remote_code(
    reader: Reader, section: Mapping[str, Any], pretrained: str | None
) -> bool:
    """`model.trust_remote_code`: only `true` or `false`, written here, and said aloud when on."""
    value = section.get("trust_remote_code", False)
    if not isinstance(value, bool):
        reader.problems.found("model.trust_remote_code", value, "true or false")
        return False
    config = section.get("config")
    if isinstance(config, dict) and "trust_remote_code" in config:
        reader.problems.add(
            "model.config.trust_remote_code",
            "not a config attribute; if you mean it, write model.trust_remote_code: true",
        )
    if value:
        reader.warnings.append(
            f"model.trust_remote_code is on: Python code shipped with {pretrained or 'the model'}"
            " runs in every trial; keep it only for a model whose code you trust"
        )
    return value


def _model_config(
    reader: Reader, built: BuiltModel, value: Any, task: str, num_labels: int | None
) -> dict[str, Any] | None:
    """`model.config` as written; fills `built` with the transformers config it makes."""
    problems = reader.problems
    config = reader.as_mapping(value, "model.config")
    if not config:
        if isinstance(value, dict):
            problems.add(
                "model.config", "empty; expected at least model_type, e.g. {model_type: gpt2}"
            )
        return None
    model_type = config.get("model_type")
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    if not isinstance(model_type, str) or model_type not in CONFIG_MAPPING_NAMES:
        expected = "a transformers model_type (gpt2, llama, bert, ...)"
        if model_type is None:
            problems.add("model.config.model_type", f"missing; expected {expected}")
        else:
            problems.found(
                "model.config.model_type",
                model_type,
                expected,
                did_you_mean(model_type, CONFIG_MAPPING_NAMES),
            )
        return config
    try:
        default_config = build_config(model_type, {})
    except Exception:  # composite models need sub-configs: judge the user's settings only
        default_config = None
    unknown = [
        k
        for k in config
        if k != "model_type" and default_config is not None and not hasattr(default_config, k)
    ]
    for key in unknown:
        problems.add(
            f"model.config.{key}",
            f"not an attribute of a {model_type} config{did_you_mean(key, config_keys(default_config))}",
        )
    settings = {k: v for k, v in config.items() if k != "model_type" and k not in unknown}
    if task in LABELLED_TASKS:
        settings.setdefault("num_labels", num_labels or 2)
    if task == "regression":
        if settings.get("num_labels", 1) != 1:
            problems.add(
                "model.config.num_labels",
                f"found {settings['num_labels']}; task regression has one output: leave it out",
            )
        settings.update(num_labels=1, problem_type="regression")
    built.settings = settings
    built.task = task
    try:
        built.config = build_config(model_type, settings)
    except Exception as error:  # ValueError, TypeError, strict-dataclass errors
        problems.add("model.config", f"{model_type} rejects it: {one_line(error)}")
        built.config = default_config
        return config
    rejection = model_rejection(built.config, task)
    if rejection:
        problems.add("model.config", f"no {task} model can be built from it: {rejection}")
    return config


def check_model_ends(reader: Reader, built: BuiltModel, space: tuple[ParamSpec, ...]) -> None:
    """A model can be built at each end of the `model.*` params of the space."""
    config = built.config
    model_params = [
        p for p in space if p.is_model_param and hasattr(config, p.name[len(MODEL_PREFIX) :])
    ]
    if config is None or not model_params:
        return
    reported = set()
    for end in ("low", "high"):
        point = {p.name[len(MODEL_PREFIX) :]: end_value(p, end) for p in model_params}
        try:
            rejection = model_rejection(
                build_config(config.model_type, {**built.settings, **point}), built.task
            )
        except Exception as error:
            rejection = one_line(error)
        if rejection and rejection not in reported:
            reported.add(rejection)
            names = ", ".join(p.name for p in model_params)
            reader.problems.add(
                f"space ({names})",
                f"at the {end} end: {config.model_type} rejects {point}: {rejection}",
            )


def end_value(param: ParamSpec, end: str) -> Any:
    """The param's value at the "low" or "high" end of its range (or its choices)."""
    if param.type == "categorical":
        return param.choices[0] if end == "low" else param.choices[-1]
    return param.low if end == "low" else param.high


def build_config(model_type: str, settings: Mapping[str, Any]) -> Any:
    """The transformers config of `model_type` with `settings`, library warnings silenced."""
    from transformers import AutoConfig

    with quiet():
        return AutoConfig.for_model(model_type, **settings)


def config_keys(config: Any) -> list[str]:
    """A config's attribute names, for did-you-mean hints."""
    return sorted(set(config.to_dict()) | set(getattr(config, "attribute_map", {})))


def model_rejection(config: Any, task: str) -> str | None:
    """Why no model can be built from `config`, found by building it on the meta device.

    The meta device allocates nothing, so this costs milliseconds even for a large model and
    catches what configs do not check (e.g. n_embd not divisible by n_head) before any trial.
    Only ValueError counts: anything else may be a quirk of meta tensors, not of the config.
    """
    key = (config.to_json_string(use_diff=False), task)
    if key not in _MODEL_REJECTIONS:
        _MODEL_REJECTIONS[key] = _build_on_meta(config, task)
    return _MODEL_REJECTIONS[key]


_MODEL_REJECTIONS: dict[tuple[str, str], str | None] = {}  # the same config is judged once


def _build_on_meta(config: Any, task: str) -> str | None:
    import torch
    import transformers

    auto = getattr(transformers, TASK_MODEL_CLASSES[task])
    try:
        with quiet(), torch.device("meta"):
            auto.from_config(config)
    except ValueError as error:
        if str(error).startswith("Unrecognized configuration class"):
            # transformers lists every supported config class: a screenful
            return (
                f"{config.model_type} has no {TASK_MODEL_CLASSES[task]} model; choose a "
                f"model_type that has one (e.g. {TASK_EXAMPLE_MODELS[task]})"
            )
        return one_line(error)
    except Exception:
        return None
    return None


TASK_EXAMPLE_MODELS = {
    "causal-lm": "gpt2, llama",
    "sequence-classification": "bert, gpt2",
    "regression": "bert, gpt2",
    "token-classification": "bert, gpt2",
    "masked-lm": "bert, roberta",
    "seq2seq-lm": "t5, bart",
}
