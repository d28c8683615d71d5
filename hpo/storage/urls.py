"""Storage URLs: masking passwords in everything we print or log, drivers, SQLite paths.

Nothing here imports optuna, so `hpo status` and the study-file checks use it freely.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

# A password inside any URL: scheme://user:PASSWORD@host
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)([^@\s]+)@")


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***, fit to print or log."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy parses: mask by pattern instead
        return scrub_passwords(url)


def scrub_passwords(text: str, *urls: str) -> str:
    """`text` with every URL password masked, and each password of `urls` removed verbatim.

    The second part catches drivers that quote the password outside a URL form.
    """
    from urllib.parse import quote

    text = _URL_PASSWORD.sub(r"\1***@", text)
    for url in urls:
        password = _password_of(url)
        # A very short password would also match inside ordinary words; the URL pattern
        # above already covers it wherever the URL itself is quoted.
        if password and len(password) >= 4:
            for form in {password, quote(password, safe="")}:
                text = text.replace(form, "***")
    return text


def _password_of(url: str) -> str | None:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).password
    except Exception:
        match = _URL_PASSWORD.search(url)
        return match.group(2) if match else None


class PasswordFilter(logging.Filter):
    """A logging filter that masks URL passwords in every record it passes.

    Attach it to a handler (`handler.addFilter(PasswordFilter(url))`) so that messages from
    optuna, SQLAlchemy or ray that quote the storage URL never show its password.
    """

    def __init__(self, *urls: str) -> None:
        super().__init__()
        self._urls = urls

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = scrub_passwords(message, *self._urls)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


def guard_logging(*urls: str) -> PasswordFilter:
    """Mask URL passwords in every record that the root, optuna or SQLAlchemy handlers emit.

    Call it once the handlers exist (after importing optuna); returns the filter attached.
    """
    password_filter = PasswordFilter(*urls)
    for name in (None, "optuna", "sqlalchemy"):
        for handler in logging.getLogger(name).handlers:
            if password_filter not in handler.filters:
                handler.addFilter(password_filter)
    return password_filter


def with_driver(url: str) -> str:
    """The URL with a PostgreSQL driver that is installed.

    SQLAlchemy 2.1 maps a bare `postgresql://` to psycopg 3; the project ships psycopg2, so a
    URL that names no driver gets the one that is there instead of an ImportError.
    """
    from importlib.util import find_spec

    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgresql", "postgres") and find_spec("psycopg") is None:
        if find_spec("psycopg2") is not None:
            return f"postgresql+psycopg2://{rest}"
    return url


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other databases and in-memory SQLite."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)
