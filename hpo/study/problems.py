"""Collecting problems: each line `key path: what was found, what is expected`."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any


class Problems:
    """Problem lines, each `path: what was found, what is expected`."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.lines)

    def __len__(self) -> int:
        return len(self.lines)

    def add(self, path: str, message: str) -> None:
        # Checks of the shape pass run again in the full pass: say each problem once.
        line = f"{path}: {message}"
        if line not in self.lines:
            self.lines.append(line)

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

    def exactly_one_of(
        self, section: Mapping[str, Any], sources: tuple[str, ...], path: str
    ) -> None:
        """A section (model, data) must name exactly one of its alternative sources."""
        given = [key for key in sources if section.get(key) is not None]
        if section and len(given) != 1:
            found = " and ".join(given) if given else "none"
            self.add(path, f"found {found}; expected exactly one of {', '.join(sources)}")


def show(value: Any) -> str:
    """`value` as the user wrote it, cut short so one problem stays on one line."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def did_you_mean(word: Any, options: Any) -> str:
    """A ` (did you mean 'x'?)` hint for a near miss, or ""."""
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
