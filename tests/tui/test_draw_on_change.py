"""The app renders only what changed (issue 18): a State that says what the last one said
redraws no panel, a change redraws the panel that shows it, and a panel that grows is laid out
again (nothing cut). Redraws are counted, never timed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from support import World, make_scene
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget

from strategies.model import Event, Phase
from tui.app import ReleaseApp
from tui.app.widgets import RolloutBar, StatusBar
from tui.app.widgets.charts import ChartRow
from tui.app.widgets.drawn import Drawn
from tui.app.widgets.events import EventLines
from tui.app.widgets.gates import GatesPanel, GatesStrip
from tui.app.widgets.lines import LineCharts, LinePlot

SIZES = [(80, 24), (160, 48)]


def draws(app: ReleaseApp) -> dict[str, int]:
    """Redraws so far of every view that counts them, by id."""
    screen = app.screen
    counts = {f"{type(w).__name__}#{w.id}": w.draws for w in screen.query(Drawn)}
    counts |= {f"ChartRow#{w.id}": w.draws for w in screen.query(ChartRow)}
    counts |= {f"LineCharts#{w.id}": w.draws for w in screen.query(LineCharts)}
    return counts


def republish(world: World, **changes: object) -> None:
    """The driver publishes a new State object: the same facts, except `changes`."""
    world.driver.state = replace(world.driver.state, **changes)  # type: ignore[arg-type]


async def settle(pilot: Pilot) -> None:
    await pilot.pause()
    await pilot.pause()


@contextlib.asynccontextmanager
async def dashboard(scene: str, size: tuple[int, int], *, wallboard: bool = False,
                    ) -> AsyncIterator[tuple[World, ReleaseApp, Pilot]]:
    """The operator's screen (or the wallboard) over a scene, mounted and settled."""
    world = await make_scene(scene)
    app = ReleaseApp(world.driver, read_only=wallboard, wallboard=wallboard, ticking=False)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        yield world, app, pilot


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("wallboard", [False, True])
def test_a_state_that_says_the_same_redraws_nothing(size: tuple[int, int], wallboard: bool) -> None:
    async def scenario() -> None:
        async with dashboard("paused", size, wallboard=wallboard) as (world, app, pilot):
            before = draws(app)
            assert before["StatusBar#status"] >= 1 and before["RolloutBar#rollout"] >= 1, before
            for _ in range(3):
                republish(world)
                app.render_state()
                await settle(pilot)
            assert app.shown is world.driver.state  # each new State was taken in
            assert draws(app) == before

    asyncio.run(scenario())


@pytest.mark.parametrize("size", SIZES)
def test_a_change_redraws_the_panel_that_shows_it_and_no_other(size: tuple[int, int]) -> None:
    async def scenario() -> None:
        async with dashboard("paused", size) as (world, app, pilot):
            bar = app.screen.query_one(StatusBar)
            assert "✖" not in "".join(seg.text for seg in bar.render_line(0))
            before = draws(app)
            republish(world, platform_error="platform local: connection refused")
            app.render_state()
            await settle(pilot)
            after = draws(app)
            changed = {name for name in after if after[name] != before[name]}
            assert changed == {"StatusBar#status"}, changed
            assert "local ✖ platform" in "".join(seg.text for seg in bar.render_line(0))

    asyncio.run(scenario())


def test_a_bar_that_grows_is_laid_out_again() -> None:
    """Running → rolled back: the rollout bar gains the cause and its evidence; each line is on
    screen (a redraw without a layout pass would keep its old height and cut them)."""
    async def scenario() -> None:
        world = World()
        await world.run_for(35)
        app = ReleaseApp(world.driver, read_only=False, wallboard=False, ticking=False)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            bar = app.screen.query_one(RolloutBar)
            height = bar.size.height
            await world.fault()
            for _ in range(30):  # bounded: the critical gates need 5s of failure
                await world.run_for(1)
                if world.engine.state.phase is Phase.ROLLED_BACK:
                    break
            assert world.engine.state.phase is Phase.ROLLED_BACK
            app.render_state()
            for _ in range(500):  # bounded: the layout pass comes with the next screen update
                if bar.size.height > height:
                    break
                await pilot.pause(0.01)
            shown = "\n".join("".join(seg.text for seg in bar.render_line(y))
                              for y in range(bar.size.height))
            assert bar.size.height > height
            assert "critical gate" in shown and "failed" in shown, shown
            assert "p99: 950ms > max 500ms (baseline" in shown, shown  # the evidence line, whole

    asyncio.run(scenario())


def count_layouts(app: ReleaseApp) -> list[int]:
    """Count the screen's layout passes from now on (Textual's private hook, pinned < 8.3)."""
    screen = app.screen
    passes = [0]
    layout = screen._refresh_layout

    def counted(*args: object, **kwargs: object) -> None:
        passes[0] += 1
        layout(*args, **kwargs)  # type: ignore[arg-type]

    screen._refresh_layout = counted  # type: ignore[method-assign]
    return passes


