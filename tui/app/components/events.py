"""`e`: any event or decision with everything it carries — the full evidence, the actions,
actor, phase, step (counted from 1, as the screen says) and weight — as the JSON line a pipeline
would read, pretty-printed. Up/Down (or j/k) pick the event; Esc closes."""

from __future__ import annotations

import json
from collections.abc import Sequence

from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from strategies.model import Event
from tui.app.widgets.events import event_line


def detail(event: Event) -> str:
    return json.dumps(json.loads(event.to_json()), indent=2, ensure_ascii=False)


class EventsScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,e,q", "close", "Close"),
                Binding("j", "move(1)", "Down", show=False),
                Binding("k", "move(-1)", "Up", show=False)]

    def __init__(self, events: Sequence[Event]) -> None:
        super().__init__()
        self.events = list(events)

    def compose(self) -> ComposeResult:
        with Vertical(id="events-box", classes="dialog"):
            yield Label(f"events ({len(self.events)}) — ↑↓/j k pick, Esc closes",
                        classes="dialog-title")
            yield OptionList(*[Option(event_line(e), id=str(i)) for i, e in enumerate(self.events)],
                             id="events-list")
            with VerticalScroll(id="event-detail-box"):
                yield Static(id="event-detail")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        if self.events:
            options.highlighted = len(self.events) - 1
            self.show_event(len(self.events) - 1)
        else:
            self.query_one("#event-detail", Static).update("no events yet")
        options.focus()

    def on_option_list_option_highlighted(self, message: OptionList.OptionHighlighted) -> None:
        self.show_event(message.option_index)

    def show_event(self, index: int) -> None:
        if 0 <= index < len(self.events):
            self.query_one("#event-detail", Static).update(
                Syntax(detail(self.events[index]), "json", word_wrap=True, theme="ansi_dark"))

    def action_move(self, delta: int) -> None:
        options = self.query_one(OptionList)
        if delta > 0:
            options.action_cursor_down()
        else:
            options.action_cursor_up()

    def action_close(self) -> None:
        self.dismiss(None)
