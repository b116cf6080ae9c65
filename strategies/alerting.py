"""Alert policy: which alerts fire and resolve, decided from the event stream and States.

Pure: no I/O and no clock (every time comes from an Event or a State), so the same stream always
gives the same alerts. Two kinds of alert:

- *conditions* (a gate breached, paused by a gate, rolled back, metrics stale, platform errors,
  an action failing) fire once when they start, are reminded every `reminder` seconds while they
  hold, and resolve once when they clear (or when the release finishes, for the ones that only
  mean something while it runs);
- *notices* (promoted) fire once and are never tracked.

Deduplication is by key: one alert per state change per key, plus the reminders.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from strategies.model import (
    Event,
    GateStatus,
    Phase,
    RolloutState,
    Severity,
    State,
    frozen_map,
)
from strategies.ports import Alert
from strategies.since import BadSince

ACTION_BY_SEVERITY = {Severity.CRITICAL: "rollback", Severity.WARNING: "pause",
                      Severity.INFO: "none"}

# Conditions that only mean something while the release runs: resolved once it is over.
RUNTIME_ONLY = ("gate:", "stale", "platform", "paused", "action:", "drift:")


@dataclass
class _Firing:
    alert: Alert
    last_sent: float


Held = tuple[str, Severity, str, dict[str, Any]]  # alertname, severity, summary, details

class AlertPolicy:
    """Turns events and States into Alerts (firing, reminder, resolved). Feed it in order."""

    def __init__(self, service: str, candidate: str, *, stale_after: float = 30.0,
                 reminder: float = 300.0, acting: bool = True):
        self.service = service
        self.candidate = candidate
        self.stale_after = stale_after
        self.reminder = reminder
        self.acting = acting  # False in observe mode: no action is ever taken
        self.firing: dict[str, _Firing] = {}
        self._stale = BadSince()  # metrics stale without a break
        self._platform = BadSince()  # platform errors without a break
        self._failed_actions: dict[str, Mapping[str, Any]] = {}  # action id -> event details
        self._paged_before: set[str] = set()  # keys an earlier run of this journal paged

    def restore(self, rollout: RolloutState) -> None:
        """A run resumed from a journal: what the earlier run already paged is not paged again.

        A release that was rolled back (or aborted, or rolling back) paged its ending when it
        happened; rerunning that journal only reports the outcome, so the ending becomes
        firing without a page (and, like any condition, is not reminded of before `reminder`
        seconds). Everything else is judged afresh from what this run sees."""
        if rollout.phase.failed:
            self._paged_before.add("rollback")

    # ------------------------------------------------------------------ inputs

    def on_event(self, event: Event) -> list[Alert]:
        """Notices and action failures come from events; everything else from States."""
        details = event.details
        if event.event == "promoted":
            return [self._alert(
                "promoted", "ReleasePromoted", Severity.INFO, event.at,
                f"{self.service}: {self.candidate} promoted to 100%",
                {"reason": details.get("reason", ""), "action": "promoted"})]
        if event.event == "journal_failed":  # the release holds, unfinished: someone must act
            return [self._alert(
                "journal", "ReleaseJournalFailed", Severity.CRITICAL, event.at,
                f"{self.service}: {details.get('reason', '')}",
                {"journal": details.get("journal", ""), "error": details.get("error", ""),
                 "action": "hold"})]
        if event.event in ("action_failed", "action_done"):
            for item in details.get("evidence", ()) or ():
                action_id = str(item.get("action", ""))
                if event.event == "action_failed":
                    self._failed_actions[action_id] = {
                        "action": action_id, "kind": item.get("kind"), "value": item.get("value"),
                        "version": item.get("version"), "reason": details.get("reason", "")}
                else:
                    self._failed_actions.pop(action_id, None)
        return []

    def on_state(self, state: State) -> list[Alert]:
        """Compare what holds now with what is firing; fire, remind and resolve accordingly."""
        now = state.at
        wanted = self._conditions(state)
        out: list[Alert] = []
        for key, (name, severity, summary, details) in wanted.items():
            current = self.firing.get(key)
            if current is None:
                alert = self._alert(key, name, severity, now, summary, details)
                self.firing[key] = _Firing(alert, now)
                if key in self._paged_before:
                    self._paged_before.discard(key)  # paged by the run that ended it
                    continue
                out.append(alert)
            elif self.reminder > 0 and now - current.last_sent >= self.reminder:
                current.last_sent = now
                out.append(replace(current.alert, summary=summary, details=frozen_map(
                    {**details, "reminder": True})))
        for key in [k for k in self.firing if k not in wanted]:
            old = self.firing.pop(key).alert
            out.append(replace(old, status="resolved", ends_at=now,
                               summary=f"resolved: {old.summary}"))
        return out

    # ------------------------------------------------------------------ what holds now

    def _conditions(self, state: State) -> dict[str, Held]:
        """Every condition that should be firing now, by key."""
        held = self._ending(state)
        if state.rollout.phase.terminal:
            self._stale.reset()
            self._platform.reset()
            self._failed_actions.clear()
            return held  # everything else only matters while the release runs
        held.update(self._gates(state))
        held.update(self._health(state))
        held.update(self._levers(state))
        return held

    def _ending(self, state: State) -> dict[str, Held]:
        """A release rolling back, rolled back or aborted."""
        phase = state.rollout.phase
        if not phase.failed:
            return {}
        cause = dict(state.rollout.cause[0]) if state.rollout.cause else {}
        word = "aborted" if phase is Phase.ABORTED else "rolled back"
        name = "ReleaseAborted" if phase is Phase.ABORTED else "ReleaseRolledBack"
        because = state.rollout.reason or "no reason given"
        return {"rollback": (name, Severity.CRITICAL,
                             f"{self.service}: {self.candidate} {word}: {because}",
                             {**_cause(cause), "reason": because, "action": word,
                              "phase": phase.value})}

    def _gates(self, state: State) -> dict[str, Held]:
        """Breached gates (unknown keeps a failure firing until it passes), a gate's pause."""
        held: dict[str, Held] = {}
        for gate in state.gates:
            key = f"gate:{gate.name}"
            if gate.breached and gate.status is GateStatus.FAIL:
                action = ACTION_BY_SEVERITY[gate.severity] if self.acting else "none (observe)"
                held[key] = ("ReleaseGateFailing", gate.severity,
                             f"{self.service}: gate {gate.name} failing on {self.candidate}: "
                             f"{gate.reason}", {**gate.evidence(), "action": action})
            elif gate.status is not GateStatus.PASS and key in self.firing:
                held[key] = self._still(key)
        rollout = state.rollout
        if rollout.phase is Phase.PAUSED and rollout.paused_by.startswith("gate:"):
            held["paused"] = ("ReleasePausedByGate", Severity.WARNING,
                              f"{self.service}: {self.candidate} paused by "
                              f"{rollout.paused_by}: {rollout.pause_reason}",
                              {"gate": rollout.paused_by[5:], "action": "pause",
                               "reason": rollout.pause_reason, "step": rollout.step,
                               "weight": rollout.weight})
        return held

    def _health(self, state: State) -> dict[str, Held]:
        """Metrics stale, or platform errors, for longer than stale_after without a break."""
        now = state.at
        held: dict[str, Held] = {}
        self._stale.observe(state.stale, now)
        if self._stale.longer_than(self.stale_after, now):
            age = state.metrics_age
            why = state.stale_reason or state.metrics_error or "no fresh data"
            held["stale"] = ("ReleaseMetricsStale", Severity.WARNING,
                             f"{self.service}: metrics stale or missing for "
                             f"{self._stale.lasted(now):.0f}s: {why}",
                             {"reason": why, "age": None if age is None else round(age, 3),
                              "stale_after": self.stale_after, "action": "hold"})
        self._platform.observe(bool(state.platform_error), now)
        if self._platform.longer_than(self.stale_after, now):
            held["platform"] = ("ReleasePlatformError", Severity.WARNING,
                                f"{self.service}: platform errors for "
                                f"{self._platform.lasted(now):.0f}s: {state.platform_error}",
                                {"reason": state.platform_error, "action": "hold"})
        return held

    def _levers(self, state: State) -> dict[str, Held]:
        """Levers that drifted for good, and actions that keep failing."""
        held: dict[str, Held] = {}
        for drift in state.drift:
            if drift.persistent:
                held[f"drift:{drift.lever}"] = (
                    "ReleaseDrift", Severity.WARNING,
                    f"{self.service}: {drift.describe()}; the step holds",
                    {**drift.to_dict(), "action": "hold"})
        pending = {a.id for a in state.rollout.pending}
        for action_id in [a for a in self._failed_actions if a not in pending]:
            del self._failed_actions[action_id]  # superseded or done: no longer failing
        for action_id, info in self._failed_actions.items():
            held[f"action:{action_id}"] = (
                "ReleaseActionFailed", Severity.WARNING,
                f"{self.service}: action failing: {info.get('reason', '')}",
                {**info, "action": "retry"})
        return held

    def _still(self, key: str) -> Held:
        alert = self.firing[key].alert
        return alert.name, alert.severity, alert.summary, dict(alert.details)

    def _alert(self, key: str, name: str, severity: Severity, at: float, summary: str,
               details: Mapping[str, Any]) -> Alert:
        return Alert(key=f"{self.service}/{key}", name=name, service=self.service,
                     version=self.candidate, severity=severity, status="firing",
                     summary=summary, starts_at=at, details=frozen_map(details))


def _cause(cause: Mapping[str, Any]) -> dict[str, Any]:
    return {k: cause[k] for k in ("gate", "metric", "value", "threshold", "baseline", "actor")
            if k in cause}
