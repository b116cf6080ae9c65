"""`releasedeck fleet`: a real driven release, an idle one with a journal, a broken spec.

The driven release is a real `watch --headless` process on the local stack: the fleet must show
the driver's own phase, step and weight (read from its state server, found through its lease),
and name who drives. The idle release shows its journal's state; the broken spec is a row that
says why. The list itself is checked with Pilot: filter, sort, Enter and `d`.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from argparse import Namespace
from pathlib import Path

import pytest

from strategies.engine import Engine
from strategies.fleet import Driver, FleetRow
from strategies.journal import JournalWriter
from strategies.model import CommandKind, Phase
from strategies.spec import load_spec
from tests.serve.test_lease_processes import SPEC, watch
from tests.strategies.brain_kit import World, command, tick
from tui.fleet.app import Choice, FleetApp
from tui.fleet.command import fleet_command
from tui.seat import lease_for


def _fleet(tmp_path: Path) -> tuple[Path, Path]:
    driven = tmp_path / "driven"
    idle = tmp_path / "idle"
    for folder, service in ((driven, "checkout"), (idle, "search")):
        folder.mkdir()
        (folder / "release.toml").write_text(
            SPEC.replace("HOLD", "30s").replace('service = "checkout"', f'service = "{service}"'))
    (tmp_path / "broken.toml").write_text("[release]\nservice = 3\n")
    spec = load_spec(idle / "release.toml")
    writer = JournalWriter(spec.journal_path())
    engine, world = Engine(spec, journal=writer, run="r1"), World.for_spec(spec)
    tick(engine, world, 1_700_000_000.0)
    command(engine, world, CommandKind.PAUSE, 1_700_000_005.0)
    writer.close()
    return driven / "release.toml", idle / "release.toml"


def _rows(tmp_path: Path) -> dict[str, dict]:
    out, err = io.StringIO(), io.StringIO()
    code = fleet_command(Namespace(paths=[str(tmp_path)], headless=True, wallboard=False, discover=[],
                                   refresh=1.0), out, err)
    assert code == 0, err.getvalue()
    return {row["release"]: row for row in map(json.loads, out.getvalue().splitlines())}


def test_headless_fleet_shows_the_driver_s_state_the_journal_s_state_and_why_not(tmp_path: Path) -> None:
    driven_spec, _ = _fleet(tmp_path)
    lease = lease_for(load_spec(driven_spec))
    proc = watch(driven_spec)
    try:
        deadline = time.monotonic() + 60
        while True:  # until the driver has taken its first step and judged its gates once
            holder = asyncio.run(lease.holder())
            if holder is not None and holder.attach:
                rows = _rows(tmp_path)
                if rows["checkout"]["phase"] == "progressing" and rows["checkout"]["worst_gate"]:
                    break
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the driver never started its first step"
            time.sleep(0.5)
        checkout = rows["checkout"]
        assert checkout["driver"] == "driven" and checkout["driven_by"] == holder.identity
        assert (checkout["step"], checkout["desired_weight"]) == ("1/3", 20)
        assert checkout["worst_gate"]["gate"] == "errors"

        search = rows["search"]
        assert (search["driver"], search["phase"], search["step"]) == ("idle", "paused", "1/3")
        assert search["driven_by"] == "" and search["worst_gate"] is None

        broken = rows["broken"]
        assert broken["driver"] == "unreadable" and "release.service" in broken["problem"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_no_specs_is_one_line_and_exit_2(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = fleet_command(Namespace(paths=[str(tmp_path)], headless=True, wallboard=False, discover=[],
                                   refresh=1.0), out, err)
    assert code == 2 and err.getvalue().count("\n") == 1 and "no release specs" in err.getvalue()


def test_a_path_that_does_not_exist_is_one_line_and_exit_2(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = fleet_command(Namespace(paths=[str(tmp_path), str(tmp_path / "typo")], headless=False,
                                   wallboard=False, discover=[], refresh=1.0), out, err)
    assert code == 2 and out.getvalue() == ""
    assert err.getvalue() == f"releasedeck fleet: {tmp_path / 'typo'}: no such file or folder\n"


def _row(release: str, phase: Phase, driver: Driver = Driver.IDLE) -> FleetRow:
    return FleetRow(release=release, environment="prod", strategy="canary", phase=phase,
                    step="1/3", desired_weight=10, actual_weight=None, worst_gate=None, since=None,
                    driver=driver, driven_by="ann@host/1" if driver is Driver.DRIVEN else "",
                    baseline="v1", candidate="v2", source=f"{release}.toml")


def text_of(widget) -> str:
    """What the widget shows on screen now (clipped text is what a person sees)."""
    return "\n".join("".join(seg.text for seg in widget.render_line(y))
                     for y in range(widget.size.height))


class _Fixed:
    """A gatherer that always answers the same rows (the list's keys are what is tested)."""

    def __init__(self, rows: list[FleetRow]):
        self.rows = rows
        self.members = rows

    async def refresh(self, now: float) -> list[FleetRow]:
        return self.rows

    async def close(self) -> None:
        return None


def test_list_filters_sorts_and_opens_or_drives_a_release() -> None:
    rows = [_row("search", Phase.SUCCEEDED), _row("checkout", Phase.PAUSED, Driver.DRIVEN),
            _row("cart", Phase.PROGRESSING)]

    async def scenario() -> list[object]:
        seen: list[object] = []
        for keys in (["enter"], ["slash", "c", "a", "r", "t", "enter", "enter"],
                     ["s", "j", "j", "d"], ["d"]):
            app = FleetApp(_Fixed(rows), refresh=60)  # type: ignore[arg-type]
            async with app.run_test(size=(80, 24)) as pilot:
                await pilot.pause(0.3)
                table = app.query_one("DataTable")
                seen.append([str(table.get_row_at(i)[0]) for i in range(table.row_count)])
                for key in keys:
                    await pilot.press(key)
                await pilot.pause(0.2)
                seen.append(app.return_value)
        return seen

    seen = asyncio.run(scenario())
    # attention order: paused before progressing before succeeded
    assert seen[0] == ["checkout", "cart", "search"]
    assert seen[1] == Choice(rows[1])  # Enter opens the top row
    assert seen[3] == Choice(rows[2])  # filtered to "cart", Enter opens it
    assert seen[5] == Choice(rows[0], drive=True)  # sorted by name: cart, checkout, search; d drives
    assert seen[7] is None  # d on a driven release only says who drives it


def test_a_platform_the_fleet_cannot_reach_says_what_is_wrong(tmp_path: Path, monkeypatch) -> None:
    """`--discover kubernetes` with no kubeconfig: the "who drives" column says "no kubeconfig"
    (not "unreadable"), the full error in the gate column."""
    from strategies.fleet import Driver
    from tui.fleet.app import cells
    from tui.fleet.gather import Discovery, FleetGatherer

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent.yaml"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    gatherer = FleetGatherer([], discover=(Discovery.parse("kubernetes=shop"),))
    rows = asyncio.run(gatherer.refresh(0.0))
    assert [(r.driver, r.driven_by) for r in rows] == [(Driver.UNREADABLE, "no kubeconfig")]
    shown = cells(rows[0], 0.0)
    assert shown[-1] == "no kubeconfig" and "cannot load kubeconfig" in shown[6]


def test_a_kubernetes_release_without_a_kubeconfig_is_a_row_that_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its Lease (who drives) cannot be read here: the list still opens, and the row says why."""
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    examples = Path(__file__).resolve().parents[2] / "examples" / "kubernetes"
    (tmp_path / "release.toml").write_text((examples / "replicas.toml").read_text())
    out, err = io.StringIO(), io.StringIO()
    code = fleet_command(Namespace(paths=[str(tmp_path)], headless=True, wallboard=False, discover=[],
                                   refresh=1.0), out, err)
    assert code == 0, err.getvalue()
    [row] = map(json.loads, out.getvalue().splitlines())
    assert (row["driver"], row["driven_by"]) == ("unreadable", "no kubeconfig")
    assert "cannot load kubeconfig" in row["problem"]
    # the spec is readable: the row still says which release it is
    assert (row["strategy"], row["baseline"], row["candidate"]) == ("canary", "v1", "v2")


def test_the_cursor_stays_on_its_release_when_the_order_changes_and_cells_are_whole() -> None:
    """A release that starts failing moves up the attention order: the cursor must stay on the
    release the operator was on (a rebuild used to put it on the top row, so Enter opened
    another release), and every cell is whole as soon as it is drawn (columns are sized with
    the rows, not later on idle)."""
    rows = [_row("search", Phase.SUCCEEDED), _row("checkout-payments", Phase.PROGRESSING),
            _row("cart", Phase.PAUSED)]

    async def scenario() -> tuple[str, str, list[str]]:
        gatherer = _Fixed(list(rows))
        app = FleetApp(gatherer, refresh=60)  # type: ignore[arg-type]
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.3)
            screen = app.screen
            table = app.query_one("DataTable")
            await pilot.press("j")  # cart (paused), checkout-payments, search → on checkout
            before = screen._current().release
            gatherer.rows = [rows[0], rows[1], _row("cart", Phase.ROLLING_BACK)]
            screen.rows = await gatherer.refresh(0)
            screen.render_rows()  # cart rolls back: same order, cells change in place
            gatherer.rows = [_row("search", Phase.ROLLING_BACK), rows[1], rows[2]]
            screen.rows = await gatherer.refresh(0)
            screen.render_rows()  # search to the top: search, cart, checkout-payments
            await pilot.pause(0.1)
            after = screen._current().release
            shown = [line for line in text_of(table).splitlines() if line.strip()]
        return before, after, shown

    before, after, shown = asyncio.run(scenario())
    assert before == after == "checkout-payments"
    assert [line.split()[0] for line in shown[1:4]] == ["search", "cart", "checkout-payments"]
    assert any("checkout-payments" in line for line in shown), shown
    assert any("rolling back" in line for line in shown), shown
