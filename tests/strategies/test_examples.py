"""Every example spec loads, and each strategy's local example runs to the end on healthy data
(the A/B example's B also converts better, so its experiment names B)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from strategies.engine import Engine
from strategies.experiment import SUCCESS_KEY, TRIALS_KEY
from strategies.model import Command, CommandKind, Phase, Snapshot
from strategies.spec import STRATEGY_KINDS, load_spec
from tests.strategies.brain_kit import T0, World

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ALL = sorted(EXAMPLES.rglob("*.toml"))


def test_there_are_examples() -> None:
    assert len(ALL) >= len(STRATEGY_KINDS)


@pytest.mark.parametrize("path", ALL, ids=[str(p.relative_to(EXAMPLES)) for p in ALL])
def test_example_loads(path: Path) -> None:
    spec = load_spec(path)  # raises SpecError with every problem if not
    assert spec.release.service and spec.path == str(path)


def _with_conversions(snapshot: Snapshot, ticks: float) -> Snapshot:
    """The A/B example's business metric: 100 visits a tick each; A converts 10 %, B 20 %."""
    assert snapshot.metrics is not None
    samples = {v: replace(s, custom={**s.custom, SUCCESS_KEY: ticks * (20.0 if v == "v2" else 10.0),
                                     TRIALS_KEY: ticks * 100.0})
               for v, s in snapshot.metrics.samples.items()}
    return replace(snapshot, metrics=replace(snapshot.metrics, samples=samples))


@pytest.mark.parametrize("kind", STRATEGY_KINDS)
def test_one_local_example_per_strategy_runs_to_promotion(kind: str) -> None:
    spec = load_spec(EXAMPLES / f"{kind}.toml")
    assert spec.strategy.kind == kind and spec.platform.kind == "local"
    engine, world, now = Engine(spec), World.for_spec(spec), T0
    # Enough traffic for every gate's min_requests in every tick.
    for _ in range(2000):
        if engine.state.phase is Phase.PAUSED:
            engine.command(Command(CommandKind.PROMOTE, actor="test"), now)
        engine.tick(_with_conversions(world.healthy(now, requests=1000), now - T0 + 1), now)
        world.settle(engine, now)
        if engine.finished:
            break
        now += 1
    assert engine.state.phase is Phase.SUCCEEDED and engine.finished
    assert world.weight == 100
    if spec.strategy.workload:  # a flag lever: one workload holds both variants, nothing scales
        assert not any(a.kind == "scale" for a in world.applied)
    else:
        assert world.replicas[spec.release.baseline] == 0
