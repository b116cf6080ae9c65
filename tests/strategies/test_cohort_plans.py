"""Rings with cohorts, dark steps and A/B experiments, walked by the engine (pure, no I/O)."""

from __future__ import annotations

import random
from dataclasses import replace

from strategies.cohorts import CohortMatch
from strategies.engine import Engine
from strategies.experiment import SUCCESS_KEY, TRIALS_KEY, ConversionTracker, ExperimentSpec
from strategies.model import CommandKind, Decision, Phase, Snapshot
from strategies.plans import build_plan
from tests.strategies.brain_kit import T0, World, command, kinds, make_spec, metrics, run_until, sample, tick

RINGS = '''kind = "ring"
hold = "5s"
scale_down_delay = "2s"
sticky = { header = "X-User-Id" }
rings = [
  { name = "staff", match = { header = "X-User-Group", values = ["staff"] } },
  { name = "beta", match = { cookie = "beta", values = ["yes"] }, weight = 5 },
  { name = "early", weight = 20 },
  { name = "everyone", weight = 100 },
]'''

DARK = '''kind = "canary"
steps = [{ dark = 50, hold = "6s" }, 10, 100]
hold = "5s"
scale_down_delay = "2s"'''

AB = '''kind = "ab"
split = 50
duration = "120s"
hold = "3s"
scale_down_delay = "2s"
sticky = { header = "X-User-Id" }
experiment = { confidence = 0.95, min_trials = 50 }'''


def routes(world: World) -> list[tuple[str, int]]:
    return [(a.kind, a.value) for a in world.applied if a.kind in ("set_cohorts", "set_mirror", "set_weight")]


def test_rings_open_one_cohort_at_a_time_and_a_rollback_closes_them_all() -> None:
    spec = make_spec(RINGS)
    plan = build_plan(spec)
    assert plan.labels() == ("staff", "beta +5%", "early 20%", "everyone 100%")
    assert [r.name for r in plan.cohorts] == ["staff", "beta"]
    assert plan.route_for(1, 0, "v2").cohorts[0].match == CohortMatch(header="X-User-Group",
                                                                          values=("staff",))
    engine, world = Engine(spec), World.for_spec(spec)
    tick(engine, world, T0)
    assert (engine.state.step, engine.state.cohorts, engine.state.weight) == (0, 1, 0)
    # the first ring's traffic is the candidate's: it fails there, everything closes
    _, seen = run_until(engine, world, T0 + 1, until=("rolled_back",), error_ratio=0.5)
    assert engine.state.step == 0 and "rolling_back" in kinds(seen)
    back = next(d for d in seen if d.kind == "rolling_back")
    assert [(a.kind, a.value) for a in back.actions][:2] == [("set_cohorts", 0), ("set_weight", 0)]
    assert (engine.state.cohorts, engine.state.weight) == (0, 0)
    assert routes(world) == [("set_cohorts", 1), ("set_cohorts", 0), ("set_weight", 0)]


def test_rings_advance_in_order_to_everyone() -> None:
    spec = make_spec(RINGS)
    engine, world = Engine(spec), World.for_spec(spec)
    run_until(engine, world, T0, until=("promoted",))
    opened = [v for k, v in routes(world) if k == "set_cohorts"]
    assert opened == [1, 2, 0]  # staff, then + beta; promotion clears the rules
    weights = [v for k, v in routes(world) if k == "set_weight"]
    assert weights == [5, 20, 100, 100]


def test_dark_step_mirrors_without_users_then_canary() -> None:
    spec = make_spec(DARK)
    plan = build_plan(spec)
    assert [(s.label, s.weight, s.mirror) for s in plan.steps] == [
        ("dark 50%", 0, 50), ("10%", 10, 0), ("100%", 100, None)]
    engine, world = Engine(spec), World.for_spec(spec)
    tick(engine, world, T0)
    assert (engine.state.weight, engine.state.mirror) == (0, 50)
    # the shadow traffic is bad: the gates stop the release before any user was served by v2
    run_until(engine, world, T0 + 1, until=("rolled_back",), error_ratio=0.4)
    assert engine.state.step == 0
    assert all(not (k == "set_weight" and v > 0) for k, v in routes(world))
    assert engine.state.mirror == 0 and engine.state.phase is Phase.ROLLED_BACK


