"""User factories named in a study as "package.module:function"."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

from hpo.errors import HpoError

FACTORY_FORMAT = "'package.module:function'"


@contextlib.contextmanager
def current_directory_importable() -> Iterator[None]:
    """Factories are found like relative paths: from the current directory, as with `python -m`.

    The `hpo` console script does not put the current directory on sys.path, so a user's
    `my_models.py` beside the study file would import at `python -m hpo` but not at `hpo run`.
    """
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def split_factory_ref(ref: str, key: str) -> tuple[str, str]:
    """'pkg.mod:fn' -> ('pkg.mod', 'fn'); a clear error for any other shape."""
    module_name, sep, attr = str(ref).partition(":")
    if not sep or not module_name.strip() or not attr.strip() or ":" in attr:
        raise HpoError(f"{key}: {ref!r} is not a factory reference; expected {FACTORY_FORMAT}")
    return module_name.strip(), attr.strip()


def load_factory(ref: str, key: str) -> Callable[..., Any]:
    """Import the module and return the callable; errors name the module or the function."""
    module_name, attr = split_factory_ref(ref, key)
    try:
        with current_directory_importable():
            module = importlib.import_module(module_name)
    except ImportError as error:
        raise HpoError(
            f"{key}: {ref!r}: module {module_name!r} could not be imported ({error}); "
            "check the name; its folder must be the current directory or on PYTHONPATH"
        ) from error
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise HpoError(
                f"{key}: {ref!r}: module {module_name!r} has no function {attr!r}; "
                f"expected {FACTORY_FORMAT}"
            )
        target = getattr(target, part)
    if not callable(target):
        raise HpoError(f"{key}: {ref!r}: {attr!r} in {module_name!r} is not callable")
    return target


def factory_fingerprint(ref: str, key: str) -> dict[str, Any]:
    """Identify a factory's code without running it: its module file and that file's mtime.

    Used in cache keys so that editing the factory invalidates cached data.
    """
    module_name, attr = split_factory_ref(ref, key)
    try:
        with current_directory_importable():
            spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        spec = None
    origin = getattr(spec, "origin", None)
    mtime = os.stat(origin).st_mtime_ns if origin and os.path.exists(origin) else None
    return {"ref": f"{module_name}:{attr}", "origin": origin, "mtime_ns": mtime}
