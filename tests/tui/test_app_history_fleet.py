"""`:history` and `:fleet` inside the operator's app: the journals' runs and figures, the list of
the releases beside this one, a drill-down into another release and back (Pilot), and the new
views as snapshots at 80×24 and 160×48 (whole at 80×24: the history table folds to two lines
per attempt instead of cutting columns)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from support import World

from strategies.journal import JournalWriter
from tests.history.test_history import DAY, _faulty_run, _healthy_run
from tests.strategies.brain_kit import T0
from tui.app import ReleaseApp
from tui.app.components import RunInfo
from tui.app.components.history import HistoryScreen
from tui.app.screens.release_view import ReleaseViewScreen
from tui.fleet.app import FleetView

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "canary.toml"
SIZES = [(80, 24), (160, 48)]


def fleet_folder(root: Path) -> Path:
    """Two releases in one folder: checkout (a promoted and a rolled-back run in its journal)
    and search (one promoted run)."""
    text = EXAMPLE.read_text()
    (root / "checkout.toml").write_text(text)
    (root / "search.toml").write_text(text.replace('service = "checkout"', 'service = "search"'))
    writer = JournalWriter(root / ".checkout.releasedeck.journal")
    _healthy_run(writer, T0)
    _faulty_run(writer, T0 + DAY)
    writer.close()
    return root


def listed(app: ReleaseApp, count: int) -> bool:
    """The `:fleet` list is up (mounted) and shows `count` releases."""
    tables = app.screen.query("DataTable") if isinstance(app.screen, FleetView) else []
    return bool(tables) and tables.first().row_count == count


def app_on(root: Path) -> tuple[ReleaseApp, World]:
    world = World()
    info = RunInfo(spec_origin=str(root / "checkout.toml"),
                   journal=str(root / ".checkout.releasedeck.journal"))
    app = ReleaseApp(world.driver, read_only=False, wallboard=False, ticking=False, info=info)
    app.fleet_clock = lambda: T0 + 2 * DAY  # "since" in the list, the same on every run
    return app, world


async def until(pilot, check: Callable[[], bool], what: str, seconds: float = 20.0) -> None:
    """Bounded wait on a condition (a loaded machine may take a while; no timing is asserted)."""
    for _ in range(int(seconds / 0.1)):
        if check():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"not seen within {seconds}s: {what}")


async def palette(pilot, name: str) -> None:
    """`:` then the view's name then Enter, as a person types it."""
    await pilot.press("colon")
    await pilot.pause(0.2)
    for char in name:
        await pilot.press(char)

    def offered() -> bool:  # the palette mounts and searches asynchronously: look, never assume
        lists = pilot.app.screen.query("CommandList")
        return bool(lists) and lists.first().option_count > 0 and \
            name.lower() in str(lists.first().get_option_at_index(0).prompt).lower()

    await until(pilot, offered, f"{name} offered by the palette")
    await pilot.press("enter")


def test_history_view_shows_the_journal_s_runs_and_figures_and_esc_goes_back(tmp_path: Path) -> None:
    app, _ = app_on(fleet_folder(tmp_path))

    async def scenario() -> str:
        async with app.run_test(size=(80, 24)) as pilot:
            await palette(pilot, "history")
            await until(pilot, lambda: isinstance(app.screen, HistoryScreen)
                        and app.screen.report is not None, "the history view, read")
            body = str(app.screen.query_one("#history-body").render())
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is app.main, "back on the dashboard")
            return body

    body = asyncio.run(scenario())
    assert "promoted" in body and "rolled back" in body
    assert "cause errors 0.5 vs 0.05" in body  # the deciding gate with its evidence
    assert "by hand paused (operator" in body  # who acted and when
    assert "change failure rate 50%" in body and "time to restore (median)" in body
    assert "releases per day" in body