def test_dark_then_canary_then_full_when_healthy() -> None:
    spec = make_spec(DARK)
    engine, world = Engine(spec), World.for_spec(spec)
    run_until(engine, world, T0, until=("promoted",))
    # leaving the dark step the mirror stops before any user reaches v2 (never both at once)
    assert routes(world) == [("set_weight", 0), ("set_cohorts", 0), ("set_mirror", 50),
                             ("set_mirror", 0), ("set_weight", 10), ("set_weight", 100),
                             ("set_mirror", 0), ("set_weight", 100), ("set_cohorts", 0)]


def test_no_lever_call_gives_v2_users_while_it_is_mirrored() -> None:
    spec = make_spec(DARK)
    engine, world = Engine(spec), World.for_spec(spec)
    run_until(engine, world, T0, until=("promoted",))
    mirror = weight = 0
    for kind, value in routes(world):
        mirror = value if kind == "set_mirror" else mirror
        weight = value if kind == "set_weight" else weight
        assert not (mirror and weight), routes(world)


def test_leaving_a_dark_step_journals_the_mirror_removal_before_the_weight() -> None:
    """The decision that leaves the dark step names the mirror removal before the weight."""
    spec = make_spec(DARK)
    engine, world = Engine(spec), World.for_spec(spec)
    _, seen = run_until(engine, world, T0, until=("promoted",))
    left = next(d for d in seen if d.step == 1 and any(a.kind == "set_weight" for a in d.actions))
    routing = [(a.kind, a.value) for a in left.actions if a.kind in ("set_mirror", "set_weight")]
    assert routing == [("set_mirror", 0), ("set_weight", 10)]


class Shop:
    """Cumulative visits and orders of both versions, drawn from a seeded generator."""

    def __init__(self, seed: int, rate_a: float, rate_b: float, visits_per_tick: int = 40):
        self.rng = random.Random(seed)
        self.rates = {"v1": rate_a, "v2": rate_b}
        self.totals = {"v1": [0, 0], "v2": [0, 0]}  # orders, visits
        self.per_tick = visits_per_tick

    def snapshot(self, world: World, now: float) -> Snapshot:
        samples = []
        for version, rate in self.rates.items():
            orders = sum(self.rng.random() < rate for _ in range(self.per_tick))
            self.totals[version][0] += orders
            self.totals[version][1] += self.per_tick
            samples.append(replace(sample(version, now), custom={
                SUCCESS_KEY: float(self.totals[version][0]), TRIALS_KEY: float(self.totals[version][1])}))
        return Snapshot(at=now, platform=world.platform(now), metrics=metrics(now, *samples))


def run_ab(seed: int, rate_b: float) -> tuple[Engine, list[Decision]]:
    spec = make_spec(AB)
    engine, world, shop = Engine(spec), World.for_spec(spec), Shop(seed, 0.10, rate_b)
    now, seen = T0, []
    for _ in range(400):
        seen.extend(tick(engine, world, now, snapshot=shop.snapshot(world, now)))
        if engine.state.phase.terminal:
            break
        now += 1
    return engine, seen


def test_ab_where_b_converts_better_is_promoted_with_b_named() -> None:
    engine, seen = run_ab(seed=7, rate_b=0.20)
    assert engine.state.phase is Phase.SUCCEEDED
    readout = engine.readout
    assert readout is not None and readout.winner == "v2"
    assert readout.lift is not None and readout.low is not None and readout.low > 0
    decided = [d for d in seen if d.actor == "experiment"]
    assert [d.kind for d in decided] == ["step"] and decided[0].weight == 100
    assert decided[0].evidence[0]["winner"] == "v2"
    assert "v2 wins over v1" in decided[0].reason


def test_ab_where_b_is_worse_keeps_a() -> None:
    engine, _ = run_ab(seed=3, rate_b=0.04)
    assert engine.state.phase is Phase.ROLLED_BACK
    assert engine.readout is not None and engine.readout.winner == "v1"
    assert engine.state.cause[0]["winner"] == "v1" and engine.state.cause[0]["actor"] == "experiment"
    assert "v1 stays" in engine.state.reason


