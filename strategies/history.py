"""Release history from journals: one summary per attempt, and delivery figures over a period.

Every decision is journaled with its evidence, so how each release went — and the DORA-style
delivery figures a team tracks (deployment frequency, change failure rate, time to restore,
lead time for changes) — can be derived from the journals alone, with nothing else to keep in
step. Pure: records in, typed summaries out; reading files and printing belong to `tui/`.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

DAY = 86_400.0


class Outcome(StrEnum):
    """How one attempt ended, as far as its journal shows."""

    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"
    UNFINISHED = "unfinished"  # still running, or the driver stopped before an outcome

    @property
    def failed(self) -> bool:
        """A change that had to be undone: what the change failure rate counts."""
        return self in (Outcome.ROLLED_BACK, Outcome.ABORTED)

    @property
    def finished(self) -> bool:
        return self is not Outcome.UNFINISHED


_ENDINGS = {"promoted": Outcome.PROMOTED, "rolled_back": Outcome.ROLLED_BACK,
            "aborted": Outcome.ABORTED}
_STARTS = ("started", "retried")
# Operator commands show in the journal as decisions taken by the operator, accepted or refused.
_OPERATOR = "operator"


@dataclass(frozen=True)
class OperatorCommand:
    """Something a person did during the attempt, and whether the engine carried it out."""

    at: float
    actor: str
    kind: str
    reason: str
    refused: bool


@dataclass(frozen=True)
class RunSummary:
    """One attempt at a release: from `started` (or `retried`) to its outcome."""

    release: str
    baseline: str
    candidate: str
    run: str
    attempt: int  # 1 for the first attempt of a journal run, 2 after the first retry, ...
    started: float
    ended: float | None
    outcome: Outcome
    steps_reached: int  # the last step index entered (0-based), as journaled
    deciding: Mapping[str, Any] | None = None  # evidence of the gate that ended it, if one did
    decided_by: str = ""  # engine | operator | gate:<name> | plan
    reason: str = ""
    commands: tuple[OperatorCommand, ...] = ()
    analysis_seconds: float = 0.0  # time progressing through steps (gates at work)
    waiting_seconds: float = 0.0  # time paused, waiting for a person to resume or promote
    fault_detected: float | None = None  # when the deciding gate first failed
    restored: float | None = None  # when the baseline served everything again
    source: str = ""  # the journal the attempt was read from
    strategy: str = ""

    @property
    def duration(self) -> float | None:
        return None if self.ended is None else max(0.0, self.ended - self.started)

    @property
    def time_to_restore(self) -> float | None:
        """Fault detected → baseline serving everything (rolled-back or aborted attempts)."""
        if self.fault_detected is None or self.restored is None:
            return None
        return max(0.0, self.restored - self.fault_detected)


@dataclass(frozen=True)
class DeliveryFigures:
    """The four keys over a period, plus where the time of a release goes."""

    since: float | None
    until: float | None
    attempts: int
    finished: int
    promoted: int
    failed: int
    deployments_per_day: float | None
    change_failure_rate: float | None
    time_to_restore_median: float | None
    lead_time_median: float | None
    analysis_seconds: float
    waiting_seconds: float
    per_day: tuple[tuple[int, int, int], ...] = field(default=())  # (day start, promoted, failed)


def summarise(records: Iterable[Mapping[str, Any]], *, source: str = "",
              strategy: str = "") -> list[RunSummary]:
    """Split a journal's records into attempts, oldest first, and summarise each.

    Records of several releases and runs may be interleaved (one journal file can hold many
    runs); an attempt is keyed by release, versions and run id, and a `retried` decision opens
    a new attempt within its run.
    """
    open_attempts: dict[tuple[str, str, str, str], _Attempt] = {}
    done: list[_Attempt] = []
    for record in records:
        if not isinstance(record.get("at"), int | float):  # not a decision record: skip it
            continue
        key = (str(record.get("release", "")), str(record.get("baseline", "")),
               str(record.get("candidate", "")), str(record.get("run", "")))
        kind = str(record.get("kind", ""))
        current = open_attempts.get(key)
        if kind in _STARTS and not record.get("refused"):
            if current is not None:
                done.append(current)
            number = 1 if current is None else current.number + 1
            open_attempts[key] = current = _Attempt(key, number, float(record.get("at", 0.0)))
        if current is None:  # records before any start (a damaged head): nothing to attach to
            continue
        current.add(record)
    done.extend(open_attempts.values())
    runs = [a.summary(source, strategy) for a in done]
    runs.sort(key=lambda r: r.started)
    return runs


class _Attempt:
    """Accumulates one attempt's records; `summary` freezes it."""

    def __init__(self, key: tuple[str, str, str, str], number: int, started: float):
        self.key = key
        self.number = number
        self.started = started
        self.ended: float | None = None
        self.outcome = Outcome.UNFINISHED
        self.step = 0
        self.deciding: Mapping[str, Any] | None = None
        self.decided_by = ""
        self.reason = ""
        self.commands: list[OperatorCommand] = []
        self.analysis = 0.0
        self.waiting = 0.0
        self.fault_detected: float | None = None
        self.restored: float | None = None
        self._phase = "progressing"
        self._phase_since = started
        self._first_failed: dict[str, float] = {}  # gate → when this attempt first saw it fail
        self.planned_steps = 0  # from the start's plan print, when the journal has one
        self.planned_strategy = ""

    def add(self, record: Mapping[str, Any]) -> None:
        at = float(record["at"])
        kind = str(record.get("kind", ""))
        actor = str(record.get("actor", ""))
        refused = bool(record.get("refused", False))
        if actor.split(":", 1)[0] == _OPERATOR and kind not in ("action_done", "action_failed"):
            self.commands.append(OperatorCommand(at, actor, kind, str(record.get("reason", "")),
                                                 refused))
        if kind == "gate":
            self._note_failures(record, at)
        if kind in _STARTS:
            self._note_plan(record)
        if refused or self.outcome.finished or kind in ("gate", "action_done", "action_failed"):
            return
        self._account(at)
        self._phase = str(record.get("phase", self._phase))
        step = record.get("step")
        self.step = step if isinstance(step, int) else self.step
        if kind in ("rolling_back", "aborted") and self.fault_detected is None:
            self._note_cause(record, at)
        if kind in _ENDINGS:
            self.outcome = _ENDINGS[kind]
            self.ended = at
            if self.outcome.failed:
                self.restored = at
            if not self.reason:
                self.reason = str(record.get("reason", ""))
                self.decided_by = actor

    def _note_plan(self, record: Mapping[str, Any]) -> None:
        """The plan print a start journals (strategy, steps): a journal read without its spec
        still says which strategy ran, and a promotion (journaled one past the last step) is
        counted at the last step, as every screen shows it ("step 4/4")."""
        for evidence in _list(record.get("evidence")):
            if isinstance(evidence, Mapping) and "plan" in evidence:
                steps = evidence.get("steps")
                self.planned_steps = len(steps) if isinstance(steps, list) else 0
                self.planned_strategy = str(evidence.get("strategy") or "")

    def _note_failures(self, record: Mapping[str, Any], at: float) -> None:
        for evidence in _list(record.get("evidence")):
            if isinstance(evidence, Mapping) and evidence.get("status") == "fail":
                since = evidence.get("failing_since")
                when = float(since) if isinstance(since, int | float) else at
                self._first_failed.setdefault(str(evidence.get("gate")), when)

    def _note_cause(self, record: Mapping[str, Any], at: float) -> None:
        """The decision that turned the release back: its gate, and when that gate first failed."""
        evidence = [e for e in _list(record.get("evidence")) if isinstance(e, Mapping)]
        self.deciding = dict(evidence[0]) if evidence else None
        self.decided_by = str(record.get("actor", ""))
        self.reason = str(record.get("reason", ""))
        failed = [self._first_failed[str(e.get("gate"))] for e in evidence
                  if str(e.get("gate")) in self._first_failed]
        self.fault_detected = min(failed, default=at)

    def _account(self, at: float) -> None:
        spent = max(0.0, at - self._phase_since)
        if self._phase == "progressing":
            self.analysis += spent
        elif self._phase == "paused":
            self.waiting += spent
        self._phase_since = at

    def summary(self, source: str, strategy: str) -> RunSummary:
        release, baseline, candidate, run = self.key
        return RunSummary(
            release=release, baseline=baseline, candidate=candidate, run=run,
            attempt=self.number, started=self.started, ended=self.ended, outcome=self.outcome,
            steps_reached=min(self.step, self.planned_steps - 1) if self.planned_steps else self.step,
            deciding=self.deciding, decided_by=self.decided_by,
            reason=self.reason, commands=tuple(self.commands), analysis_seconds=self.analysis,
            waiting_seconds=self.waiting, fault_detected=self.fault_detected,
            restored=self.restored, source=source, strategy=strategy or self.planned_strategy)


