"""Rings, dark launch and A/B end to end on the local stack: real services, real router, the
demo's users, the engine deciding. Counts come from the router and the load generator."""

from __future__ import annotations

import asyncio
import tomllib
from collections import Counter

from collectors.local.stack import LocalStack
from strategies.engine import Engine
from strategies.model import Phase
from strategies.spec import ReleaseSpec, parse_spec
from tui.demo_specs import demo_spec_text
from tui.driver import Driver
from tui.headless import summary
from tui.wiring import build_source


def spec_for(strategy: str, v2: str, strategy_override: str = "") -> ReleaseSpec:
    """The demo spec of `strategy` with v2's behaviour replaced (e.g. a fault from the start)."""
    text = demo_spec_text(strategy)
    text = "\n".join(line for line in text.splitlines() if not line.startswith("behaviour.v2"))
    text = text.replace("[metrics]", f"behaviour.v2 = {{ {v2} }}\n\n[metrics]", 1)
    data = tomllib.loads(text)
    if strategy_override:
        data["strategy"].update(tomllib.loads(strategy_override))
    return parse_spec(data, f"<test {strategy}>")


async def release(spec: ReleaseSpec, limit: float = 150.0) -> tuple[Driver, LocalStack, Counter, float]:
    """Run the release to its end on a fresh local stack; returns what the router and users saw."""
    async with LocalStack(spec, rate=60) as stack:
        driver = Driver(spec, Engine(spec), stack.platform, stack.router, build_source(spec))
        try:
            await driver.run(timeout=limit)
            assert stack.load is not None
            await stack.load.stop()
            by_cohort = Counter(await stack.router.routed_by_cohort())
            mirrored = sum((await stack.router.mirrored()).values())
        finally:
            await driver.close()
        return driver, stack, by_cohort, mirrored


def test_faulted_candidate_caught_in_its_first_ring_and_nobody_else_reached_it() -> None:
    # A hold far longer than the gate needs: on a loaded machine the demo's 8 s could end the
    # staff ring before its few requests were counted, and the release would move on.
    spec = spec_for("ring", "latency_ms = 18, error_ratio = 0.5", 'hold = "60s"')

    async def scenario() -> None:
        driver, stack, by_cohort, mirrored = await release(spec)
        state = driver.engine.state
        assert state.phase is Phase.ROLLED_BACK and state.step == 0, state.reason
        assert state.cause[0]["gate"] == "error-rate"
        assert state.cohorts == 0 and state.weight == 0
        # the candidate served the staff ring, and no request from anyone else (the evidence
        # gate shows a 50% error share breaching 5% within a few requests, before min_requests)
        assert by_cohort[("v2", "staff")] > 0
        assert {c for (v, c) in by_cohort if v == "v2"} == {"staff"}
        assert by_cohort[("v1", "everyone")] > 0 and mirrored == 0
        stats = stack.load.stats
        assert stats.by_group[("", "v2")] == 0 and stats.by_group[("staff", "v2")] > 0

    asyncio.run(asyncio.wait_for(scenario(), 240))


def test_dark_launch_faults_never_reach_a_user_and_stop_the_release() -> None:
    spec = spec_for("dark", "latency_ms = 18, error_ratio = 0.5")

    async def scenario() -> None:
        driver, stack, by_cohort, mirrored = await release(spec)
        state = driver.engine.state
        assert state.phase is Phase.ROLLED_BACK and state.step == 0, state.reason
        assert state.cause[0]["gate"] == "error-rate"
        # every client answer came from the baseline, while v2 did the shadow work
        stats = stack.load.stats
        assert set(stats.by_version) == {"v1"} and stats.errors_by_version["v2"] == 0
        assert {v for (v, _) in by_cohort} == {"v1"}
        assert mirrored >= 20

    asyncio.run(asyncio.wait_for(scenario(), 240))


def test_ab_names_the_better_converting_version_and_promotes_it() -> None:
    """B converts 25% against A's 10%: named the winner and promoted; the headless line says so."""
    spec = spec_for("ab", "latency_ms = 18, error_ratio = 0.002, conversion = 0.25")

    async def scenario() -> None:
        driver, _, by_cohort, _ = await release(spec)
        line = summary(driver, driver.state, "promoted", 1.0, None)
        assert "experiment: v2 wins over v1" in line
        state = driver.engine.state
        assert state.phase is Phase.SUCCEEDED, state.reason
        readout = driver.engine.readout
        assert readout is not None and readout.winner == "v2"
        assert readout.low is not None and readout.low > 0
        # sticky: every user saw one version during the experiment (then everyone got v2)
        assert by_cohort[("v2", "everyone")] > 0 and by_cohort[("v1", "everyone")] > 0

    asyncio.run(asyncio.wait_for(scenario(), 240))


def test_ab_with_equal_versions_names_no_winner_and_keeps_a() -> None:
    spec = spec_for("ab", "latency_ms = 18, error_ratio = 0.002, conversion = 0.10",
                    'duration = "15s"')

    async def scenario() -> None:
        driver, _, _, _ = await release(spec)
        state = driver.engine.state
        assert state.phase is Phase.ROLLED_BACK, state.reason
        assert state.cause[0]["actor"] == "experiment" and state.cause[0]["winner"] is None
        assert driver.engine.readout is not None and driver.engine.readout.winner is None
        assert state.weight == 0

    asyncio.run(asyncio.wait_for(scenario(), 240))
