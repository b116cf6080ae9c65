"""Plans for every strategy kind: the steps, and the actions the engine takes walking them."""

from __future__ import annotations

import pytest

from strategies.engine import Engine, step_replicas
from strategies.model import CommandKind, Phase
from strategies.plans import build_plan
from tests.strategies.brain_kit import STRATEGIES, T0, World, command, kinds, make_spec, run_until, tick


def levers(decisions) -> list[tuple[str, str, int]]:
    return [(a.kind, a.version, a.value) for d in decisions for a in d.actions]


def test_canary_steps_and_labels() -> None:
    plan = build_plan(make_spec('kind = "canary"\nsteps = [5, 25, {weight = 50, hold = "1m", name = "half"}]\n'
                                'hold = "30s"'))
    assert plan.labels() == ("5%", "25%", "half 50%", "100%")
    assert [s.weight for s in plan.steps] == [5, 25, 50, 100]
    assert [s.hold for s in plan.steps] == [30, 30, 60, 0]
    assert all(s.analysis for s in plan.steps)
    assert dict(plan.steps[0].replicas) == {"v2": 1, "v1": 1}
    assert plan.weight_at(2) == 50


def test_canary_ending_at_100_gets_no_extra_step() -> None:
    plan = build_plan(make_spec('kind = "canary"\nsteps = [20, 100]'))
    assert plan.labels() == ("20%", "100%")


def test_canary_pause_steps_keep_the_weight() -> None:
    plan = build_plan(make_spec('kind = "canary"\nsteps = [10, "pause", {pause = "45s"}, {pause = true, '
                                'name = "ask QA"}, 60]'))
    assert plan.labels() == ("10%", "pause (manual)", "pause 45s", "ask QA", "60%", "100%")
    manual, timed, named = plan.steps[1], plan.steps[2], plan.steps[3]
    assert manual.pause and not manual.analysis and manual.weight is None
    assert not timed.pause and timed.hold == 45 and timed.analysis
    assert named.pause
    assert [plan.weight_at(i) for i in range(6)] == [10, 10, 10, 10, 60, 100]


def test_canary_walk_sets_each_weight_once() -> None:
    spec = make_spec(STRATEGIES["canary"])
    engine, world = Engine(spec), World.for_spec(spec)
    _, seen = run_until(engine, world, T0)
    assert [v for k, _, v in levers(seen) if k == "set_weight"] == [10, 50, 100, 100]
    assert levers([d for d in seen if d.kind == "promoted"]) == [("scale", "v1", 0)]


def test_blue_green_preview_never_leaves_on_unknown_gates() -> None:
    """No preview traffic (0 requests on green): every gate is unknown, and unknown never lets
    a step advance, the preview included; `preview_analysis = false` makes it a timed step."""
    spec = make_spec(STRATEGIES["blue-green"], replicas=2)
    engine, world = Engine(spec), World.for_spec(spec)
    for i in range(60):
        tick(engine, world, T0 + i, requests=0)
    assert engine.state.step == 0 and world.weight == 0
    assert any("unknown" in r for r in engine.holding_reasons(world.healthy(T0 + 60), T0 + 60))
    timed = make_spec(STRATEGIES["blue-green"] + "\npreview_analysis = false", replicas=2)
    assert not build_plan(timed).steps[0].analysis
    engine, world = Engine(timed), World.for_spec(timed)
    at, _ = run_until(engine, world, T0, until=("step",), requests=0)
    assert at == T0 + 5 and world.weight == 100


@pytest.mark.parametrize("auto", [True, False])
def test_blue_green_preview_switch_and_delay(auto: bool) -> None:
    body = STRATEGIES["blue-green"] + ("" if auto else "\nauto_promote = false")
    spec = make_spec(body, replicas=2)
    plan = build_plan(spec)
    expected = ("preview", "switch") if auto else ("preview", "await promotion", "switch")
    assert plan.labels() == expected
    preview = plan.steps[0]
    assert preview.weight == 0 and preview.analysis and preview.hold == 5  # gates judge it
    assert dict(preview.replicas) == {"v1": 2, "v2": 2}
    assert plan.steps[-1].weight == 100 and plan.steps[-1].analysis
    engine, world = Engine(spec), World.for_spec(spec)
    tick(engine, world, T0)
    assert world.replicas == {"v1": 2, "v2": 2} and world.weight == 0  # green is up, unexposed
    if not auto:
        at, _ = run_until(engine, world, T0 + 1, until=("step",))
        assert engine.state.phase is Phase.PAUSED and at == T0 + 5
        for i in range(30):
            assert kinds(tick(engine, world, at + 1 + i)) == []
        command(engine, world, CommandKind.PROMOTE, at + 40)
    else:
        run_until(engine, world, T0 + 1, until=("step",))
    assert world.weight == 100 and world.replicas["v1"] == 2  # old side kept for the delay
    at, _ = run_until(engine, world, T0 + 41, until=("promoting",))
    done, _ = run_until(engine, world, at + 1)
    assert done - at == spec.strategy.scale_down_delay
    assert world.replicas == {"v1": 0, "v2": 2}


