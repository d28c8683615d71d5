"""Collecting problems: each line `key path: what was found, what is expected`."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
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
                    f"unknown key; expected one of {key_list(allowed)}{did_you_mean(key, allowed)}",
                )

    def exactly_one_of(
        self, section: Mapping[str, Any], sources: tuple[str, ...], path: str
    ) -> None:
        """A section (model, data) must name exactly one of its alternative sources."""
        given = [key for key in sources if section.get(key) is not None]
        if section and len(given) != 1:
            found = " and ".join(given) if given else "none"
            self.add(path, f"found {found}; expected exactly one of {', '.join(sources)}")


SHOW_CHARS = 80
# A problem stays one line of a screen: the study file's 20-odd top-level keys are cut short
# (the near miss is named by did_you_mean, the whole list is in docs/STUDY_FILE.md).
KEY_LIST_CHARS = 120


def key_list(keys: tuple[str, ...] | list[str]) -> str:
    """`keys` joined by commas, cut at KEY_LIST_CHARS with how many were left out."""
    text = ", ".join(keys)
    if len(text) <= KEY_LIST_CHARS:
        return text
    shown = text[:KEY_LIST_CHARS].rsplit(", ", 1)[0]
    left_out = len(keys) - len(shown.split(", "))
    return f"{shown} and {left_out} more (see docs/STUDY_FILE.md)"


def show(value: Any) -> str:
    """`value` as the user wrote it, cut short so one problem stays on one line.

    Rendered piece by piece and stopped at the limit: a value built from YAML aliases can be
    small in memory and astronomically long as text.
    """
    pieces: list[str] = []
    length = 0
    for piece in _repr_pieces(value):
        pieces.append(piece)
        length += len(piece)
        if length > SHOW_CHARS:
            break
    text = "".join(pieces)
    return text if len(text) <= SHOW_CHARS else text[: SHOW_CHARS - 3] + "..."


def _repr_pieces(value: Any) -> Iterator[str]:
    """repr(value) in pieces, lazily (lists, tuples and dicts are walked, the rest repr'd)."""
    if isinstance(value, dict):
        yield "{"
        for index, (key, item) in enumerate(value.items()):
            yield ", " if index else ""
            yield from _repr_pieces(key)
            yield ": "
            yield from _repr_pieces(item)
        yield "}"
    elif isinstance(value, (list, tuple)):
        yield "[" if isinstance(value, list) else "("
        for index, item in enumerate(value):
            yield ", " if index else ""
            yield from _repr_pieces(item)
        yield "]" if isinstance(value, list) else ")"
    elif isinstance(value, str) and len(value) > SHOW_CHARS:
        yield repr(value[: SHOW_CHARS + 1])
    elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        yield f"<an integer of about {int(value.bit_length() * 0.30103) + 1} digits>"
    else:
        yield repr(value)


def did_you_mean(word: Any, options: Any) -> str:
    """A ` (did you mean 'x'?)` hint for a near miss, or ""."""
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
