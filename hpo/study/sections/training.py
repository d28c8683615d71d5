"""The `training` section: TrainingArguments fields, judged by TrainingArguments itself."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hpo.spec import ParamSpec
from hpo.study.guarded_calls import one_line
from hpo.study.problems import did_you_mean
from hpo.study.reader import Reader
from hpo.study.sections.model import end_value


def read_training(reader: Reader) -> tuple[dict[str, Any], frozenset[str]]:
    """(the known training fields as given, every TrainingArguments field name)."""
    from trainer.args import FIELD_NAMES

    section = reader.mapping("training")
    names = sorted(FIELD_NAMES)
    for key in section:
        if key not in FIELD_NAMES:
            hint = did_you_mean(key, names) or " (see trainer.TrainingArguments for the fields)"
            reader.problems.add(f"training.{key}", f"not a TrainingArguments field{hint}")
    return {k: v for k, v in section.items() if k in FIELD_NAMES}, FIELD_NAMES


def check_training_values(
    reader: Reader,
    training: dict[str, Any],
    space: tuple[ParamSpec, ...],
    field_names: frozenset[str],
) -> None:
    """TrainingArguments judges the shared values, then each end of the space."""
    base = _rejections(training)
    for field, message in base:
        reader.problems.add(f"training.{field}" if field else "training", message)
    seen = {message for _, message in base}
    training_params = [p for p in space if not p.is_model_param and p.name in field_names]
    for end in ("low", "high"):
        point = {p.name: end_value(p, end) for p in training_params}
        for field, message in _rejections({**training, **point}):
            if message in seen:
                continue
            seen.add(message)
            path = (
                f"space.{field}" if field in point else f"training.{field}" if field else "training"
            )
            reader.problems.add(path, f"at the {end} end of the space: {message}")


def check_output_dir(reader: Reader, training: Mapping[str, Any], name: str) -> None:
    """`training.output_dir` (default runs/<name>) can be a folder: not a file, nor under one.

    Checked here, before anything is created, rather than by the first worker's traceback.
    """
    value = training.get("output_dir") or f"runs/{name}"
    if not isinstance(value, str):
        return  # TrainingArguments reports the type
    path = Path(value)
    for candidate in (path, *path.parents):
        if not candidate.exists():
            continue
        # (A read-only folder is the run's to report: `backends.objective.check_output_dir`.)
        if not candidate.is_dir():
            what = "is a file" if candidate == path else f"is under {candidate}, a file"
            reader.problems.add(
                "training.output_dir",
                f"{value!r} {what}; expected a folder (or a path where one can be created)",
            )
        return


def check_eval_grid(
    reader: Reader, training: Mapping[str, Any], space: tuple[ParamSpec, ...]
) -> None:
    """`eval_steps` beyond `max_steps`: no evaluation ever runs, so nothing is reported, pruned
    or compared (TrainingArguments accepts it: a plain training run may want that)."""
    if training.get("eval_strategy", "no") != "steps":
        return
    eval_steps = _int_values(training, space, "eval_steps")
    max_steps = [v for v in _int_values(training, space, "max_steps") if v > 0]
    if eval_steps and max_steps and max(eval_steps) > min(max_steps):
        searched = " (over the space's range)" if len(eval_steps) + len(max_steps) > 2 else ""
        reader.problems.add(
            "training.eval_steps",
            f"{max(eval_steps)} > max_steps {min(max_steps)}{searched}: that trial would never "
            "be evaluated; expected eval_steps <= max_steps",
        )


def _int_values(training: Mapping[str, Any], space: tuple[ParamSpec, ...], name: str) -> list[int]:
    """The integer values `name` takes: the training value, or the ends of its space range."""
    params = [p for p in space if p.name == name]
    values = (
        [end_value(params[0], end) for end in ("low", "high")] if params else [training.get(name)]
    )
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool)]


def training_rejections(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for each value TrainingArguments rejects in `values` (a whole set of
    training fields); empty when it accepts them."""
    return _rejections(values)


def _rejections(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for each value TrainingArguments rejects; empty when it accepts them.
    The field is "" for an error that names none."""
    from trainer.args import TrainingArguments, TrainingArgumentsError

    try:
        TrainingArguments(**values)
    except TrainingArgumentsError as error:
        return [(problem.field, str(problem)) for problem in error.problems]
    except (ValueError, TypeError) as error:
        return [("", one_line(error))]
    return []
