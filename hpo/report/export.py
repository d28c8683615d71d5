"""`hpo export` / `hpo train`: the best trial as a training config, and retraining from it.

The file has four sections:

    study:    where it came from (name, trial number, value(s), checkpoint); informational
    training: TrainingArguments fields = the study's `training` + the best params
              (a Transformers or `trainer` user loads it with TrainingArguments(**cfg["training"]))
    model:    the study's `model` section with the best `model.*` params applied
    data:     the study's `data` section
    metrics:  the study's `metrics` / `compute_metrics` / `preprocess_logits_for_metrics`, when
              it names any (an objective such as eval_accuracy needs them to be computed)

YAML when the file name ends in .yaml/.yml, JSON otherwise.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from hpo.attrs import DATA_PREFIX, is_data_param
from hpo.errors import HpoError, UsageError
from hpo.spec import (
    BudgetSpec,
    ComponentSpec,
    DataSpec,
    MetricsSpec,
    ModelSpec,
    ObjectiveSpec,
    StudySpec,
    TrainedTokenizerSpec,
)

EXPORT_VERSION = 1
SECTIONS = ("training", "model", "data")


def export_config(spec: StudySpec, best: dict[str, Any]) -> dict[str, Any]:
    """The training config for `best` (one trial from `hpo.storage.reader.best`)."""
    from hpo.search.space import split_params

    # Only the params the trial had: a conditional param its trial lacked stays out, so the
    # study's own value (or the default) applies, as it did in that trial.
    params = dict(best.get("params") or {})
    if spec.space_function is not None:  # stored: what it suggested; trained: what it returned
        from hpo.search.python_space import training_params as returned

        params = dict(returned(spec.space_function, params))
    # data.* params (data.mlm_probability) are data settings: they go to the data section
    data_params = {
        name[len(DATA_PREFIX) :]: params.pop(name) for name in list(params) if is_data_param(name)
    }
    training_params, model_params = split_params(params)
    training = {**spec.training, **training_params}
    training["output_dir"] = os.path.join(spec.output_dir, "best")
    training["metric_for_best_model"] = spec.objective.metrics[0]
    training["greater_is_better"] = spec.objective.directions[0] == "maximize"
    model = {k: _plain(v) for k, v in dataclasses.asdict(spec.model).items() if v is not None}
    if model_params:
        if spec.model.config is not None:
            model["config"] = {**spec.model.config, **model_params}
        else:  # pretrained / factory: model_init applies them, as during the search
            model["params"] = model_params
    study: dict[str, Any] = {
        "name": spec.name,
        "trial": best.get("number"),
        "metrics": list(spec.objective.metrics),
        "directions": list(spec.objective.directions),
        "checkpoint": best.get("checkpoint"),
    }
    if "values" in best:
        study["values"] = best["values"]
    else:
        study["value"] = best.get("value")
    config = {
        "hpo_export": EXPORT_VERSION,
        "study": study,
        "training": {k: _plain(v) for k, v in training.items()},
        "model": model,
        "data": {k: _plain(v) for k, v in {**dataclasses.asdict(spec.data), **data_params}.items()},
    }
    if spec.metrics != MetricsSpec():
        config["metrics"] = {k: _plain(v) for k, v in dataclasses.asdict(spec.metrics).items()}
    return config


def _plain(value: Any) -> Any:
    """Tuples as lists, so YAML and JSON write the same plain structures."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def export_best(spec: Any, path: str | os.PathLike[str], trial: int | None = None) -> Path:
    """Write the best trial's training config to `path`; returns the path.

    `spec` is the study's StudySpec, or the shallow StudyRef the inspection commands load (the
    full study file is then read for its training, model and data sections). For a
    multi-objective study, the Pareto-optimal trial best on the first objective (or the
    front's trial numbered `trial`).
    """
    if not isinstance(spec, StudySpec):
        from hpo.study import load

        spec = load(spec.source_path, storage=spec.storage)
    config = export_config(spec, best_trial(spec, trial))
    return write_config(config, path)


def best_trial(spec: StudySpec, trial: int | None = None) -> dict[str, Any]:
    """The best trial of the stored study (`hpo.storage.reader.best`); of a Pareto front, the
    one best on the first objective, or the front's trial numbered `trial`."""
    from hpo.storage import reader

    report = reader.best(spec.storage, spec.name)
    candidates = report if isinstance(report, list) else [report]
    if trial is not None:
        candidates = [c for c in candidates if c.get("number") == trial]
        if not candidates:
            raise HpoError(f"trial {trial} is not the best trial (or on the Pareto front)")
    if len(candidates) > 1:
        sign = 1 if spec.objective.directions[0] == "minimize" else -1
        candidates.sort(key=lambda c: sign * c["values"][0])
    return candidates[0]