def test_ab_with_no_difference_ends_without_a_winner_and_keeps_a() -> None:
    engine, _ = run_ab(seed=11, rate_b=0.10)
    assert engine.state.phase is Phase.ROLLED_BACK
    assert engine.readout is not None and engine.readout.winner is None
    assert "no winner after 120s" in engine.state.reason


def test_ab_operator_promote_takes_b_and_rollback_keeps_a() -> None:
    spec = make_spec(AB)
    engine, world = Engine(spec), World.for_spec(spec)
    tick(engine, world, T0)
    command(engine, world, CommandKind.ROLLBACK, T0 + 1)
    assert engine.state.phase is Phase.ROLLED_BACK and world.weight == 0


def test_false_winner_rate_of_equal_versions_is_below_one_minus_confidence() -> None:
    """200 seeded experiments of equal versions, each looked at after every one of 200 ticks:
    the share that names a winner stays under 1 - confidence (anytime-valid)."""
    spec = ExperimentSpec(confidence=0.95, min_trials=50)
    false_winners = 0
    for seed in range(200):
        rng = random.Random(seed)
        tracker = ConversionTracker(spec, "v1", "v2")
        for _ in range(200):
            a = sum(rng.random() < 0.1 for _ in range(20))
            b = sum(rng.random() < 0.1 for _ in range(20))
            tracker.add(20, a, 20, b)
            if tracker.winner is not None:
                false_winners += 1
                break
    assert false_winners / 200 < 1 - spec.confidence


def test_a_counter_reset_starts_a_new_origin_not_a_negative_interval() -> None:
    tracker = ConversionTracker(ExperimentSpec(min_trials=1), "v1", "v2")
    tracker.add_totals({"v1": (10, 100), "v2": (10, 100)})
    tracker.add_totals({"v1": (20, 200), "v2": (25, 200)})
    tracker.add_totals({"v1": (1, 5), "v2": (30, 250)})  # v1 restarted: skipped
    tracker.add_totals({"v1": (11, 105), "v2": (35, 300)})
    readout = tracker.readout()
    assert (readout.control_trials, readout.treatment_trials) == (200, 150)
    assert (readout.control_success, readout.treatment_success) == (20, 20)


def test_a_state_with_rings_and_a_readout_travels_to_followers() -> None:
    """The rings and the experiment readout survive the state codec (attach, browser, watch)."""
    from strategies.model import State
    from strategies.ring_view import ring_views
    from strategies.state_json import state_from_json, state_to_json

    engine, _ = run_ab(seed=7, rate_b=0.20)
    state = State(at=T0, release="checkout", strategy="ab", platform_kind="local",
                  metrics_source="test", rollout=engine.state, steps=engine.plan.labels(),
                  hold=0.0, cohorts=ring_views(engine.plan, engine.state, None),
                  experiment=engine.readout)
    back = state_from_json(state_to_json(state))
    assert back.experiment == state.experiment and back.cohorts == state.cohorts
    assert [c.status for c in back.cohorts] == ["reached", "reached"]


def test_bad_cohort_specs_are_one_line_each_with_file_field_and_reason() -> None:
    import pytest

    from strategies.spec import SpecError

    bad = '''kind = "canary"
steps = [10, { dark = 50, weight = 3 }, { dark = 200 }]
sticky = { header = "X", cookie = "y" }
experiment = { success = "orders" }'''
    with pytest.raises(SpecError) as caught:
        make_spec(bad)
    lines = caught.value.lines()
    assert all(line.startswith("test.toml: strategy.") for line in lines)
    assert any("steps[1].weight: a dark step serves no user" in line for line in lines)
    assert any("steps[2].dark: dark steps come before any step that serves users" in line for line in lines)
    assert any("sticky: give exactly one of header or cookie" in line for line in lines)
    assert any("experiment: only an 'ab' plan runs an experiment" in line for line in lines)
    with pytest.raises(SpecError, match='needs \\[router\\] kind = "local" or "haproxy"'):
        make_spec(RINGS, extra='\n[router]\nkind = "none"\n')
