"""Holds count observed time only: time at the step's real weight, with fresh metrics.

A wall-clock hold lets a step advance on time nobody watched: the minutes releasedeck was down
before a resume, or a metrics outage that ended the very tick the hold ran out. `ObservedHold`
accumulates only the intervals between ticks that saw the rollout progressing with fresh metrics,
no drift, no action waiting, and the router really sending the step's weight to the candidate.

- An outage (stale metrics, platform unreadable, the weight not where the step put it) restarts
  the step's evidence: the hold starts again from zero once things are observed again.
- A pause freezes the hold; resuming continues it.
- A new process (a resume after a crash or a restart) starts the step's evidence from zero: the
  time before it was not observed by anyone.
- A step entered in this process counts from its entry, so a healthy run holds exactly as long
  as the spec says; a tick that found the step's actions still to do counts from when they are
  done.

Pure: time is passed in.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from strategies.model import PlatformSnapshot
from strategies.reconcile import WEIGHT_TOLERANCE


def weight_problem(platform: PlatformSnapshot | None, candidate: str, weight: int) -> str:
    """Why the candidate is not observed at `weight` ("" when it is, or cannot be told apart)."""
    if platform is None:
        return "platform state unknown"
    if platform.error:
        return "platform unreadable"
    if platform.router_down:
        return platform.router_down
    actual = platform.weights.get(candidate)
    if actual is None or platform.weight_note:
        return ""  # no exact read-back of the weight: nothing to hold against
    if abs(actual - weight) > WEIGHT_TOLERANCE:
        return f"{candidate} routed {actual:g}%, step wants {weight}%"
    return ""


ACTIONS_PENDING = "actions pending"


@dataclass
class ObservedHold:
    """One step's observed hold time. `update` once per tick; `observed` is the time so far."""

    process_start: float | None = None  # first tick of this process: earlier time was unseen
    key: Hashable = None
    observed: float = 0.0
    last: float | None = None  # the last tick that counted
    blocked_at: float | None = None  # the last tick that did not count
    why: str = ""  # why the last tick did not count ("" when it did)

    def update(self, key: Hashable, now: float, *, counting: bool, problem: str,
               started: float | None) -> float:
        """`counting`: the step is progressing (not paused, not finished); `problem`: why this
        tick is not observed ("" when it is); `started`: when the step (or its resume) began."""
        if self.process_start is None:
            self.process_start = now
            self.blocked_at = now
        if key != self.key:
            self.key, self.observed, self.last = key, 0.0, None
        if not counting:  # paused or not in a step: freeze
            self.last, self.blocked_at, self.why = None, now, ""
            return self.observed
        if problem:  # an outage or the wrong weight: the evidence restarts
            self.observed, self.last, self.blocked_at, self.why = 0.0, None, now, problem
            return self.observed
        self.why = ""
        if self.last is None:
            begin = now
            if started is not None and self.blocked_at is not None and started >= self.blocked_at:
                begin = min(now, started)  # entered (or resumed) after the last unseen tick
            self.last = begin
        self.observed += max(0.0, now - self.last)
        self.last = now
        return self.observed

    def actions_done(self, now: float) -> None:
        """The actions the last tick waited for are all done: the world is where the step put
        it from `now` on, as it is from a step's entry, so the hold counts from here (a resumed
        process re-applying a journaled step's actions holds as long as one that never stopped)."""
        if self.why == ACTIONS_PENDING:
            self.last, self.why = now, ""
