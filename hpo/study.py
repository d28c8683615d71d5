"""The study file: read once, validated completely, frozen into a `StudySpec`.

Every problem is collected (key path, value found, what is expected) and reported in one
`StudyFileError`, so a user fixes the file in one pass. Validation only reads: it creates no
database, directory or study. Heavy libraries (transformers, optuna, ray, trainer) are imported
inside the checks that need them; `load_for_inspection` needs none of them.

Keys beyond DESIGN.md's contract, and the defaults a user gets without asking:
- `storage`: `--storage` > HPO_STORAGE > the file > `sqlite:///runs/<name>.db`; SQLite paths
  are made absolute (relative to the current directory), PostgreSQL gets an installed driver.
- `objective`: default `{metric: eval_loss, direction: minimize}`; a direction may be left out
  for metrics ending in "loss".
- `budget.timeout`: `90s`, `20m`, `1h`, `1h30m`, `2d` or seconds.
- `sampler`: `{name, <constructor options>}` or just a name; default tpe, `seed: 0` for any
  sampler with a seed. With `backend: ray` it is the search: random or tpe (OptunaSearch).
- `pruner`: default `default_pruner(training)`: hyperband on the evaluation grid.
  `patient` takes `wrapped_pruner: {name, ...}`.
- `scheduler` (ray): default `default_scheduler(training)`: ASHA counted in evaluations.
  pbt/pb2 mutate the training params of `space` unless `hyperparam_mutations` /
  `hyperparam_bounds` are given; the sampler then defaults to random.
- `ray`: address, resources_per_trial {cpu: 1, gpu: 0}, max_concurrent_trials (= workers),
  storage_path, max_failures (0).
- `workers`: 1. `keep`: best.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import logging
import math
import os
import re
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from hpo.durations import DURATION_HELP, parse_duration
from hpo.errors import HpoError, StudyFileError
from hpo.spec import (
    BudgetSpec,
    ComponentSpec,
    DataSpec,
    ModelSpec,
    ObjectiveSpec,
    ParamSpec,
    StudySpec,
)

TOP_LEVEL_KEYS = (
    "name",
    "storage",
    "backend",
    "objective",
    "budget",
    "workers",
    "sampler",
    "pruner",
    "scheduler",
    "ray",
    "model",
    "data",
    "training",
    "space",
    "keep",
)
OBJECTIVE_KEYS = ("metric", "direction")
BUDGET_KEYS = ("n_trials", "timeout", "max_failed_trials")
MODEL_KEYS = ("config", "pretrained", "factory", "task", "num_labels")
MODEL_SOURCES = ("config", "pretrained", "factory")
DATA_KEYS = (
    "files",
    "eval_files",
    "corpus",
    "hub",
    "factory",
    "tokenizer",
    "block_size",
    "eval_fraction",
    "max_eval_samples",
    "text_column",
    "label_column",
)
DATA_SOURCES = ("files", "corpus", "hub", "factory")
RAY_KEYS = (
    "address",
    "resources_per_trial",
    "max_concurrent_trials",
    "storage_path",
    "max_failures",
)
RESOURCE_KEYS = ("cpu", "gpu")
PARAM_KEYS = {
    "float": ("type", "low", "high", "log", "step"),
    "int": ("type", "low", "high", "log", "step"),
    "categorical": ("type", "choices"),
}
BACKENDS = ("optuna", "ray")
TASKS = ("causal-lm", "sequence-classification")
DIRECTIONS = ("minimize", "maximize")
KEEP_CHOICES = ("best", "all")
STORAGE_DIALECTS = ("sqlite", "postgresql", "mysql")
BYTES_TOKENIZER = "bytes"
BUILTIN_CORPORA = ("pydoc-topics",)
DATA_FILE_SUFFIXES = (".txt", ".jsonl", ".csv")
STORAGE_ENV = "HPO_STORAGE"
# Used in file names (runs/<name>.db, output folders), so kept to safe characters.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_MODEL_PREFIX = "model."


# ------------------------------------------------------------------------- public API


def load(
    path: str | os.PathLike[str],
    *,
    storage: str | None = None,
    n_trials: int | None = None,
    workers: int | None = None,
) -> StudySpec:
    """The validated study in `path`, with the command line's overrides applied.

    Raises `StudyFileError` listing every problem. Nothing is created on disk or in a database.
    """
    source = str(path)
    raw = read_study_file(path)
    return _Validator(raw, source, storage=storage, n_trials=n_trials, workers=workers).spec()


@dataclasses.dataclass(frozen=True)
class StudyRef:
    """What inspection commands need from a study file: its name and resolved storage."""

    name: str
    storage: str
    source_path: str | None = None
    backend: str = "optuna"
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def output_dir(self) -> str:
        training = self.raw.get("training")
        if isinstance(training, Mapping) and training.get("output_dir"):
            return str(training["output_dir"])
        return f"runs/{self.name}"


def load_for_inspection(path: str | os.PathLike[str], *, storage: str | None = None) -> StudyRef:
    """Name and storage only, cheaply: no torch, transformers, optuna or trainer import."""
    source = str(path)
    raw = read_study_file(path)
    problems = Problems()
    name = _study_name(raw.get("name"), problems)
    url = _storage(raw.get("storage"), storage, name or "study", problems, workers=1)
    if problems:
        raise StudyFileError(source, problems.lines)
    backend = raw.get("backend") if raw.get("backend") in BACKENDS else "optuna"
    return StudyRef(name=name, storage=url, source_path=source, backend=backend, raw=raw)


def resolve_storage(
    cli: str | None, in_file: str | None, name: str, environ: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """(URL, where it came from): `--storage` > HPO_STORAGE > the file's `storage` > default."""
    environ = os.environ if environ is None else environ
    if cli:
        return cli, "--storage"
    if environ.get(STORAGE_ENV):
        return environ[STORAGE_ENV], STORAGE_ENV
    if in_file is not None:
        return in_file, "storage"
    return f"sqlite:///runs/{name}.db", "storage (default)"


