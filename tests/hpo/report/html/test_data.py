"""How the report thins crowded plots and finds the lanes of trials that recorded no worker."""

from __future__ import annotations

import datetime as dt

import optuna

from hpo.report.html.data import thin, worker_lanes


def test_thin_spreads_evenly_keeps_order_and_always_keeps_the_chosen_ones():
    items = [[n] for n in range(10_000)]  # distinct objects, as trials are
    shown = thin(items, 200, keep=[items[9_999], items[5_001]])
    numbers = [item[0] for item in shown]
    assert len(shown) <= 200 and numbers == sorted(numbers)
    assert {9_999, 5_001} <= set(numbers)
    gaps = {b - a for a, b in zip(numbers, numbers[1:], strict=False)}
    assert max(gaps) <= 60  # no region left out
    assert thin(items[:50], 200) == items[:50]


def _trial(number: int, start_s: int, end_s: int, worker: str | None = None):
    t0 = dt.datetime(2026, 1, 1)
    trial = optuna.trial.create_trial(value=1.0, user_attrs={"worker": worker} if worker else {})
    trial.number = number
    trial.datetime_start = t0 + dt.timedelta(seconds=start_s)
    trial.datetime_complete = t0 + dt.timedelta(seconds=end_s)
    return trial


def test_trials_without_a_worker_take_the_first_lane_free_when_they_start():
    # 0 and 1 overlap; 2 starts after 0 ended, so it reuses lane 1; 3 overlaps 1 and 2.
    trials = [_trial(0, 0, 10), _trial(1, 5, 30), _trial(2, 12, 20), _trial(3, 15, 40)]
    assert worker_lanes(trials) == {0: "slot 1", 1: "slot 2", 2: "slot 1", 3: "slot 3"}


def test_a_recorded_worker_names_the_lane():
    assert worker_lanes([_trial(0, 0, 10, "host:123")]) == {0: "host:123"}
