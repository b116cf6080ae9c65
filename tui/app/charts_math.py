"""Honest chart arithmetic, pure: nice round axes from 0, and sparklines on a shared scale.

A rate or a latency is never negative, so its axis starts at 0; ticks are round numbers
(1, 2, 2.5, 5 × 10^k) with the unit beside them; two versions compared on one row share one
scale, so a flat 25 ms line is drawn low, not as full blocks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

BLOCKS = " ▁▂▃▄▅▆▇█"
STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)


def nice_step(span: float, ticks: int = 4) -> float:
    """A round tick step so that about `ticks` steps cover `span` (span > 0)."""
    raw = span / max(1, ticks)
    power = 10 ** math.floor(math.log10(raw))
    for step in STEPS:
        if step * power >= raw - 1e-12:
            return step * power
    return 10 * power


def nice_axis(top: float, ticks: int = 4) -> list[float]:
    """Ticks from 0 up to a round number at or above `top` (0..1 when there is no data)."""
    if not math.isfinite(top) or top <= 0:
        return [0.0, 1.0]
    step = nice_step(top, ticks)
    count = math.ceil(top / step - 1e-9)
    return [round(i * step, 10) for i in range(count + 1)]


def tick_label(value: float, unit: str) -> str:
    """'0', '2.5', '250' plus the unit: as few digits as the step needs, never '747.5'."""
    text = f"{value:.10g}"
    if "." in text:
        text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text}{unit}"


def spark(values: Sequence[float], top: float, width: int, height: int = 1) -> list[str]:
    """Rows (top first) of a bar sparkline of the last `width` values on the scale 0..top.

    Each column is one value; a value of 0 draws nothing, `top` draws the full height. Fewer
    values than `width` are right-aligned (the newest at the right edge), never stretched.
    """
    width = max(0, width)
    height = max(1, height)
    shown = list(values)[-width:] if width else []
    pad = width - len(shown)
    levels = height * 8
    cells: list[int] = []
    for value in shown:
        if top <= 0 or not math.isfinite(value) or value <= 0:
            cells.append(0)
        else:
            cells.append(max(1, min(levels, round(value / top * levels))))
    rows = []
    for row in range(height):
        floor = (height - 1 - row) * 8
        line = [BLOCKS[max(0, min(8, c - floor))] for c in cells]
        rows.append(" " * pad + "".join(line))
    return rows