def test_fleet_lists_the_specs_beside_it_opens_another_read_only_and_comes_back(
        tmp_path: Path) -> None:
    app, world = app_on(fleet_folder(tmp_path))
    before = len(world.journal.records)

    async def scenario() -> list[str]:
        seen = []
        async with app.run_test(size=(80, 24)) as pilot:
            await palette(pilot, "fleet")
            await until(pilot, lambda: listed(app, 2), "two releases listed")
            fleet = app.screen
            table = fleet.query_one("DataTable")
            names = [str(table.get_row_at(i)[0]) for i in range(2)]
            table.move_cursor(row=names.index("search"))
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, ReleaseViewScreen)
                        and app.screen.state is not None, "search opened")
            seen.append(app.screen.state.release)
            await pilot.press("p", "r")  # the app's operator keys do not reach through
            await pilot.pause(0.2)
            seen.append(type(app.screen).__name__)
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is fleet, "back on the list")
            table.move_cursor(row=names.index("checkout"))
            await pilot.press("enter")  # its own release: back to the dashboard, where keys act
            await until(pilot, lambda: app.screen is app.main, "back on the dashboard")
            await palette(pilot, "fleet")
            await until(pilot, lambda: isinstance(app.screen, FleetView), "the list again")
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is app.main, "Esc from the list")
            seen.append("main")
        return seen

    assert asyncio.run(scenario()) == ["search", "ReleaseViewScreen", "main"]
    assert len(world.journal.records) == before  # nothing was sent to the app's own release


def test_no_spec_file_means_no_fleet_and_the_app_says_so() -> None:
    world = World()
    app = ReleaseApp(world.driver, read_only=False, wallboard=False, ticking=False,
                     info=RunInfo(spec_origin="built-in demo spec (canary)"))

    async def scenario() -> list[str]:
        async with app.run_test(size=(80, 24)) as pilot:
            app.action_fleet()
            app.action_history()
            await pilot.pause(0.2)
            return list(app.said)

    said = asyncio.run(scenario())
    assert any("no fleet to list" in s for s in said)
    assert any("no journal" in s for s in said)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("view", ["history", "fleet"])
def test_views_snapshots(snap_compare, tmp_path_factory, view: str, size: tuple[int, int]) -> None:
    root = fleet_folder(tmp_path_factory.mktemp("fleet"))
    app, _ = app_on(root)

    async def open_view(pilot) -> None:
        getattr(app, f"action_{view}")()
        if view == "history":
            await until(pilot, lambda: isinstance(app.screen, HistoryScreen)
                        and app.screen.report is not None, "history read")
        else:
            await until(pilot, lambda: listed(app, 2), "list filled")
            table = app.screen.query_one("DataTable")
            # the table sizes its columns on idle, after the rows arrive: wait for that too
            await until(pilot, lambda: table.ordered_columns[0].content_width >= len("checkout"),
                        "columns sized to their rows")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=size, run_before=open_view)


def test_an_observer_s_history_reads_the_journal_it_was_given_not_the_spec_s(tmp_path: Path) -> None:
    """`watch --read-only --journal F` with nobody driving observes and writes no journal; its
    `:history` read the spec's own journal (another record) instead of F."""
    root = fleet_folder(tmp_path)  # the spec's own journal: a promoted and a rolled-back run
    other = tmp_path / "elsewhere.journal"
    writer = JournalWriter(other)
    _healthy_run(writer, T0 + 3 * DAY)
    writer.close()
    world = World()
    info = RunInfo(spec_origin=str(root / "checkout.toml"), journal="", read_journal=str(other))
    app = ReleaseApp(world.driver, read_only=True, wallboard=False, ticking=False, info=info)

    async def scenario() -> str:
        async with app.run_test(size=(80, 24)) as pilot:
            app.action_history()
            await until(pilot, lambda: isinstance(app.screen, HistoryScreen)
                        and app.screen.report is not None, "the history view, read")
            return str(app.screen.query_one("#history-body").render())

    body = asyncio.run(scenario())
    assert "1 attempt, 1 promoted, 0 rolled back" in body, body
