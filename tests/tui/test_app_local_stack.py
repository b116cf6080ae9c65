"""The app over the REAL local demo stack: service processes, the built-in router, the load
generator and the scrape metric source. Pressing `p` moves real traffic to the next step."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual.pilot import Pilot

from collectors.local.stack import LocalStack
from collectors.scrape_source import ScrapeSource
from strategies.engine import Engine
from strategies.journal import MemoryJournal
from strategies.model import Phase
from tui.app import ReleaseApp
from tui.demo_specs import demo_spec
from tui.driver import Driver


async def until(pilot: Pilot, check: Callable[[], bool], *, seconds: float = 20.0) -> bool:
    """Poll between frames with a deadline (real processes: allow them time to start)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if check():
            return True
        await pilot.pause(0.05)
    return check()


def test_p_moves_real_traffic_over_the_local_stack() -> None:
    spec = demo_spec("canary")
    steps = [s for s in spec.strategy.steps if s.weight is not None]
    assert [s.weight for s in steps[:2]] == [10, 25]

    async def scenario() -> None:
        async with LocalStack(spec, rate=40, load_duration=60, sync_interval=0.2) as stack:
            journal = MemoryJournal()
            engine = Engine(spec, journal=journal)
            driver = Driver(spec, engine, stack.platform, stack.router,
                            ScrapeSource(spec.metrics, spec.release.service))
            app = ReleaseApp(driver, read_only=False, wallboard=False, refresh=0.1)
            try:
                async with app.run_test(size=(120, 36)) as pilot:
                    # the app's own tick worker starts the rollout at step 1 (10%)
                    assert await until(pilot, lambda: engine.state.phase is Phase.PROGRESSING
                                       and not engine.state.pending)
                    weights = await stack.router.weights()
                    assert weights["v2"] == 10.0
                    await pilot.press("p")
                    assert await until(pilot, lambda: engine.state.step == 1
                                       and not engine.state.pending)
                    weights = await stack.router.weights()
                    assert weights == {"v1": 75.0, "v2": 25.0}
                    assert any(r.get("kind") == "step" and r.get("actor") == "operator"
                               for r in journal.records)
            finally:
                await driver.source.close()  # the stack closes its own platform and router

    asyncio.run(scenario())
