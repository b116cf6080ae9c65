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


# Words an Argo Rollouts or Flagger user writes first, and what this spec says instead: a
# "did you mean" by spelling would point them somewhere wrong ("analysis" → "preview_analysis").
OTHER_TOOLS_WORDS = {
    "setWeight": "a step here is a weight: steps = [20, 50] or { weight = 20, hold = \"30s\" }",
    "pause": "a step's wait is its hold: { weight = 20, hold = \"30s\" }, or [strategy] hold",
    "analysis": "analysis here is [[gate]] tables: metric, max and/or max_ratio, severity",
    "threshold": "a gate's bound is max (absolute) or max_ratio (relative to the baseline)",
    "thresholdRange": "a gate's bound is max (absolute) or max_ratio (relative to the baseline)",
    "maxWeight": "the weights are listed: [strategy] steps = [10, 20, 50, 100]",
    "stepWeight": "the weights are listed: [strategy] steps = [10, 20, 50, 100]",
    "stepWeights": "the weights are listed: [strategy] steps = [10, 20, 50, 100]",
    "canary": "the strategy is named by [strategy] kind = \"canary\"",
    "blueGreen": "the strategy is named by [strategy] kind = \"blue-green\"",
    "maxSurge": "write max_surge",
    "maxUnavailable": "write max_unavailable",
}


def unknown_key_hint(key: str, options: tuple[str, ...]) -> str:
    """After "unknown key": what another tool's word is written as here, else the closest key."""
    if key in OTHER_TOOLS_WORDS and key not in options:
        return f" (Argo Rollouts / Flagger word: {OTHER_TOOLS_WORDS[key]})"
    return hint(key, options)
