"""The fleet's table draws again only the cell that changed (a count, never a time)."""

from __future__ import annotations

import asyncio

from textual.app import App, ComposeResult

from tui.fleet.table import FleetTable


class _One(App[None]):
    def compose(self) -> ComposeResult:
        yield FleetTable(id="t", cursor_type="row", zebra_stripes=True)


async def _settled(pilot, table: FleetTable) -> int:
    """Pause until the table stopped drawing (bounded): the count, once two looks agree."""
    last = -1
    for _ in range(100):
        await pilot.pause(0.1)
        if table.cells_drawn == last and last > 0:
            return last
        last = table.cells_drawn
    raise AssertionError("the table never settled")


async def _changed(pilot, table: FleetTable, key: str, gate: str) -> int:
    """Change one cell, wait until it is drawn and the table settled again: the count."""
    before = await _settled(pilot, table)
    table.update_cell(key, "gate", gate)
    for _ in range(100):
        await pilot.pause(0.1)
        if table.cells_drawn > before:
            break
    return await _settled(pilot, table)


def test_changing_one_cell_draws_that_cell_alone() -> None:
    async def scenario() -> tuple[int, int, int]:
        app = _One()
        async with app.run_test(size=(80, 24)) as pilot:
            table = app.query_one(FleetTable)
            for name in ("release", "phase", "gate"):
                table.add_column(name, width=12, key=name)
            for i in range(15):
                table.add_row(f"svc{i:02d}", "paused", "err 1 %", key=f"svc{i:02d}")
            await _changed(pilot, table, "svc03", "err 3 %")  # the table's own late resizing
            first = table.cells_drawn
            after_one = await _changed(pilot, table, "svc05", "err 2 %")
            table.add_row("svc15", "paused", "err 1 %", key="svc15")  # the structure changed
            after_row = await _settled(pilot, table)
        return first, after_one, after_row

    first, after_one, after_row = asyncio.run(scenario())
    assert first >= 45  # 15 rows × 3 columns drawn once (plus the header)
    assert after_one - first == 1  # one cell changed: one cell drawn, not the 45 others
    assert after_row - after_one >= 45  # a new row redraws the table as before
