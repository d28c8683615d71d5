"""The study's storage: which URL wins, and whether it can be opened here (checked, not opened)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hpo.study.problems import Problems

STORAGE_ENV = "HPO_STORAGE"
STORAGE_DIALECTS = ("sqlite", "postgresql", "mysql")


def resolve_storage(
    cli: str | None, in_file: str | None, name: str, environ: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """(URL, where it came from): `--storage` > HPO_STORAGE > the file's `storage` > default."""
    environ = os.environ if environ is None else environ
    if cli:
        return cli, "--storage"
    if environ.get(STORAGE_ENV):
        return environ[STORAGE_ENV], STORAGE_ENV
    if in_file is not None:
        return in_file, "storage"
    return f"sqlite:///runs/{name}.db", "storage (default)"


def read_storage(
    in_file: Any, cli: str | None, name: str, problems: Problems, *, workers: int
) -> str:
    """The resolved and checked storage URL of a study; problems name where it came from."""
    if in_file is not None and not isinstance(in_file, str):
        problems.found("storage", in_file, "a database URL such as sqlite:///runs/study.db")
        in_file = None
    url, where = resolve_storage(cli, in_file, name)
    return checked_storage_url(url, where, problems, workers=workers)


def checked_storage_url(url: str, where: str, problems: Problems, *, workers: int) -> str:
    """The URL with an installed driver and an absolute SQLite path, or a problem."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from hpo.storage.urls import mask_url, with_driver

    expected = (
        f"a database URL with dialect {', '.join(STORAGE_DIALECTS)}, e.g. sqlite:///runs/study.db"
    )
    try:
        parsed = make_url(with_driver(url))
    except (ArgumentError, ValueError):
        problems.add(where, f"found {mask_url(url)!r}, which is not a URL; expected {expected}")
        return url
    backend = parsed.get_backend_name()
    shown = mask_url(url)
    if backend not in STORAGE_DIALECTS:
        problems.add(
            where, f"found {shown!r}: dialect {backend!r} is not supported; expected {expected}"
        )
        return url
    try:
        parsed.get_dialect().import_dbapi()
    except NoSuchModuleError:
        problems.add(where, f"found {shown!r}: SQLAlchemy has no driver {parsed.drivername!r}")
        return url
    except ImportError as error:
        problems.add(
            where, f"found {shown!r}: its database driver is not installed ({error.name or error})"
        )
        return url
    if backend == "sqlite":
        return _sqlite_url(parsed, shown, where, problems, workers=workers)
    if not parsed.database:
        problems.add(where, f"found {shown!r}: no database name; expected e.g. .../postgres")
    return parsed.render_as_string(hide_password=False)


def _sqlite_url(parsed: Any, shown: str, where: str, problems: Problems, *, workers: int) -> str:
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        if workers > 1:
            problems.add(
                where,
                f"found {shown!r}: an in-memory database cannot be shared by {workers} workers",
            )
        return parsed.render_as_string(hide_password=False)
    # Relative to the current directory, made absolute so that workers and Ray trials (which
    # change directory) open the same file.
    path = Path(database).expanduser().absolute()
    if path.is_dir():
        problems.add(where, f"found {shown!r}: {path} is a directory; expected a database file")
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        problems.add(where, f"found {shown!r}: {blocking} is a file, so no folder can hold it")
    return parsed.set(database=str(path)).render_as_string(hide_password=False)
