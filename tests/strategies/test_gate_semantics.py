"""Gate semantics: bounds, `for` durations, sample sizes, severities, and unknown data."""

from __future__ import annotations

import math
import re

import pytest

from strategies.engine import Engine
from strategies.gates import GateTracker, judge, proportion_p_value
from strategies.model import CommandKind, GateStatus, MetricsSnapshot, Phase, Severity, Snapshot
from strategies.spec import GateSpec
from tests.strategies.brain_kit import (
    STRATEGIES,
    T0,
    World,
    command,
    kinds,
    make_spec,
    metrics,
    run_until,
    sample,
    tick,
)


def gate(**kw: object) -> GateSpec:
    base: dict[str, object] = {"name": "g", "metric": "error_rate", "min_requests": 20.0}
    base.update(kw)
    return GateSpec(**base)  # type: ignore[arg-type]


def verdict(g: GateSpec, *, cand: dict | None = None, base: dict | None = None, stale: bool = False,
            baseline_expected: bool = True):
    c = sample("v2", T0, **(cand or {}))
    b = sample("v1", T0, **(base or {}))
    return judge(g, c, b, stale=stale, baseline_expected=baseline_expected)


@pytest.mark.parametrize(("value", "status"), [(0.01, GateStatus.PASS), (0.05, GateStatus.PASS),
                                               (0.0501, GateStatus.FAIL)])
def test_max_is_inclusive_ceiling(value: float, status: GateStatus) -> None:
    v = verdict(gate(max=0.05), cand={"error_ratio": value})
    assert v.status is status and v.comparison == "max" and v.threshold == 0.05
    assert ("≤" if status is GateStatus.PASS else ">") in v.reason


@pytest.mark.parametrize(("value", "status"), [(5.0, GateStatus.PASS), (4.99, GateStatus.FAIL)])
def test_min_is_inclusive_floor(value: float, status: GateStatus) -> None:
    v = verdict(gate(metric="throughput", min=5.0), cand={"throughput": value})
    assert v.status is status and v.comparison == "min"


def test_max_ratio_is_relative_to_the_baseline_at_the_same_time() -> None:
    g = gate(metric="latency_p99", max_ratio=1.5)
    ok = verdict(g, cand={"p99": 0.15}, base={"p99": 0.1})
    bad = verdict(g, cand={"p99": 0.151}, base={"p99": 0.1})
    assert ok.status is GateStatus.PASS and ok.threshold == pytest.approx(0.15)
    assert bad.status is GateStatus.FAIL and bad.comparison == "max_ratio" and bad.baseline == 0.1
    assert "1.5× baseline" in bad.reason


def test_max_ratio_on_an_error_free_baseline_uses_a_floor() -> None:
    g = gate(max_ratio=2.0)
    # at a volume where the error counts are far beyond noise, the floor alone decides
    big = {"requests": 1_000_000.0}
    assert verdict(g, cand={"error_ratio": 0.002, **big},
                   base={"error_ratio": 0.0, **big}).status is GateStatus.PASS
    assert verdict(g, cand={"error_ratio": 0.003, **big},
                   base={"error_ratio": 0.0, **big}).status is GateStatus.FAIL


def test_failing_check_wins_over_passing_ones() -> None:
    g = gate(max=0.5, max_ratio=1.1)
    v = verdict(g, cand={"error_ratio": 0.2}, base={"error_ratio": 0.01})
    assert v.status is GateStatus.FAIL and v.comparison == "max_ratio"


def test_relative_bound_without_baseline_data_is_unknown() -> None:
    g = gate(max_ratio=2.0)
    assert verdict(g, base={"requests": 3}).status is GateStatus.UNKNOWN
    none = judge(g, sample("v2", T0), None, stale=False, baseline_expected=True)
    assert none.status is GateStatus.UNKNOWN and "baseline" in none.reason


def test_relative_bound_does_not_apply_when_the_baseline_takes_no_traffic() -> None:
    v = verdict(gate(max_ratio=2.0), cand={"error_ratio": 0.9}, base={"requests": 0},
                baseline_expected=False)
    assert v.status is GateStatus.PASS and v.comparison == "n/a"
    # ...but an absolute bound on the same gate still applies.
    v2 = verdict(gate(max=0.1, max_ratio=2.0), cand={"error_ratio": 0.9}, baseline_expected=False)
    assert v2.status is GateStatus.FAIL