def default_sampler() -> ComponentSpec:
    """Seeded TPE: reproducible, and strong on small budgets."""
    return ComponentSpec("tpe", {"seed": 0})


def default_pruner(training: Mapping[str, Any]) -> ComponentSpec:
    """Hyperband on the evaluation grid: its first rung is the first evaluation.

    Trials report at their global step, so `min_resource = eval_steps` judges a trial as soon
    as it has one value, and `max_resource = max_steps` sizes the brackets (when known).
    Without step-wise evaluation there is nothing to prune on, so pruning is off.
    """
    strategy = training.get("eval_strategy", "no")
    max_steps = training.get("max_steps", -1)
    max_steps = max_steps if _is_int(max_steps) and max_steps > 0 else None
    if strategy == "epoch":
        min_resource = 1
    elif strategy == "steps":
        eval_steps = training.get("eval_steps") or training.get("logging_steps", 500)
        if _is_number(eval_steps) and 0 < eval_steps < 1:  # a fraction of the run
            eval_steps = math.ceil(eval_steps * max_steps) if max_steps else 1
        min_resource = int(eval_steps) if _is_number(eval_steps) and eval_steps >= 1 else 1
    else:
        return ComponentSpec("none")
    max_resource: int | str = max_steps if max_steps and max_steps >= min_resource else "auto"
    return ComponentSpec(
        "hyperband",
        {"min_resource": min_resource, "max_resource": max_resource, "reduction_factor": 3},
    )


def default_scheduler(training: Mapping[str, Any]) -> ComponentSpec:
    """ASHA counted in evaluations (Tune's `training_iteration`: one per report).

    The grace period is the first evaluation; `max_t` is the number of evaluations in a run
    when max_steps and eval_steps are known.
    """
    eval_steps = training.get("eval_steps")
    max_steps = training.get("max_steps", -1)
    evaluations = 100
    if _is_int(max_steps) and max_steps > 0 and _is_int(eval_steps) and eval_steps >= 1:
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


# ------------------------------------------------------------------------- reading


