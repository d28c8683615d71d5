"""Typed reads of a study file: each returns a usable value (or a fallback) and records problems."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeGuard

from hpo.study.problems import Problems, did_you_mean


def is_int(value: Any) -> TypeGuard[int]:
    """An integer, and not a bool (YAML's `true` is an int to Python)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> TypeGuard[float]:
    """An int or a float, and not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Reader:
    """The raw file, the problems and warnings found so far, and the typed reads."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.problems = Problems()
        self.warnings: list[str] = []

    def mapping(self, key: str, *, required: bool = False) -> dict[str, Any]:
        """The top-level section `key` as a mapping of text keys ({} when absent or wrong)."""
        return self.as_mapping(self.raw.get(key), key, required=required)

    def as_mapping(self, value: Any, path: str, *, required: bool = False) -> dict[str, Any]:
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

    def choice(self, value: Any, path: str, options: tuple[str, ...]) -> str:
        if value not in options:
            expected = f"one of {', '.join(options)}"
            self.problems.found(path, value, expected, did_you_mean(value, options))
            return options[0]
        return value

    def integer(
        self, value: Any, path: str, *, minimum: int, default: int | None = None
    ) -> int | None:
        if value is None:
            return default
        if not is_int(value) or value < minimum:
            self.problems.found(path, value, f"an integer >= {minimum}")
            return default
        return value

    def number(
        self, value: Any, path: str, expected: str, ok: Callable[[Any], bool]
    ) -> float | None:
        if value is None:
            return None
        if not is_number(value) or not ok(value):
            self.problems.found(path, value, expected)
            return None
        return value

    def text(self, value: Any, path: str, expected: str = "a non-empty text") -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.problems.found(path, value, expected)
            return None
        return value

    def text_list(self, value: Any, path: str, expected: str) -> list[str]:
        """One text or a non-empty list of texts, as a list ([] with a problem otherwise)."""
        values = [value] if isinstance(value, str) else value
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, str) and v.strip() for v in values)
        ):
            self.problems.found(path, value, expected)
            return []
        return list(values)
