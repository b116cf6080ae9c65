"""The operator's screen: rollout bar, versions, gates and why it holds, charts, events."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer, Input

from tui.app.screens.base import StateScreen
from tui.app.widgets import Charts, EventLog, GatesPanel, RolloutBar, StatusBar, VersionsTable
from tui.app.widgets.cohorts import CohortsPanel
from tui.app.widgets.lines import LineCharts


class DashboardScreen(StateScreen):
    """Narrow terminals stack the panels; from 140 columns up they sit in two columns."""

    BINDINGS = [Binding("slash", "filter", "Filter", key_display="/")]

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status", classes="view")
        yield RolloutBar(id="rollout", classes="view")
        with Vertical(id="left"):
            yield VersionsTable(id="versions", classes="view panel")
            yield GatesPanel(id="gates", classes="view panel")
            yield CohortsPanel(id="cohorts", classes="view panel")
            yield LineCharts(id="lines", classes="view panel")
        with Vertical(id="right"):
            yield Charts(id="charts", classes="view panel")
            yield EventLog(id="events")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#versions").border_title = "versions"
        self.query_one("#gates").border_title = "gates · why it holds"
        self.query_one("#cohorts").border_title = "rings · who sees the candidate"
        self.query_one("#charts").border_title = "charts"
        self.query_one("#lines").border_title = "baseline vs candidate, shared axes"
        self.query_one("#events").add_class("view", "panel")

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
