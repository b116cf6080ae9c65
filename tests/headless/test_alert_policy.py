"""The pure alert policy: what fires, what is deduplicated, reminded and resolved."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.alerting import AlertPolicy
from strategies.model import (
    Action,
    Event,
    GateResult,
    GateStatus,
    Phase,
    RolloutState,
    Severity,
    State,
    frozen_map,
)


def gate(status: GateStatus, *, breached: bool = False, severity: Severity = Severity.CRITICAL,
         name: str = "errors") -> GateResult:
    return GateResult(name=name, metric="error_rate", severity=severity, status=status,
                      value=0.2 if status is GateStatus.FAIL else 0.001, threshold=0.05,
                      comparison="max", reason="20.00% > max 5.00%", breached=breached)


def state(at: float, *, phase: Phase = Phase.PROGRESSING, gates: tuple[GateResult, ...] = (),
          stale: bool = False, platform_error: str | None = None, **rollout: Any) -> State:
    return State(at=at, release="checkout", strategy="canary", platform_kind="test",
                 metrics_source="test", rollout=RolloutState(phase=phase, **rollout),
                 steps=("20%", "100%"), hold=0.0, gates=gates, stale=stale,
                 platform_error=platform_error)


def policy(**kw: Any) -> AlertPolicy:
    return AlertPolicy("checkout", "v2", **{"stale_after": 10.0, "reminder": 60.0, **kw})


def test_breached_gate_fires_once_then_reminds_then_resolves():
    p = policy()
    fired = p.on_state(state(0, gates=(gate(GateStatus.FAIL, breached=True),)))
    assert [(a.name, a.status, a.severity) for a in fired] == [
        ("ReleaseGateFailing", "firing", Severity.CRITICAL)]
    alert = fired[0]
    assert alert.details["gate"] == "errors" and alert.details["threshold"] == 0.05
    assert alert.details["action"] == "rollback"
    assert p.on_state(state(30, gates=(gate(GateStatus.FAIL, breached=True),))) == []
    # unknown (e.g. stale data) keeps it firing: only a pass resolves a gate
    assert p.on_state(state(40, gates=(gate(GateStatus.UNKNOWN),))) == []
    reminder = p.on_state(state(61, gates=(gate(GateStatus.FAIL, breached=True),)))
    assert [(a.status, a.details.get("reminder")) for a in reminder] == [("firing", True)]
    assert reminder[0].starts_at == 0  # same alert, same start
    resolved = p.on_state(state(70, gates=(gate(GateStatus.PASS),)))
    assert [(a.status, a.ends_at, a.key) for a in resolved] == [("resolved", 70, alert.key)]
    assert p.on_state(state(80, gates=(gate(GateStatus.PASS),))) == []


def test_failing_but_not_yet_breached_gate_is_quiet():
    p = policy()
    assert p.on_state(state(0, gates=(gate(GateStatus.FAIL, breached=False),))) == []


def test_gate_severity_is_the_alert_severity_and_warning_means_pause():
    p = policy()
    fired = p.on_state(state(0, gates=(gate(GateStatus.FAIL, breached=True,
                                            severity=Severity.WARNING),)))
    assert fired[0].severity is Severity.WARNING and fired[0].details["action"] == "pause"


def test_observe_mode_says_no_action_is_taken():
    p = policy(acting=False)
    fired = p.on_state(state(0, gates=(gate(GateStatus.FAIL, breached=True),)))
    assert fired[0].details["action"] == "none (observe)"


def test_rollback_is_critical_with_the_deciding_gate_and_resolves_runtime_alerts():
    p = policy()
    p.on_state(state(0, gates=(gate(GateStatus.FAIL, breached=True),)))
    cause = ({**gate(GateStatus.FAIL, breached=True).evidence(), "actor": "gate:errors"},)
    out = p.on_state(state(1, phase=Phase.ROLLED_BACK, gates=(gate(GateStatus.UNKNOWN),),
                           cause=cause, reason="critical gate failed: errors"))
    by_name = {(a.name, a.status): a for a in out}
    rollback = by_name[("ReleaseRolledBack", "firing")]
    assert rollback.severity is Severity.CRITICAL
    assert (rollback.details["gate"], rollback.details["value"], rollback.details["threshold"]) \
        == ("errors", 0.2, 0.05)
    assert ("ReleaseGateFailing", "resolved") in by_name
    assert p.on_state(state(2, phase=Phase.ROLLED_BACK)) == []  # no duplicate


@pytest.mark.parametrize("phase", [Phase.ROLLED_BACK, Phase.ABORTED, Phase.ROLLING_BACK])
def test_rerunning_a_journal_that_ended_rolled_back_pages_nothing_again(phase):
    """The run that rolled back paged it; a rerun of that journal only reports the outcome."""
    p = policy()
    p.restore(RolloutState(phase=phase, reason="critical gate failed: errors"))
    assert p.on_state(state(0, phase=phase, reason="critical gate failed: errors")) == []
    assert p.on_state(state(1, phase=Phase.ROLLED_BACK)) == []
    # …but a release resumed while progressing that then rolls back does page it
    fresh = policy()
    fresh.restore(RolloutState(phase=Phase.PROGRESSING))
    assert [a.name for a in fresh.on_state(state(0, phase=Phase.ROLLED_BACK))] \
        == ["ReleaseRolledBack"]


def test_promotion_is_a_one_shot_info_notice():
    p = policy()
    out = p.on_event(Event(at=5, release="checkout", event="promoted",
                           details=frozen_map({"reason": "promotion complete"})))
    assert [(a.name, a.severity, a.status) for a in out] == [
        ("ReleasePromoted", Severity.INFO, "firing")]
    assert p.firing == {}  # never tracked, never resolved


def test_stale_metrics_alert_after_stale_after_and_resolve_when_fresh():
    p = policy(stale_after=10.0)
    assert p.on_state(state(0, stale=True)) == []
    assert p.on_state(state(10, stale=True)) == []  # exactly the limit: not yet
    fired = p.on_state(state(10.5, stale=True))
    assert [(a.name, a.severity) for a in fired] == [("ReleaseMetricsStale", Severity.WARNING)]
    assert [a.status for a in p.on_state(state(11, stale=False))] == ["resolved"]
    assert p.on_state(state(12, stale=True)) == []  # a new streak starts from zero


def test_platform_errors_alert_only_when_continuous():
    p = policy(stale_after=10.0)
    p.on_state(state(0, platform_error="platform test: timed out"))
    p.on_state(state(5, platform_error=None))
    assert p.on_state(state(12, platform_error="platform test: timed out")) == []
    fired = p.on_state(state(23, platform_error="platform test: timed out"))
    assert [a.name for a in fired] == ["ReleasePlatformError"]


def test_paused_by_gate_fires_and_resolves_on_resume():
    p = policy()
    fired = p.on_state(state(0, phase=Phase.PAUSED, paused_by="gate:latency",
                             pause_reason="warning gate failed: latency"))
    assert [(a.name, a.details["gate"]) for a in fired] == [("ReleasePausedByGate", "latency")]
    assert p.on_state(state(1, phase=Phase.PAUSED, paused_by="operator")) [0].status == "resolved"


def test_action_failure_fires_until_the_action_is_done():
    p = policy()
    action = Action(id="r.3.0", kind="set_weight", value=20)
    failed = Event(at=1, release="checkout", event="action_failed", details=frozen_map({
        "reason": "set candidate weight to 20% failed: timed out",
        "evidence": [{"action": action.id, **action.to_dict()}]}))
    assert p.on_event(failed) == []
    fired = p.on_state(state(1, pending=(action,)))
    assert [(a.name, a.details["action"]) for a in fired] == [("ReleaseActionFailed", "retry")]
    assert p.on_state(state(2, pending=(action,))) == []
    assert [a.status for a in p.on_state(state(3, pending=()))] == ["resolved"]


# --------------------------------------------------------------------------- property


steps = st.lists(st.tuples(st.sampled_from(["pass", "fail", "breach", "unknown"]),
                           st.floats(min_value=0.0, max_value=50.0)), max_size=60)


@settings(max_examples=200, deadline=None)
@given(steps)
def test_one_alert_per_state_change_plus_spaced_reminders(seq):
    p = policy(reminder=60.0)
    now = 0.0
    out = []
    firing = False
    expected_firings = 0
    for word, gap in seq:
        now += gap
        status = {"pass": GateStatus.PASS, "unknown": GateStatus.UNKNOWN}.get(word, GateStatus.FAIL)
        result = gate(status, breached=word == "breach")
        if word == "breach" and not firing:
            expected_firings += 1
            firing = True
        elif word == "pass":
            firing = False
        out.extend((now, a) for a in p.on_state(state(now, gates=(result,))))
    starts = [a for _, a in out if a.status == "firing" and not a.details.get("reminder")]
    assert len(starts) == expected_firings
    # firing and resolved alternate, starting with firing; reminders only while firing
    open_since = None
    last_sent = None
    for at, alert in out:
        if alert.status == "firing" and not alert.details.get("reminder"):
            assert open_since is None
            open_since = last_sent = at
        elif alert.status == "firing":
            assert open_since is not None and at - last_sent >= 60.0
            last_sent = at
        else:
            assert open_since is not None and alert.ends_at == at
            open_since = None
    assert (open_since is not None) == firing
