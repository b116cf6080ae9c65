"""How a spec's values and keys are worded in a problem: as the user wrote them in TOML.

Shared by the spec reader and the adapter registry, so a problem reads the same whichever
part found it.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from typing import Any


def toml_key(key: str) -> str:
    """A user's key as TOML would write it: bare when it can be, quoted (one line) otherwise."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def show(value: Any) -> str:
    """A value as the user wrote it in TOML (true, not True), on one line, shortened if long."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{toml_key(str(k))} = {show(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, list):
        text = "[" + ", ".join(show(v) for v in value) + "]"
    elif isinstance(value, float) and not math.isfinite(value):
        text = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def hint(word: str, options: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
