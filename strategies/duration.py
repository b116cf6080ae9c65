"""Durations as people write them in specs ("500ms", "30s", "2m", "1h30m")."""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


MAX_SECONDS = 30 * 86400.0  # no hold, window or delay of a release lasts a month
MAX_TEXT = "30d"


def parse_duration(text: str | int | float) -> float:
    """Return seconds; a bare number means seconds. Raises ValueError with a readable message."""
    if isinstance(text, bool):
        raise ValueError(f"expected a duration like '30s', got {str(text).lower()}")
    if isinstance(text, int | float):
        return _number_seconds(text)
    if not isinstance(text, str):
        raise ValueError(f"expected a duration like '30s', got {text!r}")
    return _text_seconds(text)


def _number_seconds(number: int | float) -> float:
    """A bare number is seconds: finite, not negative, and no longer than a month."""
    if not math.isfinite(number):
        raise ValueError(f"expected a duration like '30s', got {number}")
    if number < 0:
        raise ValueError(f"duration must not be negative, got {number}")
    if number > MAX_SECONDS:
        raise ValueError(f"duration too long: {number:g}s (at most {MAX_TEXT})")
    return float(number)


def _text_seconds(text: str) -> float:
    """"1h30m" and the like: unit-suffixed parts back to back, nothing else, at most a month."""
    value = text.strip()
    pos, total = 0, 0.0
    for match in _PART.finditer(value):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(value) or not value:
        raise ValueError(f"expected a duration like '30s', '2m' or '1h30m', got {text!r}")
    if not math.isfinite(total) or total > MAX_SECONDS:
        raise ValueError(f"duration too long: {text!r} (at most {MAX_TEXT})")
    return total


def format_duration(seconds: float) -> str:
    """Short human form used on screen and in events ("1m05s", "12s", "250ms")."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
