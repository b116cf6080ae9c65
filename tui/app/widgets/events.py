"""The event log: every decision and operator action with its time and reason; `/` filters it."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, RichLog

from strategies.model import Event, State
from tui.app import fmt
from tui.app.widgets.deferred import Deferred

SEVERITY_STYLE = {"critical": "bold red", "warning": "bold yellow", "info": "cyan"}
QUIET_KEYS = {"evidence", "actions", "phase", "step", "steps", "weight", "reason", "actor"}


def describe(event: Event) -> str:
    """The human part of an event: its reason, else its details as key=value."""
    details = event.details
    reason = str(details.get("reason", "") or "")
    actor = str(details.get("actor", "") or "")
    if reason:
        return f"{reason}" + (f"  [{actor}]" if actor and actor != "engine" else "")
    pairs = [f"{k}={v}" for k, v in details.items() if k not in QUIET_KEYS]
    return " ".join(pairs)


def event_line(event: Event) -> Text:
    line = Text(fmt.clock(event.at), style="dim")
    line.append(f" {event.event:<13}", style=SEVERITY_STYLE.get(event.severity, ""))
    line.append(" " + describe(event))
    return line


class EventLog(Deferred, Vertical):
    """A RichLog rebuilt only when the events or the filter change, so idle costs nothing."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.filter_text = ""
        self._events: Sequence[Event] = ()

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter events (Enter keeps, Esc clears)", id="event-filter",
                    disabled=True)
        yield RichLog(id="event-lines", wrap=False, markup=False, auto_scroll=True)

    def draw(self, state: State) -> None:
        events = state.events
        old = self._events
        if len(events) == len(old) and (not events or events[-1] is old[-1]):
            return
        self._events = events
        self._rebuild()

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip().lower()
        self._rebuild()

    def visible(self) -> list[Text]:
        lines = [event_line(e) for e in self._events]
        if self.filter_text:
            lines = [line for line in lines if self.filter_text in line.plain.lower()]
        return lines

    def _rebuild(self) -> None:
        log = self.query_one(RichLog)
        log.clear()
        for line in self.visible():
            log.write(line)
        count = len(self._events)
        shown = "" if not self.filter_text else f" · filter “{self.filter_text}”"
        self.border_title = f"events ({count}){shown}"