class _StudyLoader(yaml.SafeLoader):
    """`yaml.safe_load`, plus: a repeated key is an error, and `1e-4` is a float (YAML 1.2).

    PyYAML follows YAML 1.1, where `1e-4` is the *string* "1e-4": a learning rate written that
    way would fail far from the file. A silently overwritten duplicate key is as bad.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # unhashable key: the base class reports it
                break
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first given at line {first})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


_StudyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def read_study_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The file's top-level mapping; a StudyFileError for a missing file or bad YAML."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StudyFileError(source, [f"{source}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise StudyFileError(source, [f"{source}: cannot be read ({error})"]) from None
    try:
        raw = yaml.load(text, Loader=_StudyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        raise StudyFileError(source, [_yaml_problem(error)]) from None
    except yaml.YAMLError as error:
        raise StudyFileError(source, [f"YAML syntax error: {error}"]) from None
    if raw is None:
        raise StudyFileError(
            source, ["the file is empty; expected a mapping with name, model, ..."]
        )
    if not isinstance(raw, dict):
        raise StudyFileError(
            source,
            [
                f"top level: found a {type(raw).__name__}, expected a mapping (name: ..., model: ...)"
            ],
        )
    return raw


def _yaml_problem(error: yaml.MarkedYAMLError) -> str:
    mark = error.problem_mark or error.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
    detail = error.problem or "syntax error"
    if error.context:
        context_mark = error.context_mark
        at = f" (line {context_mark.line + 1})" if context_mark else ""
        detail += f", {error.context}{at}"
    return f"{where}: YAML syntax error: {detail}"


# ------------------------------------------------------------------------- problems


class Problems:
    """Problem lines, each `path: what was found, what is expected`."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.lines)

    def __len__(self) -> int:
        return len(self.lines)

    def add(self, path: str, message: str) -> None:
        self.lines.append(f"{path}: {message}")

    def found(self, path: str, value: Any, expected: str, hint: str = "") -> None:
        self.add(path, f"found {show(value)}, expected {expected}{hint}")

    def unknown_keys(
        self, mapping: Mapping[str, Any], allowed: tuple[str, ...] | list[str], path: str
    ) -> None:
        for key in mapping:
            if key not in allowed:
                where = f"{path}.{key}" if path else str(key)
                self.add(
                    where,
                    f"unknown key; expected one of {', '.join(allowed)}{did_you_mean(key, allowed)}",
                )


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def did_you_mean(word: Any, options: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ------------------------------------------------------------------------- shallow checks


def _study_name(value: Any, problems: Problems) -> str:
    if value is None:
        problems.add("name", "missing; expected the study's name, e.g. name: quickstart")
        return ""
    if not isinstance(value, str) or not _NAME.match(value):
        problems.found("name", value, "a name of letters, digits, '.', '_' or '-' (it names files)")
        return ""
    return value


def _storage(in_file: Any, cli: str | None, name: str, problems: Problems, *, workers: int) -> str:
    if in_file is not None and not isinstance(in_file, str):
        problems.found("storage", in_file, "a database URL such as sqlite:///runs/study.db")
        in_file = None
    url, where = resolve_storage(cli, in_file, name)
    return _checked_storage_url(url, where, problems, workers=workers)


def _checked_storage_url(url: str, where: str, problems: Problems, *, workers: int) -> str:
    """The URL with an installed driver and an absolute SQLite path, or a problem."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from hpo.storage import mask_url, with_driver

    expected = (
        f"a database URL with dialect {', '.join(STORAGE_DIALECTS)}, e.g. sqlite:///runs/study.db"
    )
    try:
        parsed = make_url(with_driver(url))
    except (ArgumentError, ValueError):
        problems.add(where, f"found {mask_url(url)!r}, which is not a URL; expected {expected}")
        return url
    backend = parsed.get_backend_name()
    shown = mask_url(url)
    if backend not in STORAGE_DIALECTS:
        problems.add(
            where, f"found {shown!r}: dialect {backend!r} is not supported; expected {expected}"
        )
        return url
    try:
        parsed.get_dialect().import_dbapi()
    except NoSuchModuleError:
        problems.add(where, f"found {shown!r}: SQLAlchemy has no driver {parsed.drivername!r}")
        return url
    except ImportError as error:
        problems.add(
            where, f"found {shown!r}: its database driver is not installed ({error.name or error})"
        )
        return url
    if backend == "sqlite":
        return _sqlite_url(parsed, shown, where, problems, workers=workers)
    if not parsed.database:
        problems.add(where, f"found {shown!r}: no database name; expected e.g. .../postgres")
    return parsed.render_as_string(hide_password=False)


def _sqlite_url(parsed: Any, shown: str, where: str, problems: Problems, *, workers: int) -> str:
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        if workers > 1:
            problems.add(
                where,
                f"found {shown!r}: an in-memory database cannot be shared by {workers} workers",
            )
        return parsed.render_as_string(hide_password=False)
    # Relative to the current directory, made absolute so that workers and Ray trials (which
    # change directory) open the same file.
    path = Path(database).expanduser().absolute()
    if path.is_dir():
        problems.add(where, f"found {shown!r}: {path} is a directory; expected a database file")
    return parsed.set(database=str(path)).render_as_string(hide_password=False)


# ------------------------------------------------------------------------- full validation


class _Validator:
    """One pass over a study file; each section method records problems and returns its part."""

    def __init__(
        self,
        raw: dict[str, Any],
        source: str,
        *,
        storage: str | None,
        n_trials: int | None,
        workers: int | None,
    ) -> None:
        self.raw = raw
        self.source = source
        self.cli_storage = storage
        self.cli_n_trials = n_trials
        self.cli_workers = workers
        self.problems = Problems()
        self.warnings: list[str] = []
        self.model_config: Any = None  # the transformers config, when model.config is given
        self.config_settings: dict[str, Any] = {}
        self.task = "causal-lm"
        self.field_names: frozenset[str] = frozenset()

    def spec(self) -> StudySpec:
        problems = self.problems
        raw = self.raw
        problems.unknown_keys(raw, TOP_LEVEL_KEYS, "")
        name = _study_name(raw.get("name"), problems)
        backend = self._choice(raw.get("backend", "optuna"), "backend", BACKENDS)
        workers = self._workers()
        keep = self._choice(raw.get("keep", "best"), "keep", KEEP_CHOICES)
        objective = self._objective()
        budget = self._budget()
        storage = _storage(
            raw.get("storage"), self.cli_storage, name or "study", problems, workers=workers
        )
        model = self._model()
        data = self._data(model)
        training = self._training()
        space = self._space(model)
        self._check_training_values(training, space)
        sampler, pruner, scheduler = self._search(backend, objective, training, space)
        ray = self._ray(workers)
        self._budget_warnings(budget)
        if problems:
            raise StudyFileError(self.source, problems.lines)
        return StudySpec(
            name=name,
            storage=storage,
            backend=backend,
            objective=objective,
            budget=budget,
            workers=workers,
            sampler=sampler,
            pruner=pruner,
            scheduler=scheduler,
            ray=ray,
            model=model,
            data=data,
            training=training,
            space=space,
            keep=keep,
            source_path=self.source,
            warnings=tuple(self.warnings),
        )

    # --- small typed readers: return a usable value (or a fallback) and record problems

    def _mapping(self, key: str, *, required: bool = False) -> dict[str, Any]:
        value = self.raw.get(key)
        return self._as_mapping(value, key, required=required)

    def _as_mapping(self, value: Any, path: str, *, required: bool = False) -> dict[str, Any]:
        if value is None:
            if required:
                self.problems.add(path, "missing; expected a mapping")
            return {}
        if not isinstance(value, dict):
            self.problems.found(path, value, "a mapping of keys")
            return {}
        bad = [k for k in value if not isinstance(k, str)]
        for key in bad:
            self.problems.found(f"{path}.{key}", key, "a text key")
        return {k: v for k, v in value.items() if isinstance(k, str)}

    def _choice(self, value: Any, path: str, options: tuple[str, ...]) -> str:
        if value not in options:
            expected = f"one of {', '.join(options)}"
            self.problems.found(path, value, expected, did_you_mean(value, options))
            return options[0]
        return value

    def _int(
        self, value: Any, path: str, *, minimum: int, default: int | None = None
    ) -> int | None:
        if value is None:
            return default
        if not _is_int(value) or value < minimum:
            self.problems.found(path, value, f"an integer >= {minimum}")
            return default
        return value

    def _number(self, value: Any, path: str, expected: str, ok: Any) -> float | None:
        if value is None:
            return None
        if not _is_number(value) or not ok(value):
            self.problems.found(path, value, expected)
            return None
        return value

    def _text(self, value: Any, path: str, expected: str = "a non-empty text") -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.problems.found(path, value, expected)
            return None
        return value

    # --- sections

    def _workers(self) -> int:
        workers = self._int(self.raw.get("workers"), "workers", minimum=1, default=1)
        if self.cli_workers is not None:
            workers = self._int(self.cli_workers, "--workers", minimum=1, default=workers)
        return workers or 1

    def _objective(self) -> ObjectiveSpec:
        section = self._mapping("objective")
        self.problems.unknown_keys(section, OBJECTIVE_KEYS, "objective")
        metrics = self._text_list(
            section.get("metric", "eval_loss"),
            "objective.metric",
            "a metric name (e.g. eval_loss) or a list of them",
        )
        directions_raw = section.get("direction")
        if directions_raw is None:
            if all(m.endswith("loss") for m in metrics):
                directions_raw = ["minimize"] * len(metrics)
            else:
                self.problems.add(
                    "objective.direction",
                    f"missing for metric(s) {', '.join(metrics)}; expected minimize or maximize",
                )
                directions_raw = ["minimize"] * len(metrics)
        directions = self._text_list(
            directions_raw, "objective.direction", "minimize | maximize, or a list"
        )
        for index, direction in enumerate(directions):
            path = (
                "objective.direction"
                if isinstance(directions_raw, str)
                else f"objective.direction[{index}]"
            )
            self._choice(direction, path, DIRECTIONS)
        if metrics and directions and len(metrics) != len(directions):
            self.problems.add(
                "objective",
                f"{len(metrics)} metric(s) {metrics} but {len(directions)} direction(s) "
                f"{directions}; expected one direction per metric",
            )
        return ObjectiveSpec(tuple(metrics) or ("eval_loss",), tuple(directions) or ("minimize",))

    def _text_list(self, value: Any, path: str, expected: str) -> list[str]:
        values = [value] if isinstance(value, str) else value
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, str) and v.strip() for v in values)
        ):
            self.problems.found(path, value, expected)
            return []
        return list(values)

    def _budget(self) -> BudgetSpec:
        section = self._mapping("budget")
        self.problems.unknown_keys(section, BUDGET_KEYS, "budget")
        n_trials = self._int(section.get("n_trials"), "budget.n_trials", minimum=1)
        if self.cli_n_trials is not None:
            n_trials = self._int(self.cli_n_trials, "--n-trials", minimum=1, default=n_trials)
        timeout = None
        if section.get("timeout") is not None:
            try:
                timeout = parse_duration(section["timeout"])
            except ValueError:
                self.problems.found("budget.timeout", section["timeout"], DURATION_HELP)
            else:
                if timeout <= 0:
                    self.problems.found("budget.timeout", section["timeout"], "a duration > 0")
                    timeout = None
        max_failed = self._int(
            section.get("max_failed_trials"), "budget.max_failed_trials", minimum=0
        )
        return BudgetSpec(n_trials=n_trials, timeout_s=timeout, max_failed_trials=max_failed)

    def _budget_warnings(self, budget: BudgetSpec) -> None:
        if budget.n_trials is None and budget.timeout_s is None:
            self.warnings.append(
                "budget: no n_trials and no timeout; the study runs until it is interrupted"
            )

    # --- model

    def _model(self) -> ModelSpec:
        section = self._mapping("model", required=True)
        self.problems.unknown_keys(section, MODEL_KEYS, "model")
        given = [k for k in MODEL_SOURCES if section.get(k) is not None]
        if section and len(given) != 1:
            found = " and ".join(given) if given else "none"
            self.problems.add(
                "model", f"found {found}; expected exactly one of config, pretrained, factory"
            )
        task = self._choice(section.get("task", "causal-lm"), "model.task", TASKS)
        num_labels = self._int(section.get("num_labels"), "model.num_labels", minimum=1)
        if num_labels is not None and task != "sequence-classification":
            self.problems.add(
                "model.num_labels",
                f"found {num_labels}; it applies to task sequence-classification only",
            )
        config = None
        if section.get("config") is not None:
            config = self._model_config(section["config"], task, num_labels)
        pretrained = self._local_or_hub(section.get("pretrained"), "model.pretrained", "a model")
        factory = self._factory(section.get("factory"), "model.factory")
        return ModelSpec(
            task=task, config=config, pretrained=pretrained, factory=factory, num_labels=num_labels
        )

    def _model_config(self, value: Any, task: str, num_labels: int | None) -> dict[str, Any] | None:
        config = self._as_mapping(value, "model.config")
        if not config:
            if isinstance(value, dict):
                self.problems.add(
                    "model.config", "empty; expected at least model_type, e.g. {model_type: gpt2}"
                )
            return None
        model_type = config.get("model_type")
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

        if not isinstance(model_type, str) or model_type not in CONFIG_MAPPING_NAMES:
            expected = "a transformers model_type (gpt2, llama, bert, ...)"
            if model_type is None:
                self.problems.add("model.config.model_type", f"missing; expected {expected}")
            else:
                self.problems.found(
                    "model.config.model_type",
                    model_type,
                    expected,
                    did_you_mean(model_type, CONFIG_MAPPING_NAMES),
                )
            return config
        try:
            default_config = _build_config(model_type, {})
        except Exception:  # composite models need sub-configs: judge the user's settings only
            default_config = None
        unknown = [
            k
            for k in config
            if k != "model_type" and default_config is not None and not hasattr(default_config, k)
        ]
        for key in unknown:
            self.problems.add(
                f"model.config.{key}",
                f"not an attribute of a {model_type} config{did_you_mean(key, _config_keys(default_config))}",
            )
        settings = {k: v for k, v in config.items() if k != "model_type" and k not in unknown}
        if task == "sequence-classification":
            settings.setdefault("num_labels", num_labels or 2)
        self.config_settings = settings
        self.task = task
        try:
            self.model_config = _build_config(model_type, settings)
        except Exception as error:  # ValueError, TypeError, strict-dataclass errors
            self.problems.add("model.config", f"{model_type} rejects it: {_one_line(error)}")
            self.model_config = default_config
            return config
        rejection = _model_rejection(self.model_config, task)
        if rejection:
            self.problems.add("model.config", f"no {task} model can be built from it: {rejection}")
        return config

    def _local_or_hub(self, value: Any, path: str, what: str) -> str | None:
        """A local path (must exist) or a hub id such as `org/name` (the network decides)."""
        if value is None:
            return None
        text = self._text(value, path, f"a local path or a hub id of {what}")
        if text is None:
            return None
        local = Path(text).expanduser()
        if local.exists():
            return str(local.absolute())
        looks_local = text.startswith(("/", ".", "~")) or "\\" in text or text.count("/") > 1
        if looks_local:
            self.problems.add(
                path, f"found {text!r}, but no such file or directory ({local.absolute()})"
            )
        return text

    def _factory(self, value: Any, path: str) -> str | None:
        if value is None:
            return None
        text = self._text(value, path, "'package.module:function'")
        if text is None:
            return None
        from hpo.factory import load_factory

        try:
            with _current_directory_importable():
                load_factory(text, path)
        except HpoError as error:
            self.problems.lines.append(str(error))
        except Exception as error:  # the user's module raised while importing
            self.problems.add(path, f"importing {text!r} raised {_one_line(error)}")
        return text

    # --- data

    def _data(self, model: ModelSpec) -> DataSpec:
        section = self._mapping("data", required=True)
        self.problems.unknown_keys(section, DATA_KEYS, "data")
        given = [k for k in DATA_SOURCES if section.get(k) is not None]
        if section and len(given) != 1:
            found = " and ".join(given) if given else "none"
            self.problems.add(
                "data", f"found {found}; expected exactly one of files, corpus, hub, factory"
            )
        files = self._files(section.get("files"), "data.files", model.task)
        eval_files = self._files(section.get("eval_files"), "data.eval_files", model.task)
        if eval_files and not files:
            self.problems.add(
                "data.eval_files", "given without data.files; expected them with files only"
            )
        corpus = section.get("corpus")
        if corpus is not None:
            corpus = self._choice(corpus, "data.corpus", BUILTIN_CORPORA)
            if model.task != "causal-lm":
                self.problems.add(
                    "data.corpus", f"{corpus!r} is plain text; it serves task causal-lm only"
                )
        hub = self._text(section.get("hub"), "data.hub", "a datasets hub id")
        if hub is not None:
            import importlib.util

            if importlib.util.find_spec("datasets") is None:
                self.problems.add(
                    "data.hub",
                    f"found {hub!r}, but the `datasets` package is not installed (pip install datasets)",
                )
        factory = self._factory(section.get("factory"), "data.factory")
        tokenizer = section.get("tokenizer", BYTES_TOKENIZER)
        if tokenizer != BYTES_TOKENIZER:
            tokenizer = (
                self._local_or_hub(tokenizer, "data.tokenizer", "a tokenizer") or BYTES_TOKENIZER
            )
        block_size = self._int(section.get("block_size"), "data.block_size", minimum=2, default=128)
        eval_fraction = self._number(
            section.get("eval_fraction"),
            "data.eval_fraction",
            "a number between 0 and 1 (exclusive)",
            lambda v: 0 < v < 1,
        )
        max_eval = self._int(section.get("max_eval_samples"), "data.max_eval_samples", minimum=1)
        text_column = self._text(section.get("text_column"), "data.text_column") or "text"
        label_column = self._text(section.get("label_column"), "data.label_column") or "label"
        self._check_model_fits_data(tokenizer, block_size)
        return DataSpec(
            files=tuple(files),
            eval_files=tuple(eval_files),
            corpus=corpus,
            hub=hub,
            factory=factory,
            tokenizer=tokenizer,
            block_size=block_size,
            eval_fraction=0.1 if eval_fraction is None else float(eval_fraction),
            max_eval_samples=max_eval,
            text_column=text_column,
            label_column=label_column,
        )

    def _files(self, value: Any, path: str, task: str) -> list[str]:
        if value is None:
            return []
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not values:
            self.problems.found(path, value, "a file path or a non-empty list of them")
            return []
        found: list[str] = []
        for index, item in enumerate(values):
            where = path if isinstance(value, str) else f"{path}[{index}]"
            if not isinstance(item, str) or not item.strip():
                self.problems.found(where, item, "a file path")
                continue
            file = Path(item).expanduser()
            suffix = file.suffix.lower()
            if suffix not in DATA_FILE_SUFFIXES:
                self.problems.found(
                    where, item, f"a file ending in {', '.join(DATA_FILE_SUFFIXES)}"
                )
            elif suffix == ".txt" and task == "sequence-classification":
                self.problems.found(
                    where,
                    item,
                    "a .jsonl or .csv file with text and label columns (task sequence-classification)",
                )
            if not file.is_file():
                state = "is a directory" if file.is_dir() else "does not exist"
                self.problems.add(
                    where,
                    f"found {item!r}, but {file.absolute()} {state}; expected an existing file",
                )
                continue
            found.append(str(file.absolute()))
        return found

    def _check_model_fits_data(self, tokenizer: str, block_size: int | None) -> None:
        config = self.model_config
        if config is None:
            return
        vocab = getattr(config, "vocab_size", None)
        if tokenizer == BYTES_TOKENIZER and _is_int(vocab) and vocab < 256:
            self.problems.add(
                "model.config.vocab_size", f"found {vocab}; the bytes tokenizer needs >= 256"
            )
        positions = getattr(config, "max_position_embeddings", None)
        if block_size and _is_int(positions) and block_size > positions:
            self.problems.add(
                "data.block_size",
                f"found {block_size}, but the model has {positions} positions; expected <= {positions}",
            )

    # --- training and space

    def _training(self) -> dict[str, Any]:
        from trainer.args import FIELD_NAMES

        self.field_names = FIELD_NAMES
        section = self._mapping("training")
        names = sorted(FIELD_NAMES)
        for key in section:
            if key not in FIELD_NAMES:
                hint = did_you_mean(key, names) or " (see trainer.TrainingArguments for the fields)"
                self.problems.add(f"training.{key}", f"not a TrainingArguments field{hint}")
        return {k: v for k, v in section.items() if k in FIELD_NAMES}

    def _space(self, model: ModelSpec) -> tuple[ParamSpec, ...]:
        section = self._mapping("space", required=True)
        if "space" in self.raw and isinstance(self.raw["space"], dict) and not section:
            self.problems.add("space", "empty; expected at least one parameter to search")
        params = []
        for name, definition in section.items():
            self._check_param_name(name, model)
            param = self._param(name, definition)
            if param is not None:
                params.append(param)
        return tuple(params)

    def _check_param_name(self, name: str, model: ModelSpec) -> None:
        path = f"space.{name}"
        if name.startswith(_MODEL_PREFIX):
            attribute = name[len(_MODEL_PREFIX) :]
            if not attribute:
                self.problems.add(path, "expected model.<config attribute>, e.g. model.n_layer")
            elif self.model_config is not None and not hasattr(self.model_config, attribute):
                model_type = getattr(self.model_config, "model_type", "model")
                hint = did_you_mean(attribute, _config_keys(self.model_config))
                self.problems.add(
                    path, f"{attribute!r} is not an attribute of a {model_type} config{hint}"
                )
        elif name not in self.field_names:
            hint = did_you_mean(name, sorted(self.field_names))
            self.problems.add(
                path, f"neither a TrainingArguments field nor model.<config attribute>{hint}"
            )

    def _param(self, name: str, definition: Any) -> ParamSpec | None:
        path = f"space.{name}"
        if not isinstance(definition, dict) or not definition:
            self.problems.found(path, definition, "{type: float|int|categorical, ...}")
            return None
        kind = definition.get("type")
        if not isinstance(kind, str) or kind not in PARAM_KEYS:
            expected = "one of float, int, categorical"
            if kind is None:
                self.problems.add(f"{path}.type", f"missing; expected {expected}")
            else:
                self.problems.found(f"{path}.type", kind, expected, did_you_mean(kind, PARAM_KEYS))
            return None
        allowed = PARAM_KEYS[kind]
        for key in definition:
            if key not in allowed:
                other = [t for t, keys in PARAM_KEYS.items() if key in keys and t != kind]
                note = (
                    f"; {key} applies to type {' / '.join(other)}"
                    if other
                    else did_you_mean(key, allowed)
                )
                self.problems.add(
                    f"{path}.{key}",
                    f"unknown key for type {kind}; expected one of {', '.join(allowed)}{note}",
                )
        if kind == "categorical":
            return self._categorical(name, definition.get("choices"))
        return self._numeric(name, kind, definition)

    def _categorical(self, name: str, choices: Any) -> ParamSpec | None:
        path = f"space.{name}.choices"
        if choices is None:
            self.problems.add(path, "missing; expected a non-empty list of values")
            return None
        if not isinstance(choices, list) or not choices:
            self.problems.found(path, choices, "a non-empty list of values")
            return None
        ok = True
        for index, choice in enumerate(choices):
            if choice is not None and not isinstance(choice, (bool, int, float, str)):
                self.problems.found(
                    f"{path}[{index}]", choice, "a number, text, true/false or null"
                )
                ok = False
        if ok and len({repr(c) for c in choices}) != len(choices):
            self.problems.found(path, choices, "distinct values")
            ok = False
        return ParamSpec(name=name, type="categorical", choices=tuple(choices)) if ok else None

    def _numeric(self, name: str, kind: str, definition: Mapping[str, Any]) -> ParamSpec | None:
        path = f"space.{name}"
        is_ok = _is_int if kind == "int" else _is_number
        expected = "an integer" if kind == "int" else "a number"
        bounds = {}
        for key in ("low", "high"):
            value = definition.get(key)
            if value is None:
                self.problems.add(f"{path}.{key}", f"missing; expected {expected}")
            elif not is_ok(value) or (kind == "float" and not math.isfinite(value)):
                self.problems.found(f"{path}.{key}", value, expected)
            else:
                bounds[key] = value
        log = definition.get("log", False)
        if not isinstance(log, bool):
            self.problems.found(f"{path}.log", log, "true or false")
            log = False
        step = definition.get("step")
        if step is not None and (not is_ok(step) or step <= 0):
            self.problems.found(f"{path}.step", step, f"{expected} > 0")
            step = None
        if len(bounds) < 2:
            return None
        low, high = bounds["low"], bounds["high"]
        problems_before = len(self.problems)
        if low > high:
            self.problems.add(path, f"low {low!r} > high {high!r}; expected low <= high")
        if log and low <= 0:
            self.problems.add(
                f"{path}.low", f"found {low!r} with log: true; expected low > 0 on a log scale"
            )
        if log and step is not None and not (kind == "int" and step == 1):
            self.problems.add(
                f"{path}.step", f"found {step!r} with log: true; a log scale takes no step"
            )
        if len(self.problems) > problems_before:
            return None
        if kind == "float":
            low, high = float(low), float(high)
            step = None if step is None else float(step)
        return ParamSpec(name=name, type=kind, low=low, high=high, log=log, step=step)

    def _check_training_values(
        self, training: dict[str, Any], space: tuple[ParamSpec, ...]
    ) -> None:
        """TrainingArguments judges the shared values, then each end of the space."""
        from trainer.args import TrainingArguments

        base = _rejections(TrainingArguments, training)
        for field, message in base:
            self.problems.add(f"training.{field}" if field else "training", message)
        seen = {message for _, message in base}
        training_params = [p for p in space if not p.is_model_param and p.name in self.field_names]
        for end in ("low", "high"):
            point = {p.name: _end_value(p, end) for p in training_params}
            for field, message in _rejections(TrainingArguments, {**training, **point}):
                if message in seen:
                    continue
                seen.add(message)
                path = (
                    f"space.{field}"
                    if field in point
                    else f"training.{field}"
                    if field
                    else "training"
                )
                self.problems.add(path, f"at the {end} end of the space: {message}")
        self._check_model_ends(space)

    def _check_model_ends(self, space: tuple[ParamSpec, ...]) -> None:
        config = self.model_config
        model_params = [
            p for p in space if p.is_model_param and hasattr(config, p.name[len(_MODEL_PREFIX) :])
        ]
        if config is None or not model_params:
            return
        settings = self.config_settings
        reported = set()
        for end in ("low", "high"):
            point = {p.name[len(_MODEL_PREFIX) :]: _end_value(p, end) for p in model_params}
            try:
                rejection = _model_rejection(
                    _build_config(config.model_type, {**settings, **point}), self.task
                )
            except Exception as error:
                rejection = _one_line(error)
            if rejection and rejection not in reported:
                reported.add(rejection)
                names = ", ".join(p.name for p in model_params)
                self.problems.add(
                    f"space ({names})",
                    f"at the {end} end: {config.model_type} rejects {point}: {rejection}",
                )

    # --- sampler, pruner, scheduler

    def _search(
        self,
        backend: str,
        objective: ObjectiveSpec,
        training: dict[str, Any],
        space: tuple[ParamSpec, ...],
    ) -> tuple[ComponentSpec, ComponentSpec, ComponentSpec | None]:
        """(sampler, pruner, scheduler): the file's choices, checked, or the defaults."""
        if backend == "ray":
            sampler, pruner, scheduler = self._ray_search(objective, training, space)
        else:
            sampler, pruner, scheduler = self._optuna_search(objective, training)
        if sampler is not None:
            self._check_sampler(sampler, objective, space)
        return sampler or default_sampler(), pruner or ComponentSpec("none"), scheduler

    def _optuna_search(
        self, objective: ObjectiveSpec, training: dict[str, Any]
    ) -> tuple[ComponentSpec | None, ComponentSpec | None, None]:
        from hpo import components

        raw = self.raw
        sampler = default_sampler()
        if raw.get("sampler") is not None:
            sampler = self._component("sampler", raw["sampler"], components.SAMPLERS)
        pruner = default_pruner(training)
        if raw.get("pruner") is not None:
            pruner = self._component("pruner", raw["pruner"], components.PRUNERS)
        if raw.get("scheduler") is not None:
            self.warnings.append("scheduler: ignored by backend optuna, which prunes with `pruner`")
        if pruner is None or pruner.name == "none":
            return sampler, pruner, None
        self._check_built("pruner", pruner, lambda: components.build_pruner(pruner))
        if objective.is_multi:
            self.warnings.append(
                f"pruner: {pruner.name} switched off: Optuna cannot prune multi-objective studies"
            )
            return sampler, ComponentSpec("none"), None
        if training.get("eval_strategy", "no") == "no":
            self.warnings.append(
                "pruner: training.eval_strategy is 'no', so trials report no intermediate "
                "values and nothing is pruned"
            )
        return sampler, pruner, None

    def _ray_search(
        self, objective: ObjectiveSpec, training: dict[str, Any], space: tuple[ParamSpec, ...]
    ) -> tuple[ComponentSpec | None, ComponentSpec, ComponentSpec | None]:
        from hpo import components

        raw = self.raw
        scheduler: ComponentSpec | None = default_scheduler(training)
        if raw.get("scheduler") is not None:
            scheduler = self._component("scheduler", raw["scheduler"], components.SCHEDULERS)
        if scheduler is not None:
            self._check_scheduler(scheduler, objective, space)
        # Population-based schedulers explore by themselves; a model-based search would fight them.
        population_based = scheduler is not None and scheduler.name in ("pbt", "pb2")
        sampler = ComponentSpec("random", {"seed": 0}) if population_based else default_sampler()
        if raw.get("sampler") is not None:
            sampler = self._component("sampler", raw["sampler"], components.RAY_SAMPLERS)
        if raw.get("pruner") is not None:
            self.warnings.append("pruner: ignored by backend ray, whose scheduler stops trials")
        if objective.is_multi:
            self.problems.add(
                "objective", "backend ray takes one metric; its schedulers compare a single value"
            )
        return sampler, ComponentSpec("none"), scheduler

    def _component(
        self,
        kind: str,
        value: Any,
        registry: Mapping[str, str] | tuple[str, ...],
        path: str | None = None,
    ) -> ComponentSpec | None:
        """`{name: ..., **options}` (or just the name) -> a ComponentSpec with checked option names."""
        from hpo import components

        path = path or kind
        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, dict):
            self.problems.found(path, value, f"a mapping {{name: ..., <options>}} or a {kind} name")
            return None
        names = tuple(registry)
        name = value.get("name")
        if name not in names:
            if name is None:
                self.problems.add(f"{path}.name", f"missing; expected one of {', '.join(names)}")
            else:
                self.problems.found(
                    f"{path}.name", name, f"one of {', '.join(names)}", did_you_mean(name, names)
                )
            return None
        options = {k: v for k, v in value.items() if k != "name"}
        allowed = components.option_names(kind, name)
        filled = components.backend_filled(kind, name)
        for key in options:
            if key in filled:
                self.problems.add(f"{path}.{key}", f"set by hpo ({filled[key]}); remove it")
            elif key not in allowed:
                choices = ", ".join(allowed) or "none"
                self.problems.add(
                    f"{path}.{key}",
                    f"not an option of {kind} {name} (options: {choices}){did_you_mean(key, allowed)}",
                )
        required = _required_options(components.component_class(kind, name), filled)
        for key in required:
            if key not in options:
                self.problems.add(f"{path}.{key}", f"missing; {kind} {name} requires it")
        for package in components.missing_packages(kind, name):
            self.problems.add(
                f"{path}.name",
                f"{kind} {name} needs the `{package}` package, which is not installed (pip install {package})",
            )
        options = {k: v for k, v in options.items() if k in allowed}
        if kind == "sampler" and "seed" in allowed and "seed" not in options:
            options["seed"] = 0  # reproducible by default; `seed: null` asks for a random one
        if kind == "pruner" and name == "patient" and options.get("wrapped_pruner") is not None:
            options["wrapped_pruner"] = self._component(
                "pruner", options["wrapped_pruner"], components.PRUNERS, f"{path}.wrapped_pruner"
            )
        return ComponentSpec(name, options)

    def _check_built(self, kind: str, spec: ComponentSpec, build: Any) -> None:
        if any(line.startswith(kind) for line in self.problems.lines):
            return  # its option names are already wrong: constructing would only repeat that
        try:
            with _quiet():
                build()
        except Exception as error:
            self.problems.add(kind, f"{spec.name} rejects {dict(spec.options)}: {_one_line(error)}")

    def _check_sampler(
        self, sampler: ComponentSpec, objective: ObjectiveSpec, space: tuple[ParamSpec, ...]
    ) -> None:
        from hpo import components
        from hpo.space import is_gridable

        if sampler.name == "grid":
            for param in space:
                if not is_gridable(param):
                    self.problems.add(
                        f"space.{param.name}",
                        "a continuous float cannot be searched by sampler grid; give it a step or make it categorical",
                    )
        if objective.is_multi and sampler.name not in components.MULTI_OBJECTIVE_SAMPLERS:
            self.problems.add(
                "sampler.name",
                f"{sampler.name} handles one objective; for several use one of {', '.join(components.MULTI_OBJECTIVE_SAMPLERS)}",
            )
        if sampler.name in components.SAMPLERS:
            self._check_built(
                "sampler", sampler, lambda: components.build_sampler(sampler, space=space)
            )

    def _check_scheduler(
        self, scheduler: ComponentSpec, objective: ObjectiveSpec, space: tuple[ParamSpec, ...]
    ) -> None:
        from hpo import components

        names = {p.name for p in space}
        if scheduler.name == "pbt":
            mutations = scheduler.options.get("hyperparam_mutations")
            if mutations is None and not any(not p.is_model_param for p in space):
                self.problems.add(
                    "scheduler",
                    "pbt mutates training params, and space has none; add one (e.g. learning_rate)",
                )
            if mutations is not None:
                self._check_named_values(
                    mutations,
                    "scheduler.hyperparam_mutations",
                    names,
                    self._mutation_values_ok,
                    "a non-empty list of values",
                )
        if scheduler.name == "pb2":
            bounds = scheduler.options.get("hyperparam_bounds")
            if bounds is not None:
                self._check_named_values(
                    bounds,
                    "scheduler.hyperparam_bounds",
                    names,
                    _bounds_ok,
                    "[low, high] with low < high",
                )
            elif not any(p.type != "categorical" and not p.is_model_param for p in space):
                self.problems.add(
                    "scheduler", "pb2 needs a numeric training param in space to tune"
                )
        if "time_attr" in scheduler.options and not isinstance(scheduler.options["time_attr"], str):
            self.problems.found(
                "scheduler.time_attr",
                scheduler.options["time_attr"],
                "a reported metric name, e.g. training_iteration",
            )
        mode = "min" if objective.directions[0] == "minimize" else "max"
        self._check_built(
            "scheduler",
            scheduler,
            lambda: components.build_scheduler(
                scheduler, metric=objective.metrics[0], mode=mode, space=space
            ),
        )

    def _check_named_values(
        self, value: Any, path: str, names: set[str], ok: Any, expected: str
    ) -> None:
        if not isinstance(value, dict) or not value:
            self.problems.found(path, value, "a mapping of space params to values")
            return
        for key, values in value.items():
            if key not in names:
                self.problems.add(
                    f"{path}.{key}", f"not a param of space{did_you_mean(key, names)}"
                )
            if not ok(values):
                self.problems.found(f"{path}.{key}", values, expected)

    @staticmethod
    def _mutation_values_ok(values: Any) -> bool:
        return isinstance(values, list) and len(values) > 0

    # --- ray

    def _ray(self, workers: int) -> dict[str, Any]:
        section = self._mapping("ray")
        self.problems.unknown_keys(section, RAY_KEYS, "ray")
        address = self._text(
            section.get("address"), "ray.address", "auto, host:port or ray://host:port"
        )
        resources_raw = self._as_mapping(
            section.get("resources_per_trial"), "ray.resources_per_trial"
        )
        self.problems.unknown_keys(resources_raw, RESOURCE_KEYS, "ray.resources_per_trial")
        resources = {"cpu": 1, "gpu": 0}
        for key in RESOURCE_KEYS:
            value = self._number(
                resources_raw.get(key),
                f"ray.resources_per_trial.{key}",
                "a number >= 0",
                lambda v: v >= 0,
            )
            if value is not None:
                resources[key] = value
        storage_path = self._text(
            section.get("storage_path"), "ray.storage_path", "a directory path"
        )
        return {
            "address": address,
            "resources_per_trial": resources,
            "max_concurrent_trials": self._int(
                section.get("max_concurrent_trials"),
                "ray.max_concurrent_trials",
                minimum=1,
                default=workers,
            ),
            "storage_path": str(Path(storage_path).expanduser().absolute())
            if storage_path
            else None,
            "max_failures": self._int(
                section.get("max_failures"), "ray.max_failures", minimum=0, default=0
            ),
        }