@pytest.mark.parametrize("size", SIZES)
def test_new_events_scroll_the_log_without_laying_out_the_screen(size: tuple[int, int]) -> None:
    """Each event written used to lay out the whole screen (the log's scroll range is a layout
    reactive in Textual); now only the log scrolls, and it still follows the newest line."""
    async def scenario() -> None:
        async with dashboard("paused", size) as (world, app, pilot):
            log = app.screen.query_one(EventLines)
            passes = count_layouts(app)
            state = world.driver.state
            lines_before = len(log.lines)
            for index in range(40):  # more than fit: the log must scroll to keep up
                event = Event(state.at + index, state.release, "note", {"message": f"line {index}"})
                republish(world, events=(*world.driver.state.events, event))
                app.render_state()
                await settle(pilot)
            assert len(log.lines) >= lines_before + 40
            assert log.max_scroll_y > 0 and log.scroll_y == log.max_scroll_y  # following
            assert log.vertical_scrollbar.window_virtual_size == log.virtual_size.height
            assert passes[0] == 0

    asyncio.run(scenario())


def test_the_footer_is_rebuilt_only_when_what_it_offers_changes() -> None:
    """Rebuilding the footer mounts its keys again and lays out the screen: it happens when a
    key becomes available or not, never on a State that offers the same keys."""
    async def scenario() -> None:
        async with dashboard("paused", (80, 24)) as (world, app, pilot):
            rebuilt = [0]
            refresh_bindings = app.refresh_bindings

            def counted() -> None:
                rebuilt[0] += 1
                refresh_bindings()

            app.refresh_bindings = counted  # type: ignore[method-assign]
            for _ in range(3):
                republish(world, at=world.driver.state.at + 1)
                app.render_state()
                await settle(pilot)
            assert rebuilt[0] == 0
            await pilot.press("space")  # resume
            for _ in range(500):  # bounded: the command runs on the driver
                app.render_state()
                if app.shown is not None and app.shown.rollout.phase is not Phase.PAUSED:
                    break
                await pilot.pause(0.01)
            await settle(pilot)
            assert app.shown is not None and app.shown.rollout.phase is not Phase.PAUSED
            assert rebuilt[0] == 1  # paused → running: resume gives way to pause

    asyncio.run(scenario())


def test_a_plot_repaints_only_the_lines_a_new_point_changed() -> None:
    """A new point moves a line or two of a plot; the box, the labels and the empty rows are
    not repainted (each repainted line costs the compositor a pass over it)."""
    async def scenario() -> None:
        async with dashboard("operate", (160, 48)) as (_world, app, _pilot):
            plot = app.screen.query_one("#line-error_rate", LinePlot)
            fig = plot.figure
            assert fig is not None and fig.lines
            before = plot.strips(plot.content_size)
            repainted: list[Region] = []
            refresh = plot.refresh

            def counted(*regions: Region, **kwargs: bool) -> LinePlot:
                repainted.extend(regions or [plot.size.region])
                return refresh(*regions, **kwargs)

            plot.refresh = counted  # type: ignore[method-assign]
            xs, ys, colour = fig.lines[-1]
            nudged = ys[-1] + fig.yticks[-1] * 0.1  # the last point a little higher
            plot.show(replace(fig, lines=(*fig.lines[:-1], (xs, (*ys[:-1], nudged), colour))))
            after = plot.strips(plot.content_size)
            changed = {y for y, (old, new) in enumerate(zip(before, after, strict=True)) if old != new}
            assert changed and len(changed) < len(after) // 2
            assert {region.y for region in repainted} == changed
            assert all(region.height == 1 for region in repainted)

    asyncio.run(scenario())


async def keeps_holding_room(world: World, app: ReleaseApp, pilot: Pilot, panel: Widget) -> None:
    """A reason comes (the panel grows), goes (it keeps its height: no layout pass), and the
    rollout ends (the room is given back)."""
    republish(world, holding=())
    app.render_state()
    await settle(pilot)
    short = panel.size.height
    republish(world, holding=("3 gates unknown: only 12 requests this step, need 20 " * 2,))
    app.render_state()
    for _ in range(500):  # bounded: the layout pass comes with the next update
        if panel.size.height > short:
            break
        await pilot.pause(0.01)
    tall = panel.size.height
    assert tall > short
    passes = count_layouts(app)
    republish(world, holding=())
    app.render_state()
    await settle(pilot)
    assert panel.size.height == tall and passes[0] == 0
    state = world.driver.state
    republish(world, rollout=replace(state.rollout, phase=Phase.SUCCEEDED, finished_at=state.at))
    app.render_state()
    for _ in range(500):  # bounded: ended, the room is given back
        if panel.size.height < tall:
            break
        await pilot.pause(0.01)
    assert panel.size.height < tall


def test_the_holding_line_keeps_its_height_while_the_rollout_runs() -> None:
    """A holding reason that comes and goes with each step would move every panel below the
    gates up and down (a layout pass of the whole screen each time): the panel keeps the most
    lines it needed until the rollout ends."""
    async def scenario() -> None:
        async with dashboard("operate", (80, 24)) as (world, app, pilot):
            await keeps_holding_room(world, app, pilot, app.screen.query_one(GatesPanel))

    asyncio.run(scenario())


def test_the_wallboard_keeps_the_holding_line_while_the_rollout_runs() -> None:
    """The wallboard's gate strip keeps the room of a reason that came and went (it moved the
    event log below it, a layout of the whole wall screen at each step), and gives it back
    when the rollout ends."""
    async def scenario() -> None:
        async with dashboard("operate", (160, 48), wallboard=True) as (world, app, pilot):
            await keeps_holding_room(world, app, pilot, app.screen.query_one(GatesStrip))

    asyncio.run(scenario())
