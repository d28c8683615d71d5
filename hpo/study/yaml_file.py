"""Reading the study file's YAML: safely, with duplicate keys refused and YAML 1.2 floats.

A study file is small. A hostile or mistaken one must not exhaust the machine, so the reading
is bounded before anything is built from it: only a regular file (not /dev/zero, not a FIFO
that would block), at most MAX_FILE_BYTES, nested at most MAX_DEPTH deep, and at most
MAX_NODES values once its aliases are expanded (a 700-byte "billion laughs" file expands to
billions).
"""

from __future__ import annotations

import os
import re
import stat
from typing import Any

import yaml

from hpo.errors import StudyFileError

MAX_FILE_BYTES = 1_000_000
MAX_DEPTH = 100
MAX_NODES = 100_000


class DocumentTooLarge(Exception):
    """The document breaks one of the bounds; the message says which and what to do."""


class _StudyLoader(yaml.SafeLoader):
    """`yaml.safe_load`, plus: a repeated key is an error, `1e-4` is a float (YAML 1.2), and
    nesting deeper than MAX_DEPTH is an error (not a RecursionError).

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

    _depth = 0  # how deep the node being composed is nested

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        # PyYAML composes recursively: without a bound, deep nesting ends in a RecursionError.
        depth = self._depth
        if depth >= MAX_DEPTH:
            mark = self.peek_event().start_mark
            raise DocumentTooLarge(
                f"line {mark.line + 1}: nested more than {MAX_DEPTH} levels deep; "
                "a study file needs a few levels"
            )
        self._depth = depth + 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth = depth


_StudyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def expanded_size(node: yaml.Node, limit: int) -> int:
    """How many nodes `node` holds with every alias expanded, counted up to just past `limit`.

    Each node's size is computed once (aliases share nodes), so counting costs what the file
    holds, not what it expands to.
    """
    sizes: dict[int, int] = {}
    order, stack = [], [node]
    while stack:  # children before parents, without recursion
        current = stack.pop()
        if id(current) in sizes:
            continue
        sizes[id(current)] = -1
        order.append(current)
        stack.extend(_children(current))
    for current in reversed(order):
        total = 1 + sum(max(sizes[id(child)], 0) for child in _children(current))
        sizes[id(current)] = min(total, limit + 1)
    return sizes[id(node)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def read_text(path: str | os.PathLike[str]) -> str:
    """The text of a regular file of at most MAX_FILE_BYTES; a StudyFileError otherwise."""
    source = str(path)
    try:
        info = os.stat(path)  # before opening: opening a FIFO would block
    except FileNotFoundError:
        raise StudyFileError(source, [f"{source}: no such file"]) from None
    except OSError as error:
        raise StudyFileError(source, [f"{source}: cannot be read ({error.strerror})"]) from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise StudyFileError(source, [f"{source}: {kind}; expected a study file (YAML)"])
    if info.st_size > MAX_FILE_BYTES:
        raise StudyFileError(source, [_too_big(source, info.st_size)])
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)  # the file may have grown since stat
    except OSError as error:
        raise StudyFileError(source, [f"{source}: cannot be read ({error.strerror})"]) from None
    if len(data) > MAX_FILE_BYTES:
        raise StudyFileError(source, [_too_big(source, len(data))])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise StudyFileError(
            source, [f"{source}: not UTF-8 text (byte {error.start}); expected a YAML file"]
        ) from None


def _too_big(source: str, size: int) -> str:
    return (
        f"{source}: {size:,} bytes, more than a study file's limit of {MAX_FILE_BYTES:,}; "
        "put data in data.files, not in the study file"
    )


def parse_yaml(text: str) -> Any:
    """The YAML document in `text`, within the bounds above; a DocumentTooLarge or YAMLError otherwise."""
    loader = _StudyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = expanded_size(node, MAX_NODES)
        if size > MAX_NODES:
            raise DocumentTooLarge(
                f"more than {MAX_NODES:,} values once its aliases (*name) are expanded; "
                "a study file needs a few hundred"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_study_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The file's top-level mapping; a StudyFileError for a missing file or bad YAML."""
    source = str(path)
    text = read_text(path)
    try:
        raw = parse_yaml(text)
    except DocumentTooLarge as error:
        raise StudyFileError(source, [str(error)]) from None
    except yaml.MarkedYAMLError as error:
        raise StudyFileError(source, [_yaml_problem(error)]) from None
    except yaml.YAMLError as error:
        raise StudyFileError(source, [f"YAML syntax error: {error}"]) from None
    except ValueError as error:  # e.g. an integer of more than 4300 digits
        detail = str(error).split(";")[0][:160]
        raise StudyFileError(source, [f"a value cannot be read: {detail}"]) from None
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