def test_blue_green_switches_back_instantly() -> None:
    spec = make_spec(STRATEGIES["blue-green"], replicas=2)
    engine, world = Engine(spec), World.for_spec(spec)
    run_until(engine, world, T0, until=("step",))
    assert world.weight == 100
    decisions = tick(engine, world, T0 + 20, error_ratio=0.5)
    rolling = next(d for d in decisions if d.kind == "rolling_back")
    assert (rolling.actions[0].kind, rolling.actions[0].value) == ("set_weight", 0)
    assert engine.state.phase is Phase.ROLLED_BACK and world.replicas["v1"] == 2


@pytest.mark.parametrize(("n", "surge", "unavailable", "batches"), [
    (4, 1, 0, [(1, 3), (2, 2), (3, 1), (4, 0)]),
    (5, 2, 0, [(2, 3), (4, 1), (5, 0)]),
    (4, 0, 2, [(2, 2), (4, 0)]),
    (3, 1, 1, [(1, 2), (2, 1), (3, 0)]),
    (1, 1, 0, [(1, 0)]),
])
def test_rolling_batches(n: int, surge: int, unavailable: int, batches: list[tuple[int, int]]) -> None:
    spec = make_spec(f'kind = "rolling"\nmax_surge = {surge}\nmax_unavailable = {unavailable}\nhold = "5s"',
                     replicas=n)
    plan = build_plan(spec)
    assert [(s.replicas["v2"], s.replicas["v1"]) for s in plan.steps] == batches
    assert plan.steps[-1].weight == 100 and all(s.analysis for s in plan.steps)
    assert plan.labels()[0] == f"batch 1/{len(batches)} ({batches[0][0]}/{n})"
    # Order within a step keeps inside the allowance: surge adds first, unavailability removes first.
    first = next(iter(plan.steps[0].replicas))
    assert first == ("v2" if surge >= unavailable else "v1")
    # Walk it: at every moment the world stays within n - unavailable .. n + surge instances.
    engine, world = Engine(spec), World.for_spec(spec)
    now = T0
    for _ in range(200):
        decisions = engine.tick(world.healthy(now), now)
        for action in list(engine.state.pending):
            world.apply(action)
            total = sum(world.replicas.values())
            assert n - unavailable <= total <= n + surge, (action, world.replicas)
            engine.action_done(action, now)
        if engine.finished:
            break
        now += 1
        assert decisions is not None
    assert engine.state.phase is Phase.SUCCEEDED and world.replicas == {"v1": 0, "v2": n}


def test_rolling_waits_for_each_batch_to_be_ready() -> None:
    spec = make_spec('kind = "rolling"\nmax_surge = 1\nhold = "1s"', replicas=3)
    engine, world = Engine(spec), World.for_spec(spec)
    tick(engine, world, T0)
    assert step_replicas(engine.plan, 0) == {"v2": 1, "v1": 2}
    world.replicas["v2"] = 0  # the new instance has not come up
    for t in range(1, 20):
        assert kinds(tick(engine, world, T0 + t)) == []
    world.replicas["v2"] = 1
    assert kinds(tick(engine, world, T0 + 20)) == ["step"]


def test_ab_split_for_its_duration_then_full() -> None:
    spec = make_spec(STRATEGIES["ab"])
    plan = build_plan(spec)
    assert plan.labels() == ("A/B 70/30", "100%")
    assert plan.steps[0].weight == 30 and plan.steps[0].hold == 20
    engine, world = Engine(spec), World.for_spec(spec)
    at, _ = run_until(engine, world, T0, until=("step",))
    assert at - T0 == 20 and world.weight == 100


def test_ring_plan_walks_named_rings() -> None:
    spec = make_spec(STRATEGIES["ring"])
    plan = build_plan(spec)
    assert plan.labels() == ("internal 5%", "beta 30%", "everyone 100%")
    assert [s.hold for s in plan.steps] == [10, 20, 10]
    engine, world = Engine(spec), World.for_spec(spec)
    _, seen = run_until(engine, world, T0)
    assert [v for k, _, v in levers(seen) if k == "set_weight"][:3] == [5, 30, 100]


@pytest.mark.parametrize(("body", "weights"), [
    ('step_weight = 20\nmax_weight = 60', [20, 40, 60, 100]),
    ('start_weight = 5\nstep_weight = 20\nmax_weight = 50', [5, 25, 45, 50, 100]),
    ('step_weight = 50\nmax_weight = 100', [50, 100]),
])
def test_flag_ramp(body: str, weights: list[int]) -> None:
    plan = build_plan(make_spec(f'kind = "flag"\nflag = "new-checkout"\n{body}'))
    assert [s.weight for s in plan.steps] == weights
    assert plan.labels()[0] == f"new-checkout {weights[0]}%"


def test_every_plan_ends_with_full_traffic_and_clear_rollback_targets() -> None:
    for kind, body in STRATEGIES.items():
        plan = build_plan(make_spec(body, replicas=2))
        assert plan.weight_at(len(plan.steps) - 1) == 100, kind
        assert dict(plan.full) == {"v2": 2, "v1": 0}
        assert dict(plan.rollback) == {"v1": 2, "v2": 0}
