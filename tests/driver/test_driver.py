"""The tick loop against small in-memory adapters: timeouts, failures and ordering."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace

from strategies.engine import Engine
from strategies.journal import MemoryJournal
from strategies.model import Command, CommandKind, MetricsSnapshot, Phase
from tests.doubles import Clock, MemoryPlatform, MemoryRouter, ScriptedSource, healthy
from tui.demo_specs import demo_spec
from tui.driver import Driver


class FlakyRouter(MemoryRouter):
    """A router whose admin API refuses the first `failures` weight changes."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__()
        self.failures = failures

    async def set_weights(self, weights: Mapping[str, int]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("router admin API refused the connection")
        await super().set_weights(weights)


class HangingSource(ScriptedSource):
    """Healthy numbers, or a source that hangs past the driver's timeout when `hang` is set."""

    def __init__(self) -> None:
        super().__init__(healthy)
        self.hang = False

    async def collect(self, versions, platform, now) -> MetricsSnapshot:
        if self.hang:
            await asyncio.sleep(60)
        return await super().collect(versions, platform, now)


def _driver(router: FlakyRouter, timeout: float = 2.0):
    spec = demo_spec("canary")
    spec = replace(spec, metrics=replace(spec.metrics, timeout=timeout))
    clock = Clock()
    journal = MemoryJournal()
    engine = Engine(spec, journal=journal)
    source = HangingSource()
    driver = Driver(spec, engine, MemoryPlatform(), router, source, clock=clock)
    return driver, clock, source, journal


def test_failed_lever_is_retried_and_rollout_waits_for_it() -> None:
    router = FlakyRouter(failures=2)
    driver, clock, _, journal = _driver(router)

    async def scenario() -> None:
        for _ in range(6):
            await driver.tick()
            clock.now += 1.0

    asyncio.run(scenario())
    kinds = [r["kind"] for r in journal.records]
    assert kinds.count("action_failed") == 2
    assert router.current == {"v1": 90.0, "v2": 10.0}
    assert driver.state.rollout.pending == ()
    # the failures were journaled before the success, and the step never advanced meanwhile
    assert kinds.index("action_failed") < kinds.index("action_done", kinds.index("action_failed"))
    assert driver.state.rollout.step == 0


def test_hanging_metrics_go_stale_and_hold_the_rollout() -> None:
    router = FlakyRouter()
    driver, clock, source, journal = _driver(router, timeout=0.05)

    async def scenario() -> None:
        await driver.tick()
        source.hang = True
        for _ in range(30):
            clock.now += 1.0
            await driver.tick()

    # each hung collection is cut off by the driver's timeout; the outer bound is a safety net
    asyncio.run(asyncio.wait_for(scenario(), timeout=60))
    state = driver.state
    assert state.stale
    assert state.metrics_error is not None and "timed out" in state.metrics_error
    assert state.rollout.phase is Phase.PROGRESSING
    assert state.rollout.step == 0  # 30 s past an 8 s hold, still held: stale never promotes
    assert [r["kind"] for r in journal.records].count("stale") == 1
    assert all(g.status.value == "unknown" for g in state.gates)


def test_operator_command_is_journaled_and_acted_on() -> None:
    router = FlakyRouter()
    driver, clock, _, journal = _driver(router)

    async def scenario() -> None:
        await driver.tick()
        clock.now += 1
        await driver.command(Command(CommandKind.PROMOTE))
        clock.now += 1
        await driver.command(Command(CommandKind.ROLLBACK))

    asyncio.run(scenario())
    kinds = [r["kind"] for r in journal.records if r["kind"] not in ("gate",)]
    assert kinds[kinds.index("step"):] == [
        "step", "action_done", "rolling_back", "action_done", "rolled_back", "action_done"]
    assert router.current == {"v1": 100.0, "v2": 0.0}
    assert driver.state.rollout.phase is Phase.ROLLED_BACK
    assert [e.event for e in driver.events][-3:] == ["action_done", "rolled_back", "action_done"]


def test_broken_listener_does_not_stop_the_loop() -> None:
    class Broken:
        def on_event(self, event):
            raise ValueError("boom")

        def on_state(self, state):
            raise ValueError("boom")

    driver, clock, _, _ = _driver(FlakyRouter())
    driver.add_listener(Broken())

    async def scenario() -> None:
        for _ in range(3):
            await driver.tick()
            clock.now += 1

    asyncio.run(scenario())
    assert driver.ticks == 3
    assert driver.state.rollout.phase is Phase.PROGRESSING
