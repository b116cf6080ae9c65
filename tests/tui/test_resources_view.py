"""Resources per version on the operator's screen: lines under the versions table, shown once
the platform measures them and the screen has the rows for them."""

from __future__ import annotations

import asyncio

from support import World

from tui.app import ReleaseApp
from tui.app.widgets import VersionsTable

MIB = 1024 ** 2


def _text(app: ReleaseApp) -> str:
    table = app.screen.query_one(VersionsTable)
    return "\n".join(line.text for line in table.render_lines(table.region.reset_offset))


def test_cpu_memory_restarts_columns_appear_once_the_platform_measures_them() -> None:
    async def scenario() -> tuple[str, str, str]:
        world = World()
        await world.run_for(3)
        plain = ReleaseApp(world.driver, read_only=False, wallboard=False, ticking=False)
        async with plain.run_test(size=(160, 48)) as pilot:
            await pilot.pause(0.2)
            unmeasured = _text(plain)
        world.platform.usage = {"v1": (0.12, 64 * MIB), "v2": (0.3, 200 * MIB)}
        await world.driver.tick()
        wide = ReleaseApp(world.driver, read_only=False, wallboard=False, ticking=False)
        async with wide.run_test(size=(160, 48)) as pilot:
            await pilot.pause(0.2)
            measured = _text(wide)
        narrow = ReleaseApp(world.driver, read_only=False, wallboard=False, ticking=False)
        async with narrow.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.2)
            small = _text(narrow)
        return unmeasured, measured, small

    unmeasured, measured, small = asyncio.run(scenario())
    assert "cpu" not in unmeasured and "mem" not in unmeasured
    lines = [" ".join(line.strip("│ ").split()) for line in measured.splitlines()]
    # two instances each: v1 24% of a core and 128 MiB, v2 60% and 400 MiB
    assert "v1 cpu 24% mem 128M restarts 0" in lines
    assert "v2 cpu 60% mem 400M restarts 0" in lines
    assert "cpu" not in small  # 24 rows: no room, the request figures keep theirs
