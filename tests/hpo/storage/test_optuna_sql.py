"""hpo.storage.optuna_sql against the installed optuna: its SQL names only the tables and
columns hpo.storage.optuna_compat lists (which test_optuna_compat.py checks exist in a storage
the installed optuna creates), and it decodes what optuna stores. The answers of its queries are
compared with optuna's own in test_reader.py (status, best) and in the budget's tests."""

from __future__ import annotations

import inspect
import json
import re

import optuna
import sqlalchemy
from helpers.stored_studies import build_study

from hpo.storage import optuna_compat, optuna_sql

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_every_table_the_sql_names_is_one_optuna_compat_lists(tmp_path):
    source = inspect.getsource(optuna_sql)
    named = set(re.findall(r"\b(?:FROM|JOIN)\s+([a-z_]+)", source))
    assert {"trials", "trial_user_attributes", "study_user_attributes"} <= named
    assert named <= set(optuna_compat.SCHEMA_COLUMNS_READ), named - set(
        optuna_compat.SCHEMA_COLUMNS_READ
    )
    # And each of those tables is in a storage the installed optuna creates.
    url = f"sqlite:///{tmp_path / 'study.db'}"
    build_study(url)
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        assert named <= set(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_decode_param_reads_both_distribution_json_forms():
    categorical = json.dumps(
        {"name": "CategoricalDistribution", "attributes": {"choices": ["adamw", None, 3]}}
    )
    assert optuna_sql.decode_param(1.0, categorical) is None
    assert optuna_sql.decode_param(2.0, categorical) == 3
    assert optuna_sql.decode_param(0.0, '{"type": "categorical", "choices": ["a", "b"]}') == "a"
    assert optuna_sql.decode_param(3.0, '{"type": "int", "low": 1, "high": 4}') == 3
    log_int = {"name": "IntDistribution", "attributes": {"low": 1, "high": 64, "log": True}}
    assert optuna_sql.decode_param(16.0, json.dumps(log_int)) == 16
