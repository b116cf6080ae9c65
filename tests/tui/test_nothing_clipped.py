"""Nothing on the gates panel is cut: at 80×24 and at 160×48 every gate's name, evidence, bound,
test and verdict is on screen whole (the panel narrows as k9s does instead of an ellipsis)."""

from __future__ import annotations

import asyncio

import pytest
from support import SPEC, World, make_spec
from test_app_operator import SIZES, app_on, text_of

from tui.app.widgets import GatesPanel
from tui.app.widgets.gates import STATUS_MARK, bound, estimate

LONG_NAMES = SPEC.replace('name = "p95-warn"', 'name = "latency-p95-vs-baseline-warning"').replace(
    'name = "p99"', 'name = "latency-p99-under-half-a-second"')


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("faulted", [False, True])
def test_every_gate_cell_is_whole(size: tuple[int, int], faulted: bool) -> None:
    async def scenario() -> None:
        world = World(spec=make_spec(LONG_NAMES))
        await world.run_for(4)
        if faulted:
            await world.fault()
            await world.run_for(3)
        app = app_on(world)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            app.render_state(force=True)
            await pilot.pause()
            shown = text_of(app.screen.query_one(GatesPanel))
            assert "…" not in shown
            gates = world.driver.state.gates
            assert len(gates) == 3
            for gate in gates:
                name, row = _name_and_row(gate.name, shown.splitlines())
                assert name == gate.name, shown
                for cell in (estimate(gate), bound(gate), STATUS_MARK[gate.status]):
                    assert cell in row, (cell, row)

    asyncio.run(scenario())


def _name_and_row(name: str, lines: list[str]) -> tuple[str, str]:
    """The gate's name as shown (a wrapped name continues alone on the next lines) and its row."""
    for i, line in enumerate(lines):
        first = (line.split() or [""])[0]
        if len(first) < min(len(name), 12) or not name.startswith(first):
            continue
        shown = first
        for more in lines[i + 1:]:
            words = more.split()
            if len(words) != 1 or not name.startswith(shown + words[0]):
                break
            shown += words[0]
        return shown, line
    return "", ""
