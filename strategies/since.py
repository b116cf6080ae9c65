"""Since when a condition has held without a break: "metrics stale for 40 s", "platform
unreachable for 3 min". One tracker for the alert policy and the headless exit-3 rule, so
both count a bad stretch the same way (it starts at the first bad State, and any good one ends it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class BadSince:
    """When the current unbroken bad stretch began (None while things are good)."""

    since: float | None = None

    def observe(self, bad: bool, now: float) -> None:
        if not bad:
            self.since = None
        elif self.since is None:
            self.since = now

    def lasted(self, now: float) -> float:
        """How long the current stretch has lasted at `now` (0 when there is none)."""
        return 0.0 if self.since is None else now - self.since

    def longer_than(self, limit: float, now: float) -> bool:
        return self.since is not None and now - self.since > limit

    def reset(self) -> None:
        self.since = None
