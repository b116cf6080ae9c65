"""What the screens read off a State beyond its plain fields, computed in one place.

Each function is pure (a State in, a value out), so every widget says the same thing about the
same frame: one countdown, one cause of a rollback, one answer to "is this version's figure
still live?".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from strategies.model import MetricSample, Phase, State, VersionView
from tui.app import fmt

HOLD_PREFIX = "hold:"


def baseline(state: State) -> str:
    return state.baseline


def candidate(state: State) -> str:
    return state.candidate


def stale_reason(state: State) -> str:
    return state.stale_reason or state.metrics_error or "no fresh metrics"


def countdown(seconds: float) -> str:
    """Time left, rounded up: '1s left' until it is really over, never '0s' while holding."""
    return fmt.secs(math.ceil(max(0.0, seconds)))


def waiting_for_first_metrics(state: State) -> bool:
    """Start-up: nothing read yet and nothing failed. Not an alarm, just not there yet."""
    return state.metrics_at is None and not state.metrics_error


def holding(state: State) -> list[str]:
    """Why the current step has not moved on, with the hold shown by the same clock as the bar."""
    lines: list[str] = []
    rollout = state.rollout
    if rollout.paused:
        lines.append(rollout.pause_reason or f"paused by {rollout.paused_by or 'operator'}")
    for reason in state.holding:
        text = str(reason)
        if text.startswith(HOLD_PREFIX):  # the engine's own rounding; the bar's clock wins
            text = f"hold {countdown(state.hold_left())} left"
        elif text.startswith("metrics stale") and waiting_for_first_metrics(state):
            text = "waiting for first metrics"
        elif text.startswith("scale-down delay:"):
            text = f"scale-down delay {countdown(state.hold_left())} left"
        lines.append(text.replace("gate ", "", 1) if text.startswith("gate ") else text)
    return lines


# --------------------------------------------------------------------------- the ending


@dataclass(frozen=True)
class Cause:
    """Why a rollout ended (or is rolling back), kept on screen for as long as it is over."""

    headline: str  # "critical gate latency-p99 failed" / "rolled back by operator"
    details: tuple[str, ...]  # one line per failing gate: value vs bound, evidence
    step: int  # 0-based index of the step it ended at
    at: float | None


def _num(metric: str, value: Any) -> str:
    return fmt.metric(metric, value) if isinstance(value, int | float) else "—"


def gate_line(evidence: Mapping[str, Any]) -> str:
    """'errors: 21.00% > max 5.00% (baseline 0.16%)': the engine's own reason (it carries the
    statistical evidence when there is some), else value against bound; plus the baseline."""
    metric = str(evidence.get("metric", ""))
    reason = str(evidence.get("reason", ""))
    if reason:
        line = f"{evidence.get('gate')}: {reason}"
    else:
        word = {"max": "≤", "min": "≥", "max_ratio": "≤"}.get(
            str(evidence.get("comparison", "")), "vs")
        line = f"{evidence.get('gate')}: {_num(metric, evidence.get('value'))}, bound " \
               f"{word}{_num(metric, evidence.get('threshold'))}"
    if isinstance(evidence.get("baseline"), int | float):
        line += f" (baseline {_num(metric, evidence.get('baseline'))})"
    return line


def cause(state: State) -> Cause | None:
    """The cause of a terminal (or rolling-back) phase, from the evidence the engine kept."""
    rollout = state.rollout
    if not (rollout.phase.terminal or rollout.phase is Phase.ROLLING_BACK):
        return None
    gates = [e for e in rollout.cause if "gate" in e and e.get("status") == "fail"]
    commands = [e for e in rollout.cause if "command" in e]
    if gates:
        severity = str(gates[0].get("severity", "critical"))
        names = ", ".join(str(e["gate"]) for e in gates)
        word = "gate" if len(gates) == 1 else "gates"
        headline = f"{severity} {word} {names} failed"
        details = tuple(gate_line(e) for e in gates)
    elif commands:
        verb = {"rollback": "rolled back", "abort": "aborted"}.get(str(commands[0]["command"]),
                                                                  str(commands[0]["command"]))
        headline = f"{verb} by {commands[0].get('actor', 'operator')}"
        details = ()
    elif rollout.phase is Phase.SUCCEEDED:
        headline = "promoted: every step passed" if "operator" not in rollout.reason \
            else rollout.reason
        details = ()
    else:
        headline = rollout.reason or rollout.phase.value
        details = ()
    return Cause(headline, details, rollout.step, rollout.finished_at)


# --------------------------------------------------------------------------- live or frozen


@dataclass(frozen=True)
class Figures:
    """A version's figures as the screen should show them: live, or frozen with the reason."""

    sample: MetricSample | None
    frozen: str = ""  # why these are not live ("no traffic since 08:00:50"), "" when live


def traffic_stopped_at(state: State) -> float | None:
    """When the candidate's traffic went to 0 at the end (rollback/abort), if it did."""
    rollout = state.rollout
    if rollout.phase not in (Phase.ROLLING_BACK, Phase.ROLLED_BACK, Phase.ABORTED):
        return None
    for event in reversed(state.events):
        if event.event in ("rolling_back", "aborted"):
            return event.at
    return rollout.finished_at


def figures(state: State, view: VersionView) -> Figures:
    """Live figures while a version takes traffic; once it takes none, its last sample from
    before the traffic stopped, marked frozen (the window would otherwise keep filling with
    requests at 0% weight and the numbers would seem to "get worse")."""
    if view.desired_weight > 0 or (view.actual_weight or 0) > 0:
        return Figures(view.sample)
    stopped = traffic_stopped_at(state)
    if stopped is None:
        if view.sample is None:
            return Figures(None)
        return Figures(view.sample, "takes no traffic")
    history = state.history.get(view.version, ())
    before = [s for s in history if s.at <= stopped]
    last = before[-1] if before else None
    return Figures(last, f"no traffic since {fmt.clock(stopped)}: frozen")
