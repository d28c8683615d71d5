"""The `training` section: TrainingArguments fields, judged by TrainingArguments itself."""

from __future__ import annotations

from collections.abc import Mapping
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
