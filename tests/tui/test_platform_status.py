"""The platform's own status line (Argo Rollouts' phase/step/analysis, Kubernetes' rollout
status words) reaches the operator's screen: adapter → snapshot → State → the rollout bar."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from support import World
from textual.pilot import Pilot

from strategies.model import PlatformSnapshot
from tests.doubles import MemoryPlatform
from tui.app import ReleaseApp
from tui.app.widgets import RolloutBar

ARGO = "Progressing · step 1/4 · setWeight 10 · analysis Running"


class ArgoLikePlatform(MemoryPlatform):
    """The in-memory platform, reporting a status line as the Argo lever does."""

    kind = "kubernetes"

    def __init__(self) -> None:
        super().__init__()
        self.status = ARGO

    async def snapshot(self, versions: Sequence[str], now: float) -> PlatformSnapshot:
        snap = await super().snapshot(versions, now)
        return PlatformSnapshot(at=snap.at, versions=snap.versions, status=self.status)


async def until(pilot: Pilot, check, *, seconds: float = 15.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if check():
            return True
        await pilot.pause(0.01)
    return check()


def bar_text(app: ReleaseApp) -> str:
    return str(app.screen.query_one(RolloutBar).render())


def test_the_platform_status_line_shows_under_the_rollout() -> None:
    async def scenario() -> None:
        world = World()
        platform = ArgoLikePlatform()
        world.driver.platform = platform
        await world.run_for(2)
        assert world.driver.state.platform_status == ARGO
        app = ReleaseApp(world.driver, read_only=False, wallboard=False, refresh=0.05,
                         ticking=False)
        async with app.run_test(size=(160, 48)) as pilot:
            assert await until(pilot, lambda: ARGO in bar_text(app)), bar_text(app)
            platform.status = "Paused · step 2/4 · waiting for promote"
            await world.driver.tick()
            assert await until(pilot, lambda: "Paused · step 2/4" in bar_text(app)), bar_text(app)
            assert ARGO not in bar_text(app)

    asyncio.run(scenario())


def test_the_status_line_fits_80_columns() -> None:
    async def scenario() -> None:
        world = World()
        world.driver.platform = ArgoLikePlatform()
        await world.run_for(2)
        app = ReleaseApp(world.driver, read_only=False, wallboard=False, refresh=0.05,
                         ticking=False)
        async with app.run_test(size=(80, 24)) as pilot:
            assert await until(pilot, lambda: "Progressing · step 1/4" in bar_text(app))
            text = bar_text(app)
            steps_line = text.splitlines()[1]
            assert "local: Progressing · step 1/4" in steps_line  # the spec names the platform
            assert len(steps_line) <= 80 and (ARGO in steps_line or steps_line.endswith("…"))

    asyncio.run(scenario())
