"""CI type-checks trainer/ and hpo/ with mypy, and every backend's functions against the Backend
Protocol. mypy itself runs in `.ci/run`, not here (it takes minutes); these tests keep that
wiring from being lost: the CI line, the configuration, and a check per registered backend.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hpo import backends

REPO = Path(__file__).resolve().parents[1]


def test_ci_runs_mypy_after_the_linter_and_before_the_tests():
    commands = [
        line.split("#")[0].strip() for line in (REPO / ".ci" / "run").read_text().splitlines()
    ]
    assert "mypy" in commands  # no arguments: it reads [tool.mypy]
    mypy = commands.index("mypy")
    assert commands.index("ruff check trainer hpo tests bench") < mypy
    assert mypy < commands.index("python -m pytest -q")


def test_mypy_is_configured_over_both_packages():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    config = pyproject["tool"]["mypy"]
    assert set(config["files"]) == {"trainer", "hpo"}
    assert config["check_untyped_defs"] is True
    dev = pyproject["project"]["optional-dependencies"]["dev"]
    assert any(requirement.startswith("mypy>=") for requirement in dev)


def _type_checked_names(package_init: Path) -> set[str]:
    """The `module.function` names a package's `_check: Backend` block refers to (empty when
    the package has no such assignment under `if TYPE_CHECKING:`)."""
    tree = ast.parse(package_init.read_text())
    for node in tree.body:
        if not (isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"):
            continue
        checked = any(
            isinstance(stmt, ast.AnnAssign)
            and ast.unparse(stmt.target) == "_check"
            and ast.unparse(stmt.annotation) == "Backend"
            for stmt in node.body
        )
        if checked:
            return {
                ast.unparse(sub)
                for sub in ast.walk(node)
                if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name)
            }
    return set()


@pytest.mark.parametrize("name", backends.NAMES)
def test_every_registered_backend_function_is_checked_against_the_protocol(name):
    # The registry names its functions as "module:function" strings, which mypy cannot follow;
    # the backend's package checks those very functions against Backend instead.
    lazy = backends.get(name)
    targets = [t for t in (lazy._run_study, lazy._run_worker) if t is not None]
    assert targets
    for target in targets:
        module, function = target.split(":")
        package, submodule = module.rsplit(".", 1)
        init = REPO.joinpath(*package.split("."), "__init__.py")
        assert f"{submodule}.{function}" in _type_checked_names(init), (
            f"{init.relative_to(REPO)} does not check {target} against hpo.backends.Backend"
        )
