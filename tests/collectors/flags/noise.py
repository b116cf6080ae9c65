"""How far a count of users on a variant may stray from the share that was set."""

from __future__ import annotations

import math


def within_binomial_noise(count: int, n: int, share: int) -> bool:
    """|count - n·p| within 4.5 standard deviations (a false alarm about once in 150,000 runs)."""
    p = share / 100
    return abs(count - n * p) <= 4.5 * math.sqrt(n * p * (1 - p)) + 1e-9