# ------------------------------------------------------------------------- helpers


def _build_config(model_type: str, settings: Mapping[str, Any]) -> Any:
    from transformers import AutoConfig

    with _quiet():
        return AutoConfig.for_model(model_type, **settings)


def _model_rejection(config: Any, task: str) -> str | None:
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

    auto = (
        transformers.AutoModelForSequenceClassification
        if task == "sequence-classification"
        else transformers.AutoModelForCausalLM
    )
    try:
        with _quiet(), torch.device("meta"):
            auto.from_config(config)
    except ValueError as error:
        return _one_line(error)
    except Exception:
        return None
    return None


def _config_keys(config: Any) -> list[str]:
    return sorted(set(config.to_dict()) | set(getattr(config, "attribute_map", {})))


def _required_options(cls: type, filled: Mapping[str, str]) -> list[str]:
    import inspect

    return [
        p.name
        for p in inspect.signature(cls).parameters.values()
        if p.default is p.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        and p.name not in filled
    ]


def _bounds_ok(values: Any) -> bool:
    return (
        isinstance(values, list)
        and len(values) == 2
        and all(_is_number(v) for v in values)
        and values[0] < values[1]
    )


def _end_value(param: ParamSpec, end: str) -> Any:
    if param.type == "categorical":
        return param.choices[0] if end == "low" else param.choices[-1]
    return param.low if end == "low" else param.high


_FIELD_MESSAGE = re.compile(r"^(?P<field>[a-z_][a-z0-9_]*)=")


def _rejections(cls: type, values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for each value TrainingArguments rejects; empty when it accepts them."""
    try:
        cls(**values)
    except (ValueError, TypeError) as error:
        items = [
            line.strip()[2:] for line in str(error).splitlines() if line.strip().startswith("- ")
        ]
        items = items or [_one_line(error)]
        result = []
        for item in items:
            match = _FIELD_MESSAGE.match(item)
            result.append((match.group("field") if match else "", item))
        return result
    return []


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence library warnings while validating: the user sees our problems, not theirs."""
    logger = logging.getLogger("transformers")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _current_directory_importable() -> Iterator[None]:
    """Factories are found like relative paths: from the current directory, as with `python -m`."""
    import sys

    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    # Validation creates nothing, not even a __pycache__ folder beside the user's module.
    dont_write_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        yield
    finally:
        sys.dont_write_bytecode = dont_write_bytecode
        if added and cwd in sys.path:
            sys.path.remove(cwd)