def write_config(config: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write `config` to `path` whole: a temporary file beside it, renamed into place."""
    path = Path(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        text = yaml.safe_dump(config, sort_keys=False)
    else:
        text = json.dumps(config, indent=2) + "\n"
    partial = path.with_name(f".{path.name}.partial")
    try:
        if path.parent != Path(""):
            path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise UsageError(
            f"-o {path}: cannot write it ({error.strerror or error}); "
            "give a file in a folder you can write to"
        ) from None
    return path


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a file written by `export_best`, with a clear error for anything else."""
    import yaml

    from hpo.study.yaml_file import DocumentTooLarge, parse_yaml, read_text

    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such file; write one with `hpo export STUDY -o {path}`")
    text = read_text(path)  # a regular file of bounded size, or a one-line error
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            config = parse_yaml(text)
        else:
            config = json.loads(text)
    except (DocumentTooLarge, ValueError, yaml.YAMLError) as error:
        raise UsageError(f"{path}: cannot parse: {one_line(error)}") from None
    if isinstance(config, dict) and "hpo_export" not in config and "space" in config:
        raise UsageError(
            f"{path}: a study file, not an exported config; run `hpo export {path} -o "
            "best.yaml` after the study, then `hpo train best.yaml`"
        )
    missing = [s for s in SECTIONS if not isinstance(config, dict) or s not in config]
    if missing:
        raise UsageError(
            f"{path}: missing section(s) {missing}; expected a file written by `hpo export`"
        )
    return config


def one_line(error: Exception) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 200 else text[:197] + "..."


def spec_from_config(config: dict[str, Any]) -> StudySpec:
    """A study spec with just what retraining needs (data, model, training)."""
    model_fields = {f.name for f in dataclasses.fields(ModelSpec)}
    data_fields = {f.name for f in dataclasses.fields(DataSpec)}
    model = ModelSpec(**{k: v for k, v in config["model"].items() if k in model_fields})
    data_values = {k: v for k, v in config["data"].items() if k in data_fields}
    for key in ("files", "eval_files"):
        data_values[key] = tuple(data_values.get(key) or ())
    if isinstance(data_values.get("tokenizer"), dict):  # trained on the data: the same again
        data_values["tokenizer"] = TrainedTokenizerSpec(**data_values["tokenizer"])
    study = config.get("study") or {}
    evaluation = config.get("metrics") or {}
    metrics_spec = MetricsSpec(
        names=tuple(evaluation.get("names") or ()),
        compute_metrics=evaluation.get("compute_metrics"),
        preprocess_logits_for_metrics=evaluation.get("preprocess_logits_for_metrics"),
    )
    metrics = tuple(study.get("metrics") or ("eval_loss",))
    directions = tuple(study.get("directions") or ("minimize",) * len(metrics))
    return StudySpec(
        name=str(study.get("name") or "export"),
        storage="",
        backend="optuna",
        objective=ObjectiveSpec(metrics=metrics, directions=directions),
        budget=BudgetSpec(),
        workers=1,
        sampler=ComponentSpec("random"),
        pruner=ComponentSpec("none"),
        scheduler=None,
        ray={},
        model=model,
        data=DataSpec(**data_values),
        training=dict(config["training"]),
        space=(),
        metrics=metrics_spec,
    )


def train_from_export(path: str | os.PathLike[str]) -> Any:
    """Retrain from an exported config; returns the trainer's TrainOutput."""
    from hpo.data import load_datasets, study_collator, study_metric_functions, study_model_init
    from trainer import Trainer, TrainingArguments

    config = read_config(path)
    spec = spec_from_config(config)
    try:
        args = TrainingArguments(**spec.training)
    except ValueError as error:
        raise HpoError(f"{path}: training: {error}") from None
    train_dataset, eval_dataset = load_datasets(spec)
    collator = study_collator(spec)
    build = study_model_init(spec, collator)
    # model.* params of a pretrained / factory model reach model_init the way a trial's do.
    params = {f"model.{k}": v for k, v in (config["model"].get("params") or {}).items()}

    def model_init(trial: Any = None) -> Any:
        return build(params or None)

    metrics = study_metric_functions(spec)
    trainer = Trainer(
        model_init=model_init,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        compute_metrics=metrics.compute_metrics,
        preprocess_logits_for_metrics=metrics.preprocess_logits_for_metrics,
        data_collator=collator,
    )
    return trainer.train()
