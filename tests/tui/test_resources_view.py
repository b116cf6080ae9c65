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


def test_a_terminal_made_small_drops_the_resource_lines_and_their_rows() -> None:
    """160×48 → 80×24 while running: the resource lines go, and so do the rows they took (the
    table is as tall as what it shows: no blank lines between the versions and the gates)."""
    async def scenario() -> None:
        world = World()
        await world.run_for(3)
        world.platform.usage = {"v1": (0.12, 64 * MIB), "v2": (0.3, 200 * MIB)}
        await world.driver.tick()
        app = ReleaseApp(world.driver, read_only=False, wallboard=False, ticking=False)
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause(0.2)
            assert "cpu" in _text(app)
            await pilot.resize_terminal(80, 24)
            table = app.screen.query_one(VersionsTable)
            for _ in range(200):  # bounded: the layout comes with the next screen update
                lines = _text(app).splitlines()
                if "cpu" not in _text(app) and all(line.strip() for line in lines):
                    break
                await pilot.pause(0.01)
            lines = _text(app).splitlines()
            assert "cpu" not in "\n".join(lines)
            assert all(line.strip() for line in lines), lines  # no blank rows left behind
            assert table.size.height == 3  # the header and two versions

    asyncio.run(scenario())
