"""Properties of the engine over generated runs (hypothesis).

(a) No sequence of ticks whose data is unknown (missing, stale, thin, errored) ever succeeds,
    whatever the operator does short of promoting by hand.
(b) A crash at ANY journal line, followed by a restart from the journal, ends in the same place
    as the run that never crashed, and never repeats an action the journal shows as done.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from strategies.engine import Engine
from strategies.journal import MemoryJournal
from strategies.model import Command, CommandKind, MetricsSnapshot, Phase, Snapshot
from strategies.spec import ReleaseSpec
from tests.strategies.brain_kit import T0, World, make_spec, metrics, sample

GATES = """
[[gate]]
name = "errors"
metric = "error_rate"
max = 0.05
for = "{error_for}"
severity = "critical"
min_requests = 20

[[gate]]
name = "p99"
metric = "latency_p99"
max = 0.3
severity = "warning"
min_requests = 20

[[gate]]
name = "traffic"
metric = "throughput"
min = 1
severity = "info"
min_requests = 20
"""

FAST = {
    "canary": 'kind = "canary"\nsteps = [10, "pause", 50, {pause = "2s"}]\nhold = "2s"\nscale_down_delay = "2s"',
    "blue-green": ('kind = "blue-green"\npreview_hold = "1s"\nhold = "2s"\nauto_promote = false\n'
                   'scale_down_delay = "2s"'),
    "rolling": 'kind = "rolling"\nmax_surge = 1\nhold = "2s"\nscale_down_delay = "1s"',
    "ab": 'kind = "ab"\nsplit = 20\nduration = "3s"\nhold = "1s"\nscale_down_delay = "1s"',
    "ring": ('kind = "ring"\nhold = "1s"\nscale_down_delay = "1s"\n'
             'rings = [{name = "staff", weight = 5}, {name = "all", weight = 100}]'),
    "flag": 'kind = "flag"\nflag = "f"\nstep_weight = 30\nmax_weight = 60\nhold = "1s"\nscale_down_delay = "0s"',
}
SPECS: dict[tuple[str, str], ReleaseSpec] = {
    (kind, error_for): make_spec(body, GATES.format(error_for=error_for),
                                 replicas=3 if kind == "rolling" else 1)
    for kind, body in FAST.items() for error_for in ("0s", "2s")
}
SPEC_KEYS = sorted(SPECS)
# More examples for a deeper hunt: BRAIN_EXAMPLES=2000 pytest tests/strategies/test_engine_properties.py
SCALE = max(1, int(os.environ.get("BRAIN_EXAMPLES", "0")) // 100) if os.environ.get("BRAIN_EXAMPLES") else 1


@dataclass(frozen=True)
class Tick:
    dt: float
    health: str  # how the candidate behaves (b), or what is wrong with the data (a)


@dataclass(frozen=True)
class Cmd:
    dt: float
    kind: CommandKind
    value: int | None = None


Input = Tick | Cmd

# --------------------------------------------------------------------------- (a) unknown never succeeds

DEFECTS = ("none_metrics", "nan", "error", "timeout", "old_sample", "old_snapshot", "few", "missing",
           "no_requests")
SAFE_COMMANDS = (CommandKind.PAUSE, CommandKind.RESUME, CommandKind.ROLLBACK, CommandKind.ABORT,
                 CommandKind.SET_WEIGHT, CommandKind.RETRY)


def unknown_snapshot(world: World, now: float, defect: str, values: float, requests: int) -> Snapshot:
    """A snapshot whose candidate data can decide no gate: the defect says why."""
    base = sample(world.baseline, now)
    cand = sample(world.candidate, now, error_ratio=values, p99=values, throughput=values * 100)
    platform = world.platform(now)
    if defect == "timeout":
        return Snapshot(at=now, platform=platform, metrics=None)
    if defect == "error":
        return Snapshot(at=now, platform=platform, metrics=MetricsSnapshot(at=now, error="connection refused"))
    if defect == "none_metrics":
        cand = sample(world.candidate, now, error_ratio=None, p50=None, p95=None, p99=None, throughput=None)
    elif defect == "nan":
        cand = sample(world.candidate, now, error_ratio=math.nan, p50=math.inf, p95=math.nan, p99=math.nan,
                      throughput=math.nan)
    elif defect == "old_sample":
        cand = sample(world.candidate, now - 6 - requests, error_ratio=values, p99=values)
    elif defect == "old_snapshot":
        old = now - 6 - requests
        return Snapshot(at=now, platform=platform, metrics=metrics(
            old, sample(world.baseline, old), sample(world.candidate, old)))
    elif defect == "few":
        # Too few requests to pass, and error-free: a handful of requests that all fail is no
        # longer "unknown" (it is evidence of a breach; see test_gate_evidence).
        cand = sample(world.candidate, now, requests=requests % 20, error_ratio=0.0, p99=values)
    elif defect == "no_requests":
        cand = sample(world.candidate, now, requests=None, error_ratio=values, p99=values)
    elif defect == "missing":
        return Snapshot(at=now, platform=platform, metrics=metrics(now, base))
    return Snapshot(at=now, platform=platform, metrics=metrics(now, base, cand))


unknown_ticks = st.tuples(st.floats(0.5, 4.0), st.sampled_from(DEFECTS), st.floats(0.0, 1.0),
                          st.integers(0, 200))
safe_commands = st.tuples(st.floats(0.5, 4.0), st.sampled_from(SAFE_COMMANDS), st.integers(0, 100))


@settings(max_examples=150 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(SPEC_KEYS),
       script=st.lists(st.one_of(unknown_ticks, unknown_ticks, unknown_ticks, safe_commands),
                       min_size=1, max_size=60))
def test_unknown_data_never_promotes(key: tuple[str, str], script: list[tuple]) -> None:
    spec = SPECS[key]
    engine = Engine(spec)
    world = World.for_spec(spec)
    now = T0
    for item in script:
        now += item[0]
        before = engine.state.step
        if isinstance(item[1], CommandKind):
            value = item[2] if item[1] is CommandKind.SET_WEIGHT else None
            decisions = engine.command(Command(item[1], value=value), now)
        else:
            _, defect, values, requests = item
            decisions = engine.tick(unknown_snapshot(world, now, defect, values, requests), now)
            # unknown data decides nothing about the gates: no pause, no rollback by a gate
            assert not [d for d in decisions if d.actor.startswith("gate:") and d.kind != "gate"]
            # and never leaves a step that needs analysis
            for d in decisions:
                if d.kind in ("step", "promoting") and d.actor == "engine":
                    assert not engine.plan.steps[before].analysis, (before, d.reason)
        decisions += world.settle(engine, now)
        assert all(d.kind != "promoted" for d in decisions)
        assert engine.state.phase is not Phase.SUCCEEDED
        assert engine.state.phase is not Phase.PROMOTING


@pytest.mark.parametrize("key", SPEC_KEYS)
def test_the_same_specs_do_promote_on_good_data(key: tuple[str, str]) -> None:
    """The counterpart of the property: it is the data, not the spec, that holds the rollout."""
    spec = SPECS[key]
    engine, world, now = Engine(spec), World.for_spec(spec), T0
    for _ in range(200):
        if engine.state.phase is Phase.PAUSED:
            engine.command(Command(CommandKind.RESUME), now)
        engine.tick(world.healthy(now), now)
        world.settle(engine, now)
        if engine.finished:
            break
        now += 1
    assert engine.state.phase is Phase.SUCCEEDED and engine.finished


# --------------------------------------------------------------------------- (b) resume at any cut

HEALTH = ("ok", "ok", "ok", "errors", "slow", "few")


def snapshot_for(world: World, now: float, health: str) -> Snapshot:
    if health == "errors":
        return world.healthy(now, error_ratio=0.4)
    if health == "slow":
        return world.healthy(now, p99=0.9)
    if health == "few":
        return world.healthy(now, requests=5)
    return world.healthy(now)


class Crash(Exception):
    """The process died while writing a journal line."""


class CrashingJournal(MemoryJournal):
    def __init__(self, limit: int | None) -> None:
        super().__init__()
        self.limit = limit

    def __call__(self, record):  # type: ignore[no-untyped-def]
        if self.limit is not None and len(self.records) >= self.limit:
            raise Crash
        super().__call__(record)


def times(inputs: list[Input]) -> list[float]:
    out, now = [], T0
    for item in inputs:
        now += item.dt
        out.append(now)
    return out


def feed(engine: Engine, world: World, item: Input, now: float, *, decide: bool = True) -> None:
    """One driver step: decide (tick or command), then act on every pending action."""
    if decide:
        if isinstance(item, Tick):
            engine.tick(snapshot_for(world, now, item.health), now)
        else:
            engine.command(Command(item.kind, value=item.value), now)
    world.settle(engine, now)


def run(spec: ReleaseSpec, inputs: list[Input], crash_at: int | None = None,
        restart_at: int | None = None, after: bool = False
        ) -> tuple[Engine, World, CrashingJournal, int | None, bool]:
    """Run all inputs; with `crash_at`, die when journal line `crash_at` is about to be written;
    with `restart_at`, restart cleanly — a new engine resumed from the journal — just before that
    input, or (`after`) just after it, re-running it if it was a tick, at the same instant.

    Returns the engine, world and journal, the index of the input that was running at the crash,
    and whether that input's own decision had been journaled before it.
    """
    journal = CrashingJournal(crash_at)
    engine, world = Engine(spec, journal=journal, run="ref"), World.for_spec(spec)
    for index, (item, now) in enumerate(zip(inputs, times(inputs), strict=True)):
        if index == restart_at and not after:
            engine = Engine(spec, journal=journal, records=list(journal.records))
        before = len(journal.records)
        try:
            feed(engine, world, item, now)
        except Crash:
            return engine, world, journal, index, len(journal.records) > before
        if index == restart_at and after:
            engine = Engine(spec, journal=journal, records=list(journal.records))
            if isinstance(item, Tick):
                feed(engine, world, item, now)
    return engine, world, journal, None, False


def final(engine: Engine, world: World) -> tuple:
    s = engine.state
    return (s.phase, s.step, s.weight, s.cleaned, s.pending == (), world.weight, dict(world.replicas))


commands_b = st.sampled_from(list(CommandKind)).flatmap(
    lambda kind: st.builds(Cmd, st.floats(0.5, 3.0), st.just(kind),
                           st.integers(0, 100) if kind is CommandKind.SET_WEIGHT else st.none()))
ticks_b = st.builds(Tick, st.floats(0.5, 3.0), st.sampled_from(HEALTH))
scripts = st.lists(st.one_of(ticks_b, ticks_b, ticks_b, ticks_b, ticks_b, commands_b), min_size=1, max_size=30)


@settings(max_examples=40 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(SPEC_KEYS), inputs=scripts)
# Found by hypothesis: a crash after `started`, before its actions were done. The resumed tick
# re-applied them at once, but its hold counted only from the next tick (an interval short).
@example(key=("ab", "0s"), inputs=[Tick(1.0, "ok"), Cmd(1.0, CommandKind.PAUSE, None),
                                   Cmd(1.0, CommandKind.RESUME, None), Tick(1.0, "ok")])
def test_resume_from_any_journal_cut_matches_the_uninterrupted_run(key: tuple[str, str],
                                                                   inputs: list[Input]) -> None:
    spec = SPECS[key]
    reference, ref_world, ref_journal, _, _ = run(spec, inputs)
    expected = final(reference, ref_world)
    assert Engine(spec, records=ref_journal.records).state == reference.state  # live == folded
    at = times(inputs)
    restarts: dict[int, list[tuple]] = {}
    for cut in range(len(ref_journal.records) + 1):
        crashed, world, journal, index, decided = run(spec, inputs, crash_at=cut)
        if index is None:  # the run wrote fewer lines than the cut: nothing was lost
            assert final(crashed, world) == expected
            continue
        # A resumed run restarts the step's hold evidence (holds count observed time only), so
        # it is compared with runs restarted cleanly, without a crash, just before and just
        # after the interrupted input: whether the decision it was making reached the journal
        # decides which one it must match.
        if index not in restarts:  # many cuts fall in the same input: run its pair once
            restarts[index] = [final(*run(spec, inputs, restart_at=index, after=after)[:2])
                               for after in (False, True)]
        expected_one_of = restarts[index]
        kept = list(journal.records)
        assert len(kept) == cut
        done_before = {str(e["action"]) for r in kept if r["kind"] == "action_done" for e in r["evidence"]}
        applied_before = len(world.applied)
        resumed = Engine(spec, journal=MemoryJournal(), records=kept)
        assert resumed.state.done_actions == done_before
        # The interrupted tick runs again; an operator command that was journaled is not re-sent.
        item = inputs[index]
        feed(resumed, world, item, at[index], decide=isinstance(item, Tick) or not decided)
        for rest, now in zip(inputs[index + 1:], at[index + 1:], strict=True):
            feed(resumed, world, rest, now)
        repeated = [a.id for a in world.applied[applied_before:] if a.id in done_before]
        assert repeated == [], f"cut {cut}: repeated actions {repeated}"
        got = final(resumed, world)
        assert got in expected_one_of, \
            f"cut {cut} (input {index}: {item}): {got} not in {expected_one_of}"


@settings(max_examples=60 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(SPEC_KEYS), inputs=scripts)
def test_invariants_hold_after_every_input(key: tuple[str, str], inputs: list[Input]) -> None:
    spec = SPECS[key]
    engine, world = Engine(spec), World.for_spec(spec)
    steps = len(engine.plan.steps)
    for item, now in zip(inputs, times(inputs), strict=True):
        before = engine.state.phase
        if isinstance(item, Tick):
            decisions = engine.tick(snapshot_for(world, now, item.health), now)
        else:
            decisions = engine.command(Command(item.kind, value=item.value), now)
            assert len(decisions) == 1  # every command is answered, refused or not
        decisions += world.settle(engine, now)
        s = engine.state
        assert 0 <= s.weight <= 100 and 0 <= s.step <= steps
        assert not s.pending and world.weight == s.weight
        if s.phase is Phase.SUCCEEDED:
            assert s.weight == 100 and s.step == steps and world.replicas[world.baseline] == 0
        if s.phase in (Phase.ROLLED_BACK, Phase.ABORTED, Phase.ROLLING_BACK):
            assert s.weight == 0
        if before.terminal and s.phase is not before:
            assert isinstance(item, Cmd) and item.kind is CommandKind.RETRY
        for d in decisions:
            if d.kind == "promoted" and d.actor == "engine":
                assert all(g.status.value == "pass" for g in engine.gates if g.severity.value != "info")
                assert not engine.stale
