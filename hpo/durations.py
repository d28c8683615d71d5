"""Durations as people write them in a study file: `90s`, `20m`, `1h`, `1h30m`, `2d` or seconds."""

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
    """The inverse for display: 5400 -> '1h30m', 90 -> '1m30s'."""
    remaining = int(round(seconds))
    parts = []
    for unit in ("d", "h", "m", "s"):
        amount, remaining = divmod(remaining, int(_UNIT_SECONDS[unit]))
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts) or "0s"
