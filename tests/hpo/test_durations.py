"""hpo.durations: durations as a study file writes them, parsed and formatted back."""

from __future__ import annotations

import pytest

from hpo.durations import format_clock, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("20m", 1200),
        ("1h", 3600),
        ("1h30m", 5400),
        ("2d", 172800),
        ("45", 45),
        (30, 30),
        (1.5, 1.5),
        ("0.5h", 1800),
    ],
)
def test_durations_parse(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "m", "20 minutes", "30m1h", "-5", "1x", True, None, [1], "inf"]
)
def test_durations_that_do_not_parse(text):
    with pytest.raises(ValueError, match="90s, 20m, 1h or 1h30m"):
        parse_duration(text)


def test_format_duration_round_trips():
    assert format_duration(5400) == "1h30m"
    assert parse_duration(format_duration(3725)) == 3725


def test_format_clock_is_for_progress_lines():
    assert format_clock(83) == "01:23"
    assert format_clock(3723) == "1:02:03"
    assert format_clock(-4) == "00:00"
