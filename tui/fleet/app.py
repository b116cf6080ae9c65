"""FleetApp: every release on one screen, k9s style: one row each, `/` filter, `s` sort, Enter in.

Rows come from a `FleetGatherer` in a worker every `refresh` seconds; the table updates only
the cells that changed, so a hundred idle releases cost almost nothing to draw. Enter closes
the list with the chosen row: the command then opens that release's dashboard (following its
driver read-only, or observing it when nobody drives) and comes back here when it is closed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.cells import cell_len
from rich.text import Text
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from strategies.fleet import (
    Driver,
    FleetRow,
    SortKey,
    by_service,
    display_names,
    filter_rows,
    sort_rows,
)
from strategies.model import GateStatus, Phase
from tui.fleet.gather import FleetGatherer
from tui.fleet.table import FleetTable

COLUMNS = ("release", "env", "strategy", "phase", "step", "weight", "worst gate", "since", "driver")
# Below WIDE columns the list drops strategy and since, and the gate text is cut to fit with
# an ellipsis, so every row is whole at 80 columns (k9s drops columns the same way).
NARROW_COLUMNS = ("release", "env", "phase", "step", "weight", "worst gate", "driver")
NARROW_NO_ENV = tuple(name for name in NARROW_COLUMNS if name != "env")
WIDE = 120
SORTS = tuple(SortKey)
_PHASE_STYLE = {Phase.ROLLING_BACK: "bold red", Phase.ROLLED_BACK: "red", Phase.ABORTED: "red",
                Phase.PAUSED: "yellow", Phase.SUCCEEDED: "green", Phase.PROGRESSING: "cyan",
                Phase.PROMOTING: "cyan"}


def cells(row: FleetRow, now: float) -> tuple[str, ...]:
    """The row as the table shows it: plain text, the same words as the release's top bar."""
    desired = "—" if row.desired_weight is None else f"{row.desired_weight}%"
    actual = "" if row.actual_weight is None else f"/{row.actual_weight:.0f}%"
    gate = row.worst_gate.text if row.worst_gate else (row.problem or "—")
    if row.worst_gate is not None:
        gate = {GateStatus.FAIL: "✖ ", GateStatus.UNKNOWN: "? "}.get(row.worst_gate.status, "") + gate
    since = "—" if row.since is None else _ago(now - row.since)
    driver = {Driver.DRIVEN: row.driven_by or "driven", Driver.IDLE: "nobody",
              Driver.UNREADABLE: row.driven_by or "unreadable",
              Driver.DISCOVERED: row.driven_by or "found"}[row.driver]
    phase = row.phase.value.replace("_", " ") if row.phase else "?"
    return (row.release, row.environment or "—", row.strategy or "—", phase, row.step or "—",
            desired + actual, gate, since, driver)


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h" if seconds < 172800 else f"{seconds // 86400}d"


@dataclass(frozen=True)
class Choice:
    """What the person asked for on leaving the list: open a release, or drive it."""

    row: FleetRow
    drive: bool = False


class FleetScreen(Screen[None]):
    """The list of releases. Read-only by construction: nothing here can change a rollout.

    The same screen is the `fleet` command's whole app and the operator app's `:fleet` view;
    what Enter (and `d`) do with the chosen row is the host's: `choose` receives it, and `leave`
    is called on q (the command exits, the operator's app goes back to its release).
    """

    DEFAULT_CSS = """
    #fleet-title { height: 1; background: $primary-background; padding: 0 1; }
    #fleet-filter { display: none; height: 3; }
    #fleet-filter.-open { display: block; }
    #fleet-services { display: none; height: auto; padding: 0 1; }
    #fleet-services.-open { display: block; }
    FleetScreen DataTable { height: 1fr; }
    """
    AUTO_FOCUS = None
    BINDINGS = [
        Binding("enter", "open", "Open"),
        Binding("d", "drive", "Drive"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("s", "sort", "Sort"),
        Binding("e", "environments", "Environments"),
        Binding("h", "history", "History"),
        Binding("colon", "app.command_palette", "Commands", show=False, key_display=":"),
        Binding("escape", "clear", "Clear", show=False),
        Binding("q", "leave", "Quit"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    def __init__(self, gatherer: FleetGatherer, *, choose: Callable[[Choice], None],
                 leave: Callable[[], None], refresh: float = 2.0, wallboard: bool = False,
                 first_rows: Sequence[FleetRow] = (), clock: Callable[[], float] = time.time,
                 escape_leaves: bool = False) -> None:
        super().__init__()
        self.gatherer = gatherer
        self.choose = choose
        self.leave = leave
        self.clock = clock
        self.refresh_every = refresh
        self.wallboard = wallboard
        self.rows: list[FleetRow] = list(first_rows)
        self.sort_key = SortKey.ATTENTION
        self.filter_text = ""
        self._shown: dict[str, tuple[str, ...]] = {}
        self._order: list[str] = []
        self._columns: tuple[str, ...] = ()
        self._widths: tuple[int, ...] = ()
        self.escape_leaves = escape_leaves  # Esc with no filter open: back where the user was

    def action_leave(self) -> None:
        self.leave()

    def action_history(self) -> None:
        """`h` / `:history`: every run of the listed releases, from their journals."""
        from tui.app.components.history import HistoryScreen

        paths = [member.source for member in self.gatherer.members]
        self.app.push_screen(HistoryScreen(paths, f"the fleet's {len(paths)} releases"))

    def compose(self) -> ComposeResult:
        yield Static("", id="fleet-title")
        yield Input(placeholder="filter: words to match (Esc clears)", id="fleet-filter")
        yield Static("", id="fleet-services")
        table: FleetTable[str] = FleetTable(id="fleet-table", cursor_type="row", zebra_stripes=True)
        yield table
        if not self.wallboard:
            yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        self.query_one("#fleet-filter", Input).disabled = True  # hidden: not a place for keys
        table.focus()
        self.render_rows()
        self.run_worker(self._refresh_loop(), exclusive=True, group="fleet")

    async def _refresh_loop(self) -> None:
        import asyncio

        while True:
            self.rows = await self.gatherer.refresh(self.clock())
            self.render_rows()
            await asyncio.sleep(self.refresh_every)

    # ------------------------------------------------------------------ drawing

    def visible(self) -> list[FleetRow]:
        return sort_rows(filter_rows(self.rows, self.filter_text), self.sort_key)

    def render_rows(self) -> None:
        """Update only what changed: cells in place; rows added, removed or reordered at once.

        Columns are as wide as their widest cell (never narrower while the rows stay the same),
        set here rather than measured by the table on idle: a table that sizes itself later
        keeps drawing rows cut to the header's widths ("checkou") until something else changes.
        A rebuild keeps the cursor on its release, so Enter never opens another one because the
        order moved under it.
        """
        table = self.query_one(DataTable)
        now = self.clock()
        rows = self.visible()
        keys = [self._key(r) for r in rows]
        columns = COLUMNS if self.size.width >= WIDE else NARROW_COLUMNS
        if columns is NARROW_COLUMNS and not any(row.environment for row in rows):
            columns = NARROW_NO_ENV  # no environment anywhere: its column only takes room
        values = [dict(zip(COLUMNS, cells(row, now), strict=True)) | {"release": name}
                  for row, name in zip(rows, display_names(rows), strict=True)]
        texts = self._fit(values, columns)
        widths = tuple(max([cell_len(name), *(cell_len(text[i]) for text in texts)])
                       for i, name in enumerate(columns))
        if keys == self._order and columns == self._columns:
            # The same rows: a column keeps its width when its widest cell gets narrower
            # ("1.02%" → "0.98%"), so a moving figure does not redraw the whole list each tick.
            widths = tuple(map(max, widths, self._widths))
        if keys != self._order or columns != self._columns or widths != self._widths:
            self._rebuild(table, rows, keys, columns, widths, texts)
        else:
            for row, key, text in zip(rows, keys, texts, strict=True):
                old = self._shown.get(key, ())
                styled = self._styled(row, columns, text)
                for index, (new, before) in enumerate(zip(text, old, strict=False)):
                    if new != before:
                        table.update_cell(key, columns[index], styled[index], update_width=False)
                self._shown[key] = text
        self._title(rows)
        self._services()

    def _rebuild(self, table: DataTable, rows: list[FleetRow], keys: list[str],
                 columns: tuple[str, ...], widths: tuple[int, ...],
                 texts: list[tuple[str, ...]]) -> None:
        """Every row again, in the new order and widths, the cursor kept on its release."""
        under_cursor = self._order[table.cursor_row] if 0 <= table.cursor_row < len(self._order) \
            else None
        table.clear(columns=True)
        for name, width in zip(columns, widths, strict=True):
            table.add_column(name, width=width, key=name)
        self._columns, self._widths = columns, widths
        self._shown.clear()
        for row, key, text in zip(rows, keys, texts, strict=True):
            table.add_row(*self._styled(row, columns, text), key=key)
            self._shown[key] = text
        self._order = keys
        if under_cursor in keys:
            table.move_cursor(row=keys.index(under_cursor), animate=False)

    def _fit(self, values: list[dict[str, str]], columns: tuple[str, ...]) -> list[tuple[str, ...]]:
        """Each row's cells for these columns; when narrow, the gate cut so every row fits."""
        if columns is not COLUMNS and values:
            for value in values:  # who, not where: "ann@ops1/4242" → "ann"
                value["driver"] = value["driver"].split("@", 1)[0]
            others = sum(max(len(name), *(len(v[name]) for v in values)) + 2
                         for name in columns if name != "worst gate")
            scrollbar = 2 if len(values) > self.size.height - 4 else 0  # more rows than lines
            room = max(6, self.size.width - others - 3 - scrollbar)
            for value in values:
                gate = value["worst gate"]
                value["worst gate"] = gate if len(gate) <= room else gate[: room - 1] + "…"
        return [tuple(value[name] for name in columns) for value in values]

    def on_resize(self) -> None:
        self.render_rows()

    @staticmethod
    def _key(row: FleetRow) -> str:
        return f"{row.release}\x1f{row.environment}\x1f{row.source}"

    @staticmethod
    def _styled(row: FleetRow, columns: tuple[str, ...], text: tuple[str, ...]) -> tuple[Text, ...]:
        """Plain Text cells (no markup to escape), coloured by phase and gate status."""
        styles = dict.fromkeys(columns, "")
        styles["phase"] = _PHASE_STYLE.get(row.phase, "") if row.phase else ""
        gate = row.worst_gate
        if gate is not None and gate.status is GateStatus.FAIL:
            styles["worst gate"] = "bold red"
        elif (gate is not None and gate.status is GateStatus.UNKNOWN) or row.driver is Driver.UNREADABLE:
            styles["worst gate"] = "dim"
        return tuple(Text(value, style=styles[name]) for name, value in zip(columns, text, strict=True))

    def _title(self, rows: Sequence[FleetRow]) -> None:
        total = len(self.rows)
        failing = sum(1 for r in self.rows if r.worst_gate and r.worst_gate.status is GateStatus.FAIL)
        driven = sum(1 for r in self.rows if r.driver is Driver.DRIVEN)
        shown = f"{len(rows)} of {total}" if self.filter_text else f"{total}"
        flt = f" · filter “{self.filter_text}”" if self.filter_text else ""
        self.query_one("#fleet-title", Static).update(
            f"releasedeck fleet · {shown} releases · {driven} driven · "
            f"{failing} failing · sort {self.sort_key.value}{flt}")

    def _services(self) -> None:
        box = self.query_one("#fleet-services", Static)
        if not box.has_class("-open"):
            return
        lines = []
        for line in by_service(self.rows):
            runs = "  ".join(f"{env}: {what}" for env, what in line.environments)
            to_go = f"  — to go: {', '.join(line.to_go)}" if line.to_go else "  — everywhere"
            lines.append(f"{line.release}  {runs}{to_go}")
        box.update("\n".join(lines) or "no releases")

    # ------------------------------------------------------------------ keys

    def _current(self) -> FleetRow | None:
        table = self.query_one(DataTable)
        rows = self.visible()
        return rows[table.cursor_row] if rows and 0 <= table.cursor_row < len(rows) else None

    def action_open(self) -> None:
        row = self._current()
        if row is None or self.wallboard:
            return
        if row.driver in (Driver.UNREADABLE, Driver.DISCOVERED):
            self.notify(f"{row.release}: {row.problem or 'no spec here to open it with'}",
                        severity="warning")
            return
        self.choose(Choice(row))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on the table (the table takes the key itself): open that row."""
        self.action_open()

    def action_drive(self) -> None:
        """Drive the release under the cursor: only when nobody drives it (else: say who does)."""
        row = self._current()
        if row is None or self.wallboard:
            return
        if row.driver is Driver.DRIVEN:
            self.notify(f"{row.release} is driven by {row.driven_by}: Enter follows it read-only",
                        severity="warning")
        elif row.driver in (Driver.UNREADABLE, Driver.DISCOVERED):
            self.notify(f"{row.release}: {row.problem or 'no spec here to drive it with'}",
                        severity="error")
        else:
            self.choose(Choice(row, drive=True))

    def action_filter(self) -> None:
        box = self.query_one("#fleet-filter", Input)
        box.disabled = False
        box.add_class("-open")
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self.render_rows()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one(DataTable).focus()

    def action_clear(self) -> None:
        box = self.query_one("#fleet-filter", Input)
        if self.escape_leaves and not box.has_class("-open"):
            self.leave()
            return
        box.value = ""
        box.remove_class("-open")
        box.disabled = True
        self.filter_text = ""
        self.render_rows()
        self.query_one(DataTable).focus()

    def action_sort(self) -> None:
        self.sort_key = SORTS[(SORTS.index(self.sort_key) + 1) % len(SORTS)]
        self.render_rows()

    def action_environments(self) -> None:
        self.query_one("#fleet-services", Static).toggle_class("-open")
        self._services()

    def action_cursor_down(self) -> None:
        self.query_one(DataTable).action_cursor_down()

    def action_cursor_up(self) -> None:
        self.query_one(DataTable).action_cursor_up()


class FleetView(FleetScreen):
    """The list as the operator's app shows it (`:fleet`): modal, so the app's operator keys —
    which act on its own release — do not reach through; q and Esc go back to the release."""

    BINDINGS = [Binding("q", "leave", "Back")]

    def __init__(self, gatherer: FleetGatherer, *, choose: Callable[[Choice], None],
                 leave: Callable[[], None], refresh: float = 2.0,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(gatherer, choose=choose, leave=leave, refresh=refresh, clock=clock,
                         escape_leaves=True)
        self._modal = True


class FleetApp(App[Choice | None]):
    """`releasedeck fleet`: the list; Enter or `d` ends it with the chosen row (the command
    then opens that release and comes back to a new list)."""

    TITLE = "releasedeck fleet"
    BINDINGS = [Binding("ctrl+c", "quit", "Quit", show=False)]

    def __init__(self, gatherer: FleetGatherer, *, refresh: float = 2.0, wallboard: bool = False,
                 first_rows: Sequence[FleetRow] = (), clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.fleet = FleetScreen(gatherer, choose=self.exit, leave=lambda: self.exit(None),
                                 refresh=refresh, wallboard=wallboard, first_rows=first_rows,
                                 clock=clock)

    def get_default_screen(self) -> Screen:
        return self.fleet

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """`:` then a name: the list's views (history) beside Textual's own commands."""
        yield SystemCommand("History (h)", "every run of these releases, from their journals",
                            self.fleet.action_history)
        yield from super().get_system_commands(screen)

    @property
    def rows(self) -> list[FleetRow]:
        return self.fleet.rows


def default_paths(paths: Sequence[str]) -> list[str]:
    return list(paths) or [str(Path.cwd())]
