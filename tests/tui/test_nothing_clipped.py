"""Nothing on the gates panel or under the rollout bar is cut: at 80×24 and at 160×48 every
gate's name, evidence, bound, test and verdict is on screen whole (the panel narrows as k9s does
instead of an ellipsis), and the evidence a rollback names wraps rather than lose its end."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from support import SPEC, World, make_spec
from test_app_operator import SIZES, app_on, text_of

from strategies.model import Viewing, ViewMode
from tui.app.facts import cause
from tui.app.widgets import GatesPanel, RolloutBar, StatusBar
from tui.app.widgets.events import EventLines, EventLog, describe
from tui.app.widgets.gates import STATUS_MARK, bound, estimate, failed_with

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


def test_the_rollback_cause_wraps_instead_of_losing_its_end() -> None:
    async def scenario() -> None:
        only_errors_fail = LONG_NAMES.replace("max = 0.5\n", "max = 5.0\n").replace(
            "max = 0.3\n", "max = 5.0\n").replace('name = "errors"', 'name = "error-rate-of-checkout"')
        world = World(spec=make_spec(only_errors_fail))
        await world.run_for(4)
        await world.fault()
        for _ in range(60):  # until the gates have rolled it back (bounded)
            if world.driver.state.rollout.phase.terminal:
                break
            await world.run_for(1)
        assert world.driver.state.rollout.phase.terminal
        app = app_on(world)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            bar = text_of(app.screen.query_one(RolloutBar))
            assert "…" not in bar
            details = cause(world.driver.state).details
            assert details and any(len(detail) > 76 for detail in details)  # longer than a line
            flat = " ".join(bar.split())
            for detail in details:
                assert " ".join(detail.split()) in flat, (detail, bar)

    asyncio.run(scenario())


def test_a_failed_gate_keeps_its_figure_in_the_unit_of_its_bound() -> None:
    async def scenario() -> None:
        world = World()
        await world.run_for(4)
        await world.fault()
        await world.run_for(8)
        by_name = {gate.name: gate for gate in world.driver.state.gates}
        errors, p99 = by_name["errors"], by_name["p99"]
        assert errors.test == "sequential" and p99.test != "sequential"
        assert failed_with(errors, errors.evidence()) == estimate(errors)
        assert "[" in failed_with(errors, errors.evidence())  # the interval, not a bare value
        assert failed_with(p99, p99.evidence()) == "950ms"

    asyncio.run(scenario())


@pytest.mark.parametrize("size", SIZES)
def test_every_event_line_is_whole_at_the_logs_own_width(size: tuple[int, int]) -> None:
    """RichLog wraps at 78 columns unless told otherwise: in a side panel narrower than that,
    every long event lost its end ("share slowe" for "share slower"). Lines now wrap at the
    log's width, and again when the terminal is resized."""

    async def scenario() -> None:
        world = World(spec=make_spec(LONG_NAMES))
        await world.run_for(6)
        app = app_on(world)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            app.render_state(force=True)
            await pilot.pause()
            _assert_events_whole(app.screen.query_one(EventLog), world)
            await pilot.resize_terminal(size[0] - 17, size[1])
            await pilot.pause()
            await pilot.pause()
            _assert_events_whole(app.screen.query_one(EventLog), world)

    asyncio.run(scenario())


def _assert_events_whole(log_panel: EventLog, world: World) -> None:
    lines = log_panel.query_one(EventLines)
    width = lines.scrollable_content_region.width
    assert width > 20
    assert all(strip.cell_length <= width for strip in lines.lines), width
    shown = " ".join(" ".join(strip.text.split()) for strip in lines.lines)
    events = world.driver.state.events
    assert any(len(describe(event)) > width for event in events)  # some must wrap
    for event in events:
        assert " ".join(describe(event).split()) in shown, describe(event)


@pytest.mark.parametrize("size", SIZES)
def test_the_top_bar_keeps_the_metrics_age_whole_when_following(size: tuple[int, int]) -> None:
    """A follower's bar names the driver: at 80 columns that pushed "0s ago" off the edge. The
    bar now gives up the platform's name, then the word "metrics", then the driver's host."""

    async def scenario() -> None:
        world = World(spec=make_spec(LONG_NAMES))
        await world.run_for(4)
        state = replace(world.driver.state, viewing=Viewing(
            ViewMode.FOLLOW, driver="alice@build-runner-17.example.internal/424242",
            url="http://127.0.0.1:9"))
        app = app_on(world)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            bar = app.screen.query_one(StatusBar)
            bar.show(state)
            await pilot.pause()
            shown = text_of(bar)
            assert "…" not in shown, shown
            assert "FOLLOWING alice" in shown and " ago" in shown, shown
            if size[0] >= 160:  # room for every word
                assert "alice@build-runner-17.example.internal/424242" in shown
                assert "metrics " in shown and world.driver.state.platform_kind in shown

    asyncio.run(scenario())


@pytest.mark.parametrize("size", SIZES)
def test_long_step_labels_give_up_words_before_the_timing_is_cut(size: tuple[int, int]) -> None:
    """A rolling update of 4 replicas names its steps "batch 2/4: 2 of 4 new": at 80 columns
    the line lost its timing to an ellipsis. Labels now shorten before anything is cut."""
    rolling = SPEC.replace("replicas = 2", "replicas = 4").replace(
        'kind = "canary"\nsteps = [10, 25, 50, 100]', 'kind = "rolling"\nmax_surge = 1')

    async def scenario() -> None:
        world = World(spec=make_spec(rolling))
        await world.run_for(4)
        app = app_on(world)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            app.render_state(force=True)
            await pilot.pause()
            steps = text_of(app.screen.query_one(RolloutBar)).splitlines()[1]
            assert "…" not in steps, steps
            assert "elapsed" in steps and "to go" in steps, steps
            assert "▶ batch 1/4" in steps, steps
            if size[0] >= 160:
                assert "batch 4/4: 4 of 4 new" in steps, steps

    asyncio.run(scenario())
