"""Smooth weighted round robin (the nginx way): exact shares, evenly interleaved, no randomness.

With weights {v1: 90, v2: 10} every run of 100 picks holds exactly 90 v1 and 10 v2, and the
v2 picks are spread out rather than bunched, so a short window already shows the true split.
"""

from __future__ import annotations

from collections.abc import Mapping


class SmoothWeighted:
    """Picks keys in proportion to non-negative weights; zero-weight keys are never picked."""

    def __init__(self, weights: Mapping[str, float] | None = None):
        self._weights: dict[str, float] = {}
        self._current: dict[str, float] = {}
        self.set(weights or {})

    def set(self, weights: Mapping[str, float]) -> None:
        """Replace the weights; the interleaving starts afresh."""
        for key, value in weights.items():
            if value < 0:
                raise ValueError(f"weight of {key!r} must not be negative, got {value}")
        self._weights = {k: float(v) for k, v in weights.items() if v > 0}
        self._current = dict.fromkeys(self._weights, 0.0)

    @property
    def weights(self) -> dict[str, float]:
        return dict(self._weights)

    def pick(self) -> str | None:
        """The next key, or None when every weight is zero."""
        if not self._weights:
            return None
        total = 0.0
        best: str | None = None
        for key, weight in self._weights.items():
            self._current[key] += weight
            total += weight
            if best is None or self._current[key] > self._current[best]:
                best = key
        assert best is not None
        self._current[best] -= total
        return best


def percents(weights: Mapping[str, float]) -> dict[str, float]:
    """Weights scaled to percents of their sum (all zero stays all zero)."""
    total = sum(v for v in weights.values() if v > 0)
    if total <= 0:
        return dict.fromkeys(weights, 0.0)
    return {k: (max(v, 0.0) * 100.0 / total) for k, v in weights.items()}
