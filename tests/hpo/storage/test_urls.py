"""hpo.storage.urls: passwords masked in URLs, in any text, and in what loggers emit."""

from __future__ import annotations

import logging

import optuna
from helpers.stored_studies import SECRET

from hpo.storage.urls import PasswordFilter, guard_logging, mask_url, scrub_passwords

optuna.logging.set_verbosity(optuna.logging.WARNING)


# --- masking -------------------------------------------------------------------------------


def test_mask_url_hides_the_password_and_keeps_the_rest():
    masked = mask_url(f"postgresql://alice:{SECRET}@db.example:5432/hpo")
    assert SECRET not in masked
    assert masked == "postgresql://alice:***@db.example:5432/hpo"


def test_mask_url_leaves_urls_without_password_alone():
    assert mask_url("sqlite:///runs/quickstart.db") == "sqlite:///runs/quickstart.db"
    assert mask_url("postgresql://postgres@127.0.0.1/x") == "postgresql://postgres@127.0.0.1/x"


def test_mask_url_masks_even_what_sqlalchemy_cannot_parse():
    masked = mask_url(f"not a url but redis://u:{SECRET}@host:1")
    assert SECRET not in masked and "redis://u:***@host:1" in masked


def test_scrub_passwords_removes_urls_and_the_bare_password():
    url = f"postgresql://bob:{SECRET}@h/db"
    text = f"failed to connect to {url} with password {SECRET}"
    scrubbed = scrub_passwords(text, url)
    assert SECRET not in scrubbed
    assert "postgresql://bob:***@h/db" in scrubbed


def test_scrub_passwords_handles_encoded_and_short_passwords():
    url = "postgresql://bob:p%40ss-word@h/db"  # the password is "p@ss-word"
    scrubbed = scrub_passwords("auth failed for p@ss-word (p%40ss-word)", url)
    assert "p@ss" not in scrubbed and "p%40ss" not in scrubbed
    # A two-letter password is not hunted inside words: the message stays readable.
    assert scrub_passwords("could not connect", "postgresql://u:on@h/db") == "could not connect"


def test_password_filter_masks_log_records():
    url = f"postgresql://bob:{SECRET}@h/db"
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("hpo.test.password_filter")
    handler = Collect()
    handler.addFilter(PasswordFilter(url))
    logger.addHandler(handler)
    try:
        logger.warning("storage %s is slow", url)
    finally:
        logger.removeHandler(handler)
    assert records == ["storage postgresql://bob:***@h/db is slow"]


def test_guard_logging_masks_what_optuna_logs():
    import io

    url = f"postgresql://bob:{SECRET}@h/db"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    optuna_logger = logging.getLogger("optuna")
    optuna_logger.addHandler(handler)
    try:
        guard_logging(url)
        optuna_logger.warning("cannot reach %s", url)
    finally:
        optuna_logger.removeHandler(handler)
    assert stream.getvalue() == "cannot reach postgresql://bob:***@h/db\n"