@pytest.mark.parametrize("requests", [None, 0, 19, 19.99])
def test_too_few_requests_is_unknown_never_pass(requests: float | None) -> None:
    v = verdict(gate(max=0.05), cand={"requests": requests, "error_ratio": 0.0})
    assert v.status is GateStatus.UNKNOWN and "need 20" in v.reason
    assert verdict(gate(max=0.05), cand={"requests": 20}).status is GateStatus.PASS


@pytest.mark.parametrize("value", [None, math.nan, math.inf])
def test_missing_or_non_finite_value_is_unknown(value: float | None) -> None:
    assert verdict(gate(max=0.05), cand={"error_ratio": value}).status is GateStatus.UNKNOWN


def test_stale_or_missing_candidate_is_unknown() -> None:
    assert verdict(gate(max=0.05), stale=True).status is GateStatus.UNKNOWN
    v = judge(gate(max=0.05), None, sample("v1", T0), stale=False, baseline_expected=True)
    assert v.status is GateStatus.UNKNOWN and "no data" in v.reason


def test_custom_metric_gate_reads_custom_values() -> None:
    g = gate(metric="queue_depth", query="q", max=10.0)
    from dataclasses import replace
    c = replace(sample("v2", T0), custom={"queue_depth": 12.0})
    assert judge(g, c, None, stale=False, baseline_expected=False).status is GateStatus.FAIL


def test_proportion_comparison() -> None:
    # 30/1000 against 10/1000 is significant at 95%; 12/1000 against 10/1000 is not.
    assert proportion_p_value(30, 1000, 10, 1000) < 0.01
    assert proportion_p_value(12, 1000, 10, 1000) > 0.05
    assert proportion_p_value(0, 100, 0, 100) == 1.0
    assert proportion_p_value(5, 0, 1, 100) == 1.0
    g = gate(compare="proportion", confidence=0.95)
    bad = verdict(g, cand={"requests": 1000, "error_ratio": 0.03}, base={"requests": 1000, "error_ratio": 0.01})
    ok = verdict(g, cand={"requests": 1000, "error_ratio": 0.012}, base={"requests": 1000, "error_ratio": 0.01})
    assert bad.status is GateStatus.FAIL and ok.status is GateStatus.PASS
    assert "p=" in bad.reason


# --------------------------------------------------------------------------- the `for` clock


def test_for_duration_breaches_only_after_failing_the_whole_time() -> None:
    g = gate(max=0.05, for_seconds=10.0)
    tracker = GateTracker({})
    bad = sample("v2", T0, error_ratio=0.5)
    first = tracker.results((g,), bad, None, T0, stale=False, baseline_expected=False)[0]
    assert first.status is GateStatus.FAIL and not first.breached and first.failing_since == T0
    tracker = GateTracker({g.name: T0})
    assert not tracker.results((g,), bad, None, T0 + 9.9, stale=False, baseline_expected=False)[0].breached
    at_ten = tracker.results((g,), bad, None, T0 + 10, stale=False, baseline_expected=False)[0]
    assert at_ten.breached and at_ten.for_progress(T0 + 10) == 1.0
    assert at_ten.for_progress(T0 + 5) == pytest.approx(0.5)


def test_unknown_keeps_the_clock_but_cannot_breach_and_pass_resets_it() -> None:
    g = gate(max=0.05, for_seconds=10.0)
    tracker = GateTracker({g.name: T0})
    unknown = tracker.results((g,), sample("v2", T0 + 20, requests=1), None, T0 + 20, stale=False,
                              baseline_expected=False)[0]
    assert unknown.status is GateStatus.UNKNOWN and unknown.failing_since == T0 and not unknown.breached
    passed = tracker.results((g,), sample("v2", T0 + 20), None, T0 + 20, stale=False,
                             baseline_expected=False)[0]
    assert passed.failing_since is None and not passed.breached


GATES_FOR = """
[[gate]]
name = "errors"
metric = "error_rate"
max = 0.05
for = "5s"
severity = "critical"
min_requests = 20
"""


def test_engine_rolls_back_only_after_the_for_duration() -> None:
    spec = make_spec(gates=GATES_FOR)
    engine, world = Engine(spec), World.for_spec(spec)
    tick(engine, world, T0)
    for t in range(1, 6):  # failing since T0+1: breach due at T0+6
        assert kinds(tick(engine, world, T0 + t, error_ratio=0.5)) == [], t
    assert kinds(tick(engine, world, T0 + 6, error_ratio=0.5)) == ["rolling_back", "rolled_back"]


