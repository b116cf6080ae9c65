"""A manual weight stays: after `set_weight`, resuming never lowers it; the plan continues at
the first step at or above it, and the resume says which."""

from __future__ import annotations

from strategies.engine import Engine
from strategies.model import CommandKind, Phase
from tests.strategies.brain_kit import T0, World, command, kinds, make_spec, run_until, tick

CANARY4 = 'kind = "canary"\nsteps = [10, 25, 50, 100]\nhold = "10s"\nscale_down_delay = "5s"'


def test_resume_after_a_manual_weight_keeps_it_and_skips_lower_steps():
    spec = make_spec(CANARY4)
    engine, world = Engine(spec), World.for_spec(spec)
    tick(engine, world, T0)  # step 1 at 10 %
    command(engine, world, CommandKind.SET_WEIGHT, T0 + 2, value=30)
    assert engine.state.phase is Phase.PAUSED and world.weight == 30
    resumed = command(engine, world, CommandKind.RESUME, T0 + 3)
    assert kinds(resumed) == ["resumed"] and world.weight == 30
    assert "the manual weight 30% stays until step 3/4 (50%)" in resumed[0].reason
    _, seen = run_until(engine, world, T0 + 4, until=("step",))
    step = next(d for d in seen if d.kind == "step")
    # step 2 (25 %) is skipped: entering it would lower the operator's 30 %
    assert (step.step, step.weight) == (2, 50) and world.weight == 50
    assert [a.value for a in world.applied if a.kind == "set_weight"] == [10, 30, 50]
    assert not engine.state.manual_weight


def test_promote_after_a_manual_weight_also_never_lowers_it():
    spec = make_spec(CANARY4)
    engine, world = Engine(spec), World.for_spec(spec)
    tick(engine, world, T0)
    command(engine, world, CommandKind.SET_WEIGHT, T0 + 2, value=60)
    promoted = command(engine, world, CommandKind.PROMOTE, T0 + 3)
    assert [(d.kind, d.step, d.weight) for d in promoted if d.kind == "step"] == [("step", 3, 100)]
    assert world.weight == 100
