"""hpo.storage.study_lock: the lock a worker holds while it counts the budget and asks."""

from __future__ import annotations

import threading
import time

import sqlalchemy
from sqlalchemy.engine import make_url

from hpo.storage.study_lock import locks_out_other_workers, study_lock


def test_which_databases_have_a_real_study_lock():
    # Where it has none, the worker checks the budget again after asking (worker._claim).
    assert locks_out_other_workers(make_url("sqlite:////tmp/study.db"))
    assert locks_out_other_workers(make_url("postgresql+psycopg2://u@127.0.0.1/db"))
    assert not locks_out_other_workers(make_url("mysql+pymysql://u@127.0.0.1/db"))


def _second_holder_waits_for_the_first(engine) -> None:
    order: list[str] = []
    first_holds = threading.Event()

    def first() -> None:
        with study_lock(engine, "s"):
            order.append("first in")
            first_holds.set()
            time.sleep(0.5)
            order.append("first out")

    def second() -> None:
        first_holds.wait(30)
        with study_lock(engine, "s"):
            order.append("second in")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert order == ["first in", "first out", "second in"]


def test_the_sqlite_lock_keeps_a_second_holder_out_until_the_first_leaves(tmp_path):
    _second_holder_waits_for_the_first(sqlalchemy.create_engine(f"sqlite:///{tmp_path}/s.db"))


def test_the_postgresql_lock_keeps_a_second_holder_out_until_the_first_leaves(pg_url):
    engine = sqlalchemy.create_engine(pg_url)
    try:
        _second_holder_waits_for_the_first(engine)
    finally:
        engine.dispose()
