"""A sampler, pruner or scheduler as written (`{name, <options>}` or a name), checked against
the class it names, and constructed once to let the class judge its values."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hpo.spec import ComponentSpec
from hpo.study.guarded_calls import one_line, quiet
from hpo.study.problems import did_you_mean
from hpo.study.reader import Reader


def read_component(
    reader: Reader,
    kind: str,
    value: Any,
    registry: Mapping[str, str] | tuple[str, ...],
    path: str | None = None,
) -> ComponentSpec | None:
    """`{name: ..., **options}` (or just the name) -> a ComponentSpec with checked option names."""
    from hpo.search import components

    problems = reader.problems
    path = path or kind
    value = component_shape(reader, kind, value, registry, path)
    if value is None:
        return None
    name = value["name"]
    options = {k: v for k, v in value.items() if k != "name"}
    allowed = components.option_names(kind, name)
    filled = components.backend_filled(kind, name)
    for key in options:
        if key in filled:
            problems.add(f"{path}.{key}", f"set by hpo ({filled[key]}); remove it")
        elif key not in allowed:
            choices = ", ".join(allowed) or "none"
            problems.add(
                f"{path}.{key}",
                f"not an option of {kind} {name} (options: {choices}){did_you_mean(key, allowed)}",
            )
    required = _required_options(components.component_class(kind, name), filled)
    for key in required:
        if key not in options:
            problems.add(f"{path}.{key}", f"missing; {kind} {name} requires it")
    for package in components.missing_packages(kind, name):
        problems.add(
            f"{path}.name",
            f"{kind} {name} needs the `{package}` package, which is not installed (pip install {package})",
        )
    options = {k: v for k, v in options.items() if k in allowed}
    if kind == "sampler" and "seed" in allowed and "seed" not in options:
        options["seed"] = 0  # reproducible by default; `seed: null` asks for a random one
    if kind == "pruner" and name == "patient" and options.get("wrapped_pruner") is not None:
        options["wrapped_pruner"] = read_component(
            reader,
            "pruner",
            options["wrapped_pruner"],
            components.PRUNERS,
            f"{path}.wrapped_pruner",
        )
    return ComponentSpec(name, options)


def component_shape(
    reader: Reader,
    kind: str,
    value: Any,
    registry: Mapping[str, str] | tuple[str, ...],
    path: str | None = None,
) -> dict[str, Any] | None:
    """`value` as `{name: ..., **options}` when its form and name are right, else None (and a
    problem). Imports no library: the shape pass runs it before anything heavy."""
    problems = reader.problems
    path = path or kind
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        problems.found(path, value, f"a mapping {{name: ..., <options>}} or a {kind} name")
        return None
    names = tuple(registry)
    name = value.get("name")
    if name not in names:
        if name is None:
            problems.add(f"{path}.name", f"missing; expected one of {', '.join(names)}")
        else:
            problems.found(
                f"{path}.name", name, f"one of {', '.join(names)}", did_you_mean(name, names)
            )
        return None
    return value


def check_built(
    reader: Reader, kind: str, spec: ComponentSpec, build: Callable[[], object]
) -> None:
    """Construct the component: its class judges the option values."""
    if any(line.startswith(kind) for line in reader.problems.lines):
        return  # its option names are already wrong: constructing would only repeat that
    try:
        with quiet():
            build()
    except Exception as error:
        reader.problems.add(kind, f"{spec.name} rejects {dict(spec.options)}: {one_line(error)}")


def _required_options(cls: type, filled: Mapping[str, str]) -> list[str]:
    """Constructor parameters without a default that hpo does not fill in itself."""
    import inspect

    return [
        p.name
        for p in inspect.signature(cls).parameters.values()
        if p.default is p.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        and p.name not in filled
    ]
