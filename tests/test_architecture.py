"""The layering of docs/ARCHITECTURE.md, checked on the source: imports go down, never up, and
never round in a circle.

Every `import` in hpo/ and trainer/ counts, including the lazy ones inside functions (a lazy
import upwards is still a dependency upwards); imports under `if TYPE_CHECKING:` do not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("hpo", "trainer")

# Lowest first. A module may import modules of its own layer or of lower ones. The first
# prefix that matches a module name gives its layer (longest prefixes are listed first).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("trainer", "trainer/__init__"),
    ("hpo.attrs", "hpo.errors", "hpo.durations", "hpo/__init__"),
    ("hpo.spec",),
    ("hpo.storage", "hpo.report.status", "hpo.report.progress"),
    ("hpo.search", "hpo.data"),
    ("hpo.study",),
    ("hpo.backends.objective", "hpo.backends.placement", "hpo.backends"),
    (
        "hpo.backends.optuna",
        "hpo.backends.ray",
        "hpo.report.export",
        "hpo.report.dashboard",
        "hpo.report.hub",
    ),
    ("hpo.cli", "hpo.report"),
)
# Where a prefix of a lower layer is also the start of a higher one's module (hpo.backends vs
# hpo.backends.optuna), the more specific prefix wins. "hpo/__init__" is the bare package.
_PREFIXES = sorted(
    ((prefix, rank) for rank, prefixes in enumerate(LAYERS) for prefix in prefixes),
    key=lambda item: -len(item[0]),
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {
        module_name(path): path for package in PACKAGES for path in (REPO / package).rglob("*.py")
    }


def layer_of(module: str) -> int:
    if module in ("hpo", "trainer"):  # the bare package: a docstring and its version
        return layer_of(f"{module}/__init__")
    for prefix, rank in _PREFIXES:
        if module == prefix or module.startswith(prefix + "."):
            return rank
    raise AssertionError(f"{module} is in no layer of LAYERS (and of docs/ARCHITECTURE.md)")


def imported_modules(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `path` imports, anywhere in it, outside `if TYPE_CHECKING:`."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                for alias in child.names:  # `from hpo.storage import reader` names a module
                    full = f"{child.module}.{alias.name}"
                    found.add(full if full in modules else child.module)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    resolved = set()
    for name in found:
        if name.split(".")[0] not in PACKAGES:
            continue
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        resolved.add(name)
    return resolved


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {
        name: imported_modules(path, modules) - {name} for name, path in sorted(modules.items())
    }


def test_the_trainer_never_imports_hpo(graph):
    offending = {
        module: sorted(t for t in targets if t.startswith("hpo"))
        for module, targets in graph.items()
        if module.startswith("trainer") and any(t.startswith("hpo") for t in targets)
    }
    assert not offending


def test_imports_go_down_the_layers(graph):
    upward = [
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in graph.items()
        for target in sorted(targets)
        # A package's __init__ may name its own submodules (the registry, facades).
        if layer_of(target) > layer_of(module) and not target.startswith(module + ".")
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycles(graph):
    cycles = []
    state: dict[str, str] = {}  # "open" while on the current path, "done" after

    def walk(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            # A package importing its own submodules is how packages work, not a cycle.
            if target.startswith(module + "."):
                continue
            if state.get(target) == "open":
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                walk(target, [*path, target])
        state[module] = "done"

    for module in graph:
        if module not in state:
            walk(module, [module])
    assert not cycles, "\n".join(cycles)


def test_the_layer_table_knows_every_module():
    for module in all_modules():
        layer_of(module)  # raises for a module no layer names


# --- the vocabulary across the trainer boundary (docs/ARCHITECTURE.md, "The storage's vocabulary")
VOCABULARY_MODULES = ("trainer/keys.py", "hpo/attrs.py")


def module_string_constants(path: Path) -> dict[str, str]:
    """`NAME = "text"` assignments at the top level of a module: {NAME: text}."""
    found = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            found.update((t.id, value.value) for t in targets if isinstance(t, ast.Name))
    return found


def test_the_vocabulary_is_defined_once():
    """Each key the trainer and hpo write for the other is a constant of trainer/keys.py or
    hpo/attrs.py, once: no other module of either package names one in a constant of its own
    (trainer/search_study.py once kept copies of output_dir and ray_trial_id)."""
    defined: dict[str, list[str]] = {}
    for relative in VOCABULARY_MODULES:
        for name, value in module_string_constants(REPO / relative).items():
            defined.setdefault(value, []).append(f"{relative}:{name}")
    twice = {value: names for value, names in defined.items() if len(names) > 1}
    assert not twice, twice
    copies = [
        f"{path.relative_to(REPO)}:{name} = {value!r} (defined as {defined[value][0]})"
        for package in PACKAGES
        for path in sorted((REPO / package).rglob("*.py"))
        if str(path.relative_to(REPO)) not in VOCABULARY_MODULES
        for name, value in module_string_constants(path).items()
        if value in defined
    ]
    assert not copies, "\n".join(copies)


def test_hpo_attrs_re_exports_the_trainer_keys():
    import hpo.attrs
    import trainer.keys

    for name in module_string_constants(REPO / "trainer/keys.py"):
        assert getattr(hpo.attrs, name) is getattr(trainer.keys, name)
    assert hpo.attrs.eval_metric_key is trainer.keys.eval_metric_key


def test_trainer_keys_imports_only_the_standard_library():
    import sys

    tree = ast.parse((REPO / "trainer/keys.py").read_text(encoding="utf-8"))
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
    }
    outside = sorted(imported - set(sys.stdlib_module_names) - {"__future__"})
    assert not outside, outside
