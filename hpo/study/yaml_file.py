"""Reading the study file's YAML: safely, with duplicate keys refused and YAML 1.2 floats."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from hpo.errors import StudyFileError


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
    """`line L, column C: YAML syntax error: ...`, pointing at the problem in the file."""
    mark = error.problem_mark or error.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
    detail = error.problem or "syntax error"
    if error.context:
        context_mark = error.context_mark
        at = f" (line {context_mark.line + 1})" if context_mark else ""
        detail += f", {error.context}{at}"
    return f"{where}: YAML syntax error: {detail}"