def test_for_needs_the_breach_shown_for_its_whole_duration() -> None:
    spec = make_spec(gates=GATES_FOR)
    engine, world = Engine(spec), World.for_spec(spec)
    tick(engine, world, T0)
    seen = []
    for t in range(1, 30):
        decided = kinds(tick(engine, world, T0 + t, error_ratio=0.5))
        seen.append((t, engine.gates[0].status, decided))
        if "rolling_back" in decided:
            break
    first_fail = next(t for t, status, _ in seen if status is GateStatus.FAIL)
    acted = next(t for t, _, decided in seen if "rolling_back" in decided)
    assert acted - first_fail == 5, seen  # GATES_FOR: for = "5s"


SEVERITIES = """
[[gate]]
name = "sev"
metric = "latency_p99"
max = 0.2
severity = "{severity}"
min_requests = 20
"""


def test_info_gate_is_an_event_only() -> None:
    spec = make_spec(gates=SEVERITIES.format(severity="info"))
    engine, world = Engine(spec), World.for_spec(spec)
    _, seen = run_until(engine, world, T0, p99=0.9)
    assert kinds(seen) == ["started", "step", "step", "promoting", "promoted"]
    fails = [d for d in seen if d.kind == "gate" and d.evidence[0]["status"] == "fail"]
    assert fails and engine.event_for(fails[0]).severity == "info"
    assert engine.event_for(fails[0]).to_dict()["gate"] == "sev"


def test_warning_gate_event_carries_its_severity() -> None:
    spec = make_spec(gates=SEVERITIES.format(severity="warning"))
    engine, world = Engine(spec), World.for_spec(spec)
    tick(engine, world, T0)
    decisions = tick(engine, world, T0 + 1, p99=0.9)
    gate_events = [engine.event_for(d) for d in decisions if d.kind == "gate"]
    assert [e.severity for e in gate_events] == ["warning"]
    assert engine.state.phase is Phase.PAUSED


@pytest.mark.parametrize(("severity", "phase"), [(Severity.CRITICAL, Phase.ROLLED_BACK),
                                                 (Severity.WARNING, Phase.PAUSED),
                                                 (Severity.INFO, Phase.PROGRESSING)])
def test_severity_decides_what_a_breach_does(severity: Severity, phase: Phase) -> None:
    spec = make_spec(gates=SEVERITIES.format(severity=severity.value))
    engine, world = Engine(spec), World.for_spec(spec)
    tick(engine, world, T0)
    tick(engine, world, T0 + 1, p99=0.9)
    assert engine.state.phase is phase


def test_unknown_gate_holds_and_says_why() -> None:
    spec = make_spec()
    engine, world = Engine(spec), World.for_spec(spec)
    tick(engine, world, T0)
    for t in range(1, 6):  # 3 requests a window: the step counts far fewer than 20 for a while
        assert kinds(tick(engine, world, T0 + t, requests=3)) == []
    reasons = engine.holding_reasons(world.healthy(T0 + 6, requests=3), T0 + 6)
    assert any(re.search(r"gate errors unknown: only \d+ requests this step, need 20", r)
               for r in reasons), reasons
    assert engine.state.step == 0


def test_stale_metrics_hold_even_without_gates_that_could_know() -> None:
    spec = make_spec(gates=SEVERITIES.format(severity="info"))
    engine, world = Engine(spec), World.for_spec(spec)
    tick(engine, world, T0)
    blind = [Snapshot(at=T0 + t, platform=world.platform(T0 + t), metrics=None) for t in range(1, 40)]
    seen = []
    for snap in blind:
        seen += engine.tick(snap, snap.at)
    assert engine.state.step == 0 and engine.stale
    assert kinds(seen) == ["stale"]
    assert any("metrics stale" in r for r in engine.holding_reasons(blind[-1], T0 + 39))
    # Data are back: the step's evidence restarts, so the whole hold is observed again
    # (holds count observed time only) before the step advances.
    assert kinds(tick(engine, world, T0 + 40)) == ["fresh"]
    assert kinds(tick(engine, world, T0 + 49)) == []
    assert kinds(tick(engine, world, T0 + 50)) == ["step"]