def _list(value: Any) -> list[Any]:
    """A record field that should be a list; anything else (a damaged record) reads as empty."""
    return value if isinstance(value, list) else []


def delivery_figures(runs: Sequence[RunSummary], *, since: float | None = None,
                     until: float | None = None,
                     commit_times: Mapping[str, float] | None = None) -> DeliveryFigures:
    """DORA's four keys over the attempts that started in [since, until).

    Deployment frequency counts promoted attempts per day of the period (the period defaults
    to first start → last end seen). Change failure rate is rolled back or aborted over all
    finished attempts. Lead time needs the candidate's commit time (`commit_times`, version →
    epoch seconds) and runs to its promotion.
    """
    chosen = [r for r in runs if (since is None or r.started >= since)
              and (until is None or r.started < until)]
    finished = [r for r in chosen if r.outcome.finished]
    promoted = [r for r in chosen if r.outcome is Outcome.PROMOTED]
    failed = [r for r in chosen if r.outcome.failed]
    start = since if since is not None else min((r.started for r in chosen), default=None)
    ends = [r.ended or r.started for r in chosen]
    end = until if until is not None else max(ends, default=None)
    frequency = None
    if start is not None and end is not None:
        frequency = len(promoted) / max(1.0, (end - start) / DAY)
    restores = [t for r in failed if (t := r.time_to_restore) is not None]
    leads = [r.ended - commit_times[r.candidate] for r in promoted
             if commit_times and r.candidate in commit_times and r.ended is not None]
    return DeliveryFigures(
        since=start, until=end, attempts=len(chosen), finished=len(finished),
        promoted=len(promoted), failed=len(failed), deployments_per_day=frequency,
        change_failure_rate=len(failed) / len(finished) if finished else None,
        time_to_restore_median=statistics.median(restores) if restores else None,
        lead_time_median=statistics.median(leads) if leads else None,
        analysis_seconds=sum(r.analysis_seconds for r in chosen),
        waiting_seconds=sum(r.waiting_seconds for r in chosen),
        per_day=_per_day(chosen))


def _per_day(runs: Sequence[RunSummary]) -> tuple[tuple[int, int, int], ...]:
    days: dict[int, list[int]] = {}
    for run in runs:
        if not run.outcome.finished:
            continue
        day = int(run.started // DAY * DAY)
        counts = days.setdefault(day, [0, 0])
        counts[0 if run.outcome is Outcome.PROMOTED else 1] += 1
    return tuple((day, p, f) for day, (p, f) in sorted(days.items()))
