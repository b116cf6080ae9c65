"""Every phase, every command: legal commands move the rollout as intended, illegal ones are
refused with a reason, and a read-only engine refuses them all. Plus every tick-driven transition.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from strategies.engine import CheckResult, Engine
from strategies.journal import MemoryJournal
from strategies.model import Command, CommandKind, Phase, Snapshot
from tests.strategies.brain_kit import ERROR_GATE, STRATEGIES, T0, World, command, kinds, make_spec, run_until, tick

WARN_GATE = """
[[gate]]
name = "p99"
metric = "latency_p99"
max = 0.2
severity = "warning"
min_requests = 20
"""

Setup = Callable[[], tuple[Engine, World, MemoryJournal, float]]


def _engine(strategy: str = STRATEGIES["canary"], gates: str = ERROR_GATE + WARN_GATE
            ) -> tuple[Engine, World, MemoryJournal]:
    spec = make_spec(strategy, gates)
    journal = MemoryJournal()
    return Engine(spec, journal=journal, run="run1"), World.for_spec(spec), journal


def pending() -> tuple[Engine, World, MemoryJournal, float]:
    engine, world, journal = _engine()
    return engine, world, journal, T0


def progressing() -> tuple[Engine, World, MemoryJournal, float]:
    engine, world, journal = _engine()
    assert kinds(tick(engine, world, T0)) == ["started"]
    return engine, world, journal, T0 + 1


def paused_operator() -> tuple[Engine, World, MemoryJournal, float]:
    engine, world, journal, now = progressing()
    command(engine, world, CommandKind.PAUSE, now)
    assert engine.state.paused_by == "operator"
    return engine, world, journal, now + 1


def paused_gate() -> tuple[Engine, World, MemoryJournal, float]:
    engine, world, journal, now = progressing()
    assert "paused" in kinds(tick(engine, world, now, p99=0.5))
    assert engine.state.paused_by == "gate:p99"
    return engine, world, journal, now + 1


def paused_plan() -> tuple[Engine, World, MemoryJournal, float]:
    engine, world, journal = _engine('kind = "canary"\nsteps = ["pause", 50]\nhold = "10s"')
    assert kinds(tick(engine, world, T0)) == ["started"]
    assert engine.state.phase is Phase.PAUSED and engine.plan.steps[0].pause
    return engine, world, journal, T0 + 1


def promoting() -> tuple[Engine, World, MemoryJournal, float]:
    engine, world, journal, now = progressing()
    command(engine, world, CommandKind.PROMOTE_FULL, now)
    assert engine.state.phase is Phase.PROMOTING
    return engine, world, journal, now + 1


def succeeded() -> tuple[Engine, World, MemoryJournal, float]:
    engine, world, journal, now = promoting()
    command(engine, world, CommandKind.PROMOTE, now)
    assert engine.state.phase is Phase.SUCCEEDED
    return engine, world, journal, now + 1


def rolling_back() -> tuple[Engine, World, MemoryJournal, float]:
    engine, world, journal, now = progressing()
    engine.command(Command(CommandKind.ROLLBACK), now)  # decided, not yet acted on
    assert engine.state.phase is Phase.ROLLING_BACK and engine.state.pending
    return engine, world, journal, now + 1


def rolled_back() -> tuple[Engine, World, MemoryJournal, float]:
    engine, world, journal, now = progressing()
    command(engine, world, CommandKind.ROLLBACK, now)
    assert engine.state.phase is Phase.ROLLED_BACK
    return engine, world, journal, now + 1


def aborted() -> tuple[Engine, World, MemoryJournal, float]:
    engine, world, journal, now = progressing()
    command(engine, world, CommandKind.ABORT, now)
    assert engine.state.phase is Phase.ABORTED
    return engine, world, journal, now + 1


PHASES: dict[str, Setup] = {
    "pending": pending, "progressing": progressing, "paused_operator": paused_operator,
    "paused_gate": paused_gate, "paused_plan": paused_plan, "promoting": promoting,
    "succeeded": succeeded, "rolling_back": rolling_back, "rolled_back": rolled_back,
    "aborted": aborted,
}

R = "refused"
# phase -> command -> (decision kind, phase after, step after) or R
MATRIX: dict[str, dict[CommandKind, tuple[str, Phase, int | None] | str]] = {
    "pending": {
        CommandKind.PROMOTE: ("started", Phase.PROGRESSING, 0),
        CommandKind.PROMOTE_FULL: ("promoting", Phase.PROMOTING, 3),
        CommandKind.PAUSE: R, CommandKind.RESUME: R,
        CommandKind.ROLLBACK: ("rolling_back", Phase.ROLLING_BACK, 0),
        CommandKind.ABORT: ("aborted", Phase.ABORTED, 0),
        CommandKind.SET_WEIGHT: R, CommandKind.RETRY: R,
    },
    "progressing": {
        CommandKind.PROMOTE: ("step", Phase.PROGRESSING, 1),
        CommandKind.PROMOTE_FULL: ("promoting", Phase.PROMOTING, 3),
        CommandKind.PAUSE: ("paused", Phase.PAUSED, 0), CommandKind.RESUME: R,
        CommandKind.ROLLBACK: ("rolling_back", Phase.ROLLING_BACK, 0),
        CommandKind.ABORT: ("aborted", Phase.ABORTED, 0),
        CommandKind.SET_WEIGHT: ("weight_set", Phase.PAUSED, 0), CommandKind.RETRY: R,
    },
    "paused_operator": {
        CommandKind.PROMOTE: ("step", Phase.PROGRESSING, 1),
        CommandKind.PROMOTE_FULL: ("promoting", Phase.PROMOTING, 3),
        CommandKind.PAUSE: R, CommandKind.RESUME: ("resumed", Phase.PROGRESSING, 0),
        CommandKind.ROLLBACK: ("rolling_back", Phase.ROLLING_BACK, 0),
        CommandKind.ABORT: ("aborted", Phase.ABORTED, 0),
        CommandKind.SET_WEIGHT: ("weight_set", Phase.PAUSED, 0), CommandKind.RETRY: R,
    },
    "paused_plan": {
        CommandKind.PROMOTE: ("step", Phase.PROGRESSING, 1),
        CommandKind.PROMOTE_FULL: ("promoting", Phase.PROMOTING, 3),
        CommandKind.PAUSE: R, CommandKind.RESUME: ("step", Phase.PROGRESSING, 1),
        CommandKind.ROLLBACK: ("rolling_back", Phase.ROLLING_BACK, 0),
        CommandKind.ABORT: ("aborted", Phase.ABORTED, 0),
        CommandKind.SET_WEIGHT: ("weight_set", Phase.PAUSED, 0), CommandKind.RETRY: R,
    },
    "promoting": {
        CommandKind.PROMOTE: ("promoted", Phase.SUCCEEDED, 3),
        CommandKind.PROMOTE_FULL: ("promoted", Phase.SUCCEEDED, 3),
        CommandKind.PAUSE: R, CommandKind.RESUME: R,
        CommandKind.ROLLBACK: ("rolling_back", Phase.ROLLING_BACK, 3),
        CommandKind.ABORT: ("aborted", Phase.ABORTED, 3),
        CommandKind.SET_WEIGHT: R, CommandKind.RETRY: R,
    },
    **{name: dict.fromkeys(CommandKind, R)
       for name in ("succeeded", "rolling_back", "rolled_back", "aborted")},
}
for _ended in ("rolled_back", "aborted"):
    MATRIX[_ended][CommandKind.RETRY] = ("retried", Phase.PROGRESSING, 0)
MATRIX["paused_gate"] = dict(MATRIX["paused_operator"])


def _cases() -> list[tuple[str, CommandKind]]:
    return [(phase, kind) for phase in PHASES for kind in CommandKind]


def test_matrix_covers_every_phase_and_command() -> None:
    covered = {"paused" if p.startswith("paused") else p for p in MATRIX}
    assert covered == {p.value for p in Phase}
    assert all(set(row) == set(CommandKind) for row in MATRIX.values())


@pytest.mark.parametrize(("phase", "kind"), _cases())
def test_command_in_phase(phase: str, kind: CommandKind) -> None:
    engine, _world, journal, now = PHASES[phase]()
    before = engine.state
    lines = len(journal.records)
    decisions = engine.command(Command(kind, value=30 if kind is CommandKind.SET_WEIGHT else None), now)
    expected = MATRIX[phase][kind]
    assert len(decisions) == 1
    decision = decisions[0]
    # Every command leaves a journal line, refused or not: never silently ignored.
    assert len(journal.records) == lines + 1
    assert journal.records[-1]["kind"] == decision.kind
    if expected == R:
        assert decision.refused and decision.kind == "refused"
        assert kind.value in decision.reason and "refused" in decision.reason, decision.reason
        assert engine.event_for(decision).severity == "warning"
        after = engine.state
        assert (after.phase, after.step, after.weight, after.pending) == (
            before.phase, before.step, before.weight, before.pending)
        return
    want_kind, want_phase, want_step = expected
    assert not decision.refused
    assert (decision.kind, engine.state.phase) == (want_kind, want_phase)
    if want_step is not None:
        assert engine.state.step == want_step
    assert decision.actor == "operator"


@pytest.mark.parametrize("phase", list(PHASES))
def test_read_only_engine_refuses_every_command(phase: str) -> None:
    live, _world, journal, now = PHASES[phase]()
    watcher = Engine(live.spec, read_only=True, records=journal.records)
    assert watcher.state == live.state
    for kind in CommandKind:
        decisions = watcher.command(Command(kind, value=50), now)
        assert [d.refused for d in decisions] == [True]
        assert "read-only" in decisions[0].reason
    assert (watcher.state.phase, watcher.state.step, watcher.state.weight) == (
        live.state.phase, live.state.step, live.state.weight)


@pytest.mark.parametrize("value", [None, -1, 101])
def test_set_weight_out_of_range_is_refused(value: int | None) -> None:
    engine, _world, _journal, now = progressing()
    decisions = engine.command(Command(CommandKind.SET_WEIGHT, value=value), now)
    assert decisions[0].refused and "0..100" in decisions[0].reason
    assert engine.state.phase is Phase.PROGRESSING


def test_set_weight_sets_the_lever_and_pauses_until_resumed() -> None:
    engine, world, _journal, now = progressing()
    command(engine, world, CommandKind.SET_WEIGHT, now, value=30)
    assert (engine.state.phase, engine.state.weight, world.weight) == (Phase.PAUSED, 30, 30)
    assert engine.state.manual_weight
    for i in range(30):  # paused: nothing moves however long it waits
        assert kinds(tick(engine, world, now + 1 + i)) == []
    command(engine, world, CommandKind.RESUME, now + 40)
    assert engine.state.phase is Phase.PROGRESSING and engine.state.weight == 30
    _, _seen = run_until(engine, world, now + 41, until=("step",))
    assert engine.state.step == 1 and world.weight == 50 and not engine.state.manual_weight


# --------------------------------------------------------------------------- tick transitions


def test_first_tick_starts_and_applies_step_zero() -> None:
    engine, world, _journal = _engine()
    decisions = tick(engine, world, T0)
    started = decisions[0] if decisions[0].kind == "started" else next(
        d for d in decisions if d.kind == "started")
    assert [(a.kind, a.version, a.value) for a in started.actions] == [
        ("scale", "v2", 1), ("scale", "v1", 1), ("set_weight", "", 10)]
    assert world.weight == 10 and world.replicas == {"v1": 1, "v2": 1}
    assert not engine.state.pending and engine.state.done_actions == {a.id for a in started.actions}


def test_pre_rollout_check_holds_pending_until_it_passes() -> None:
    engine, world, _journal = _engine()
    waiting = CheckResult("smoke", "pre-rollout", None)
    failed = CheckResult("smoke", "pre-rollout", False, "HTTP 500")
    assert kinds(tick(engine, world, T0, checks=[waiting])) == []
    assert kinds(tick(engine, world, T0 + 1, checks=[failed])) == []
    assert engine.state.phase is Phase.PENDING
    ok = CheckResult("smoke", "pre-rollout", True)
    assert kinds(tick(engine, world, T0 + 2, checks=[ok])) == ["started"]


def test_step_advances_only_after_the_hold_and_passing_gates() -> None:
    engine, world, _journal, now = progressing()
    for t in range(int(now), int(T0) + 10):
        assert kinds(tick(engine, world, float(t))) == [], t
    assert kinds(tick(engine, world, T0 + 10)) == ["step"]
    assert (engine.state.step, engine.state.weight, world.weight) == (1, 50, 50)


def test_manual_and_timed_pause_steps() -> None:
    engine, world, _journal = _engine('kind = "canary"\nhold = "5s"\n'
                                      'steps = [10, "pause", 40, {pause = "30s"}, 80]')
    labels = engine.plan.labels()
    assert labels == ("10%", "pause (manual)", "40%", "pause 30s", "80%", "100%")
    run_until(engine, world, T0, until=("step",))
    assert engine.state.phase is Phase.PAUSED and engine.state.paused_by == "engine"
    for i in range(50):
        assert kinds(tick(engine, world, T0 + 10 + i)) == []
    command(engine, world, CommandKind.RESUME, T0 + 100)
    assert engine.state.step == 2 and world.weight == 40
    at, _ = run_until(engine, world, T0 + 101, until=("step",))
    assert engine.state.step == 3 and world.weight == 40  # a timed pause keeps the weight
    at2, _ = run_until(engine, world, at + 1, until=("step",))
    assert at2 - at == 30 and engine.state.step == 4


def test_hold_timer_stops_while_paused() -> None:
    engine, world, _journal = _engine()
    tick(engine, world, T0)
    command(engine, world, CommandKind.PAUSE, T0 + 4)
    assert engine.state.hold_elapsed(T0 + 1000) == pytest.approx(4)
    tick(engine, world, T0 + 100)
    command(engine, world, CommandKind.RESUME, T0 + 100)
    assert engine.state.hold_elapsed(T0 + 105) == pytest.approx(9)
    assert kinds(tick(engine, world, T0 + 105)) == []
    assert kinds(tick(engine, world, T0 + 106)) == ["step"]


def test_warning_gate_pauses_and_resume_continues() -> None:
    engine, world, _journal, now = progressing()
    decisions = tick(engine, world, now, p99=0.5)
    assert kinds(decisions) == ["paused"]
    paused = next(d for d in decisions if d.kind == "paused")
    assert paused.actor == "gate:p99" and paused.evidence[0]["threshold"] == 0.2
    for i in range(20):  # a warning never rolls back, however long it fails
        assert kinds(tick(engine, world, now + 1 + i, p99=0.5)) == []
    command(engine, world, CommandKind.RESUME, now + 30)
    assert engine.state.phase is Phase.PROGRESSING


@pytest.mark.parametrize("setup", ["progressing", "paused_operator", "paused_plan", "promoting"])
def test_critical_gate_rolls_back_from_any_live_phase(setup: str) -> None:
    engine, world, journal, now = PHASES[setup]()
    decisions = tick(engine, world, now, error_ratio=0.5)
    assert kinds(decisions) == ["rolling_back", "rolled_back"]
    rolling = next(d for d in decisions if d.kind == "rolling_back")
    assert rolling.actor == "gate:errors"
    assert rolling.evidence[0]["value"] == 0.5 and rolling.evidence[0]["threshold"] == 0.05
    assert next((a.kind, a.value) for a in rolling.actions) == ("set_weight", 0)  # traffic first
    assert world.weight == 0 and world.replicas["v1"] == 1
    assert engine.state.phase is Phase.ROLLED_BACK and engine.state.cause
    assert engine.state.cause[0]["gate"] == "errors"
    # the journal carries the evidence of the decision
    record = next(r for r in journal.records if r["kind"] == "rolling_back")
    assert record["evidence"][0]["metric"] == "error_rate"


def test_rollback_scales_down_after_the_delay_and_finishes() -> None:
    engine, world, _journal, now = rolled_back()
    assert not engine.finished
    assert engine.state.finished_at is not None
    end = engine.state.finished_at + engine.plan.scale_down_delay
    t = now
    while t < end:
        assert kinds(tick(engine, world, t)) == []
        t += 1
    assert kinds(tick(engine, world, end)) == ["scaled_down"]
    assert world.replicas["v2"] == 0 and engine.finished


def test_abort_scales_down_and_finishes() -> None:
    engine, world, _journal, now = aborted()
    run_until(engine, world, now, until=("scaled_down",))
    assert engine.finished and world.replicas == {"v1": 1, "v2": 0} and world.weight == 0


def test_full_canary_promotes_and_cleans_up() -> None:
    engine, world, journal = _engine()
    at, seen = run_until(engine, world, T0)
    assert kinds(seen) == ["started", "step", "step", "promoting", "promoted"]
    assert engine.state.phase is Phase.SUCCEEDED and engine.finished
    assert world.weight == 100 and world.replicas == {"v1": 0, "v2": 1}
    promoting_at = next(r["at"] for r in journal.records if r["kind"] == "promoting")
    assert at - promoting_at == engine.plan.scale_down_delay


def test_rolling_back_waits_for_the_traffic_lever() -> None:
    engine, world, _journal, now = rolling_back()
    assert kinds(engine.tick(world.healthy(now), now)) == []  # the lever has not moved yet
    first = engine.state.pending[0]
    assert first.kind == "set_weight"
    decisions = engine.action_done(first, now)
    assert kinds(decisions) == ["rolled_back"]
    assert decisions[-1].actor == "operator"


def test_failed_action_stays_pending_and_holds_the_step() -> None:
    engine, world, _journal = _engine()
    engine.tick(world.healthy(T0), T0)
    action = engine.state.pending[0]
    assert kinds(engine.action_done(action, T0, ok=False, error="boom")) == ["action_failed"]
    assert action in engine.state.pending
    reasons = engine.holding_reasons(world.healthy(T0 + 50), T0 + 50)
    assert any("waiting for" in r for r in reasons)
    assert kinds(engine.tick(world.healthy(T0 + 50), T0 + 50)) == []


def test_action_done_twice_is_ignored() -> None:
    engine, world, journal = _engine()
    engine.tick(world.healthy(T0), T0)
    action = engine.state.pending[0]
    engine.action_done(action, T0)
    lines = len(journal.records)
    assert engine.action_done(action, T0) == []
    assert len(journal.records) == lines


def test_platform_not_ready_holds_the_step() -> None:
    engine, world, _journal, _now = progressing()
    world.replicas["v2"] = 0
    at = T0 + 30
    assert kinds(tick(engine, world, at)) == []
    assert any("v2: 0/1 ready" in r for r in engine.holding_reasons(world.healthy(at), at))
    no_platform = Snapshot(at=at, platform=None, metrics=world.healthy(at).metrics)
    assert kinds(engine.tick(no_platform, at + 1)) == []
    world.replicas["v2"] = 1
    # The platform was not observed at at+1: the step's evidence restarts (observed time only).
    assert kinds(tick(engine, world, at + 2)) == []
    assert any(r.startswith("hold: 10s left") for r in engine.holding_reasons(None, at + 2))
    assert kinds(tick(engine, world, at + 11)) == []
    assert kinds(tick(engine, world, at + 12)) == ["step"]


def test_journal_rebuilds_each_phase_exactly() -> None:
    for name, setup in PHASES.items():
        live, _world, journal, _now = setup()
        again = Engine(live.spec, records=journal.records)
        assert again.state == live.state, name
        if journal.records:  # the resumed engine continues the same run
            assert again.run.run == "run1" and again.resumed


@pytest.mark.parametrize("ended", ["rolled_back", "aborted"])
def test_retry_starts_again_from_the_first_step_and_can_promote(ended: str) -> None:
    engine, world, journal, now = PHASES[ended]()
    decisions = command(engine, world, CommandKind.RETRY, now)
    assert kinds(decisions) == ["retried"]
    state = engine.state
    assert (state.phase, state.step, state.weight) == (Phase.PROGRESSING, 0, 10)
    assert state.finished_at is None and state.cause == () and not state.cleaned and not engine.finished
    assert world.weight == 10 and world.replicas == {"v1": 1, "v2": 1}
    assert engine.event_for(decisions[0]).to_dict()["label"] == "10%"
    run_until(engine, world, now + 1)
    assert engine.state.phase is Phase.SUCCEEDED and engine.finished
    assert Engine(engine.spec, records=journal.records).state == engine.state


def test_entering_a_pause_step_restores_the_plan_weight_after_set_weight() -> None:
    """Found by the invariant property: desired weight 10 while the lever stayed at 0."""
    engine, world, _journal = _engine('kind = "canary"\nsteps = [10, "pause", 50]\nhold = "10s"')
    tick(engine, world, T0)
    command(engine, world, CommandKind.SET_WEIGHT, T0 + 1, value=0)
    assert world.weight == 0
    command(engine, world, CommandKind.PROMOTE, T0 + 2)
    assert engine.state.step == 1 and engine.state.weight == 10 and world.weight == 10