def test_stale_after_an_error_uses_the_last_good_read_until_it_is_too_old() -> None:
    spec = make_spec()  # stale_after = 5s
    engine, world = Engine(spec), World.for_spec(spec)
    tick(engine, world, T0)
    tick(engine, world, T0 + 1)  # the step has counted one good second
    errored = MetricsSnapshot(at=T0 + 4, error="prometheus: timed out")
    engine.tick(Snapshot(at=T0 + 4, platform=world.platform(T0 + 4), metrics=errored), T0 + 4)
    assert not engine.stale and engine.gates[0].status is GateStatus.PASS
    engine.tick(Snapshot(at=T0 + 7, platform=world.platform(T0 + 7), metrics=errored), T0 + 7)
    assert engine.stale and engine.gates[0].status is GateStatus.UNKNOWN
    assert engine.stale_reason == "prometheus: timed out"


def test_old_samples_in_a_fresh_snapshot_are_unknown() -> None:
    spec = make_spec()
    engine, world = Engine(spec), World.for_spec(spec)
    old = metrics(T0 + 10, sample("v1", T0), sample("v2", T0))
    engine.tick(Snapshot(at=T0 + 10, platform=world.platform(T0 + 10), metrics=old), T0 + 10)
    assert not engine.stale and engine.gates[0].status is GateStatus.UNKNOWN
    assert engine.current_sample("v2", T0 + 10) is None


def test_gate_decisions_are_journaled_only_on_change() -> None:
    spec = make_spec()
    engine, world = Engine(spec), World.for_spec(spec)
    seen = []
    for t in range(5):
        seen += tick(engine, world, T0 + t)
    gates = [d for d in seen if d.kind == "gate"]
    assert len(gates) == 1 and gates[0].evidence[0]["previous"] == "unknown"
    # A restarted engine remembers the status and does not report it again.
    from strategies.journal import MemoryJournal
    journal = MemoryJournal()
    live = Engine(spec, journal=journal)
    for t in range(3):
        tick(live, world, T0 + t)
    again = Engine(spec, records=journal.records)
    assert [d.kind for d in again.tick(world.healthy(T0 + 3), T0 + 3) if d.kind == "gate"] == []


def test_resume_after_pause_needs_gates_again() -> None:
    spec = make_spec(STRATEGIES["canary"], SEVERITIES.format(severity="warning"))
    engine, world = Engine(spec), World.for_spec(spec)
    tick(engine, world, T0)
    tick(engine, world, T0 + 1, p99=0.9)
    command(engine, world, CommandKind.RESUME, T0 + 2)
    assert kinds(tick(engine, world, T0 + 3, p99=0.9)) == ["paused"]


def test_a_version_missing_from_a_read_ages_out_after_stale_after() -> None:
    spec = make_spec()  # stale_after 5s
    engine, world = Engine(spec), World.for_spec(spec)
    tick(engine, world, T0)
    tick(engine, world, T0 + 1)
    for t in (2, 6):
        only_base = metrics(T0 + t, sample("v1", T0 + t))
        engine.tick(Snapshot(at=T0 + t, platform=world.platform(T0 + t), metrics=only_base), T0 + t)
        assert engine.gates[0].status is GateStatus.PASS, t
    only_base = metrics(T0 + 7, sample("v1", T0 + 7))
    engine.tick(Snapshot(at=T0 + 7, platform=world.platform(T0 + 7), metrics=only_base), T0 + 7)
    assert engine.gates[0].status is GateStatus.UNKNOWN and engine.current_sample("v2", T0 + 7) is None


def test_holding_reasons_while_promoting() -> None:
    spec = make_spec()  # scale_down_delay 5s
    engine, world = Engine(spec), World.for_spec(spec)
    tick(engine, world, T0)
    command(engine, world, CommandKind.PROMOTE_FULL, T0 + 1)
    tick(engine, world, T0 + 2, requests=3)
    reasons = engine.holding_reasons(world.healthy(T0 + 2), T0 + 2)
    assert reasons[0] == "scale-down delay: 4s left"
    assert any(r.startswith("gate errors unknown") for r in reasons)
    assert kinds(tick(engine, world, T0 + 6, requests=3)) == []  # delay over, but no data
    assert kinds(tick(engine, world, T0 + 7)) == ["promoted"]
