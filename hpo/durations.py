"""Durations as text, both ways.

A study file writes them as `90s`, `20m`, `1h`, `1h30m`, `2d` or seconds: `parse_duration` reads
that notation and `format_duration` writes it back. A live progress line shows elapsed time as
a clock instead (`01:23`, `1:02:03`), which keeps its width while it ticks: `format_clock`.
"""

from __future__ import annotations

import math
import re

_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
# Units in decreasing order, each at most once: "1h30m" parses, "30m1h" and "1x" do not.
_DURATION = re.compile(
    r"^\s*(?:(?P<d>\d+(?:\.\d+)?)\s*d)?\s*(?:(?P<h>\d+(?:\.\d+)?)\s*h)?"
    r"\s*(?:(?P<m>\d+(?:\.\d+)?)\s*m)?\s*(?:(?P<s>\d+(?:\.\d+)?)\s*s)?\s*$"
)
DURATION_HELP = "a duration such as 90s, 20m, 1h or 1h30m, or a number of seconds"


def parse_duration(value: object) -> float:
    """Seconds in `value`; raises ValueError (with the accepted forms) when it does not parse."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not {DURATION_HELP}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value)
    else:
        raise ValueError(f"{value!r} is not {DURATION_HELP}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{value!r} is not {DURATION_HELP}")
    return seconds


def _parse_text(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    match = _DURATION.match(text.lower())
    if match is None or not any(match.groupdict().values()):
        raise ValueError(f"{text!r} is not {DURATION_HELP}")
    return sum(
        float(amount) * _UNIT_SECONDS[unit] for unit, amount in match.groupdict().items() if amount
    )


def format_duration(seconds: float) -> str:
    """The study file's notation, the inverse of `parse_duration`: 5400 -> '1h30m', 90 -> '1m30s'."""
    remaining = int(round(seconds))
    parts = []
    for unit in ("d", "h", "m", "s"):
        amount, remaining = divmod(remaining, int(_UNIT_SECONDS[unit]))
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts) or "0s"


def format_clock(seconds: float) -> str:
    """Elapsed time as a clock for progress lines: 83 -> '01:23', 3723 -> '1:02:03'."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
