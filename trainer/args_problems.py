"""How TrainingArguments reports what it rejects: the structured problem and error, and the
collector every group of fields (`trainer/args_*.py`) appends its checks' problems to.

Torch-free, like every module of TrainingArguments: the orchestrator reads the fields in
processes that never train.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ArgumentProblem:
    """One rejected value: its field, the value, and what is expected instead.

    str() is `field=value: expected`, or `text` where the problem is a combination of fields
    (the sentence then names each of them); `field` is the one a fix starts from.
    """

    field: str
    value: Any
    expected: str
    text: str | None = None

    def __str__(self) -> str:
        return (
            self.text if self.text is not None else f"{self.field}={self.value!r}: {self.expected}"
        )


class TrainingArgumentsError(ValueError):
    """TrainingArguments rejected its values; `problems` holds every one of them."""

    def __init__(self, problems: list[ArgumentProblem], unknown_fields: bool = False) -> None:
        self.problems = list(problems)
        self.unknown_fields = unknown_fields
        if unknown_fields:
            message = "Unknown TrainingArguments field(s): " + "; ".join(map(str, problems))
        else:
            message = "Invalid TrainingArguments:\n  - " + "\n  - ".join(map(str, problems))
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from the problems (Ray and multiprocessing pickle exceptions).
        return (type(self), (self.problems, self.unknown_fields))


class Problems(list[ArgumentProblem]):
    """The problems of one TrainingArguments, in the order its checks found them."""

    def __init__(self, args: Any) -> None:
        super().__init__()
        self.args = args

    def need(self, ok: bool, name: str, allowed: str) -> None:
        """Unless `ok`: field `name` (its current value) is not `allowed`."""
        if not ok:
            self.append(ArgumentProblem(name, getattr(self.args, name), allowed))


def set_derived(args: Any, name: str, value: Any) -> None:
    """Set a value the arguments derive themselves (no per-field check: it is ours)."""
    object.__setattr__(args, name, value)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def positive_steps(value: Any) -> bool:
    """An interval in steps: an integer >= 1, or a fraction in (0, 1) of the total steps."""
    return is_number(value) and (0 < value < 1 or (is_int(value) and value >= 1))


def whole_steps(args: Any, *names: str) -> None:
    """A float step count that is a whole number (10.0, from a YAML or a CLI) becomes an int."""
    for name in names:
        value = getattr(args, name)
        if isinstance(value, float) and value >= 1 and value == int(value):
            set_derived(args, name, int(value))


def enum_values(args: Any, *names: str) -> None:
    """A Transformers enum member (IntervalStrategy.STEPS) becomes its string value."""
    for name in names:
        value = getattr(args, name)
        if hasattr(value, "value"):
            set_derived(args, name, value.value)
