"""The operator's screen: rollout bar, versions, gates and why it holds, charts, events."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer, Input

from tui.app.screens.base import StateScreen, StateView
from tui.app.widgets import Charts, EventLog, GatesPanel, RolloutBar, StatusBar, VersionsTable
from tui.app.widgets.cohorts import CohortsPanel
from tui.app.widgets.lines import LineCharts


class DashboardScreen(StateScreen):
    """Narrow terminals stack the panels; from 140 columns up they sit in two columns."""

    BINDINGS = [Binding("slash", "filter", "Filter", key_display="/", show=False),
                Binding("j", "log('down')", "Log down", show=False),
                Binding("k", "log('up')", "Log up", show=False),
                Binding("g", "log('top')", "Oldest", show=False),
                Binding("G", "log('bottom')", "Newest", show=False)]

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status", read_only=self.read_only)
        yield RolloutBar(id="rollout")
        with Vertical(id="left"):
            yield VersionsTable(id="versions", classes="panel")
            yield GatesPanel(id="gates", classes="panel")
            yield CohortsPanel(id="cohorts", classes="panel")
            yield LineCharts(id="lines", classes="panel")
        with Vertical(id="right"):
            yield Charts(id="charts", classes="panel")
            yield EventLog(id="events")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        # The layout class is set before the first paint, not on the first resize: no
        # borderless full-width frame at start.
        wide = self.app.size.width >= 140
        self.set_class(wide, "-wide")
        self.set_class(not wide, "-narrow")
        self.query_one("#versions").border_title = "versions"
        self.query_one("#gates").border_title = "gates · why it holds"
        self.query_one("#cohorts").border_title = "rings · who sees the candidate"
        self.query_one("#charts").border_title = "traffic · both versions on one scale"
        self.query_one("#events").add_class("panel")

    def views(self) -> tuple[StateView, ...]:
        return (self.query_one(StatusBar), self.query_one(RolloutBar),
                self.query_one(VersionsTable), self.query_one(GatesPanel),
                self.query_one(CohortsPanel), self.query_one(LineCharts),
                self.query_one(Charts), self.query_one(EventLog))

    def action_log(self, where: str) -> None:
        self.query_one(EventLog).jump(where)

    def action_filter(self) -> None:
        box = self.query_one("#event-filter", Input)
        box.disabled = False
        box.add_class("-open")
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "event-filter":
            self.query_one(EventLog).set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "event-filter":
            # keep the filter applied and visible; give the keys back to the bindings
            self.set_focus(None)

    def key_escape(self) -> None:
        box = self.query_one("#event-filter", Input)
        if box.has_class("-open"):
            box.value = ""
            self.close_filter()

    def close_filter(self) -> None:
        box = self.query_one("#event-filter", Input)
        box.remove_class("-open")
        box.disabled = True
        self.set_focus(None)
