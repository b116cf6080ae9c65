"""The event log: every decision and operator action with its time and reason; `/` filters it.

Lines wrap (a number is never cut in half). The log follows the newest event unless the operator
has scrolled up to read; then the title says how many new events wait below (G jumps there).
A resize keeps following the newest. `e` opens any event with its full evidence.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.geometry import Size
from textual.message import Message
from textual.reactive import Reactive
from textual.widgets import Input, RichLog

from strategies.model import Event, State
from tui.app import fmt
from tui.app.widgets.drawn import Drawn, set_border_title

SEVERITY_STYLE = {"critical": "bold red", "warning": "bold yellow", "info": "cyan"}
QUIET_KEYS = {"evidence", "actions", "phase", "step", "steps", "weight", "reason", "actor",
              "schema"}
NAME_WIDTH = 13


def describe(event: Event) -> str:
    """The human part of an event: its reason, else its details as key=value."""
    details = event.details
    reason = str(details.get("reason", "") or "")
    actor = str(details.get("actor", "") or "")
    if reason:
        return f"{reason}" + (f"  [{actor}]" if actor and actor not in ("engine", "operator")
                              and not reason.startswith(actor.removeprefix("gate:")) else "")
    pairs = [f"{k}={v}" for k, v in details.items() if k not in QUIET_KEYS]
    return " ".join(pairs)


def event_line(event: Event) -> Text:
    line = Text(fmt.clock(event.at), style="dim")
    line.append(f" {event.event:<{NAME_WIDTH}}", style=SEVERITY_STYLE.get(event.severity, ""))
    line.append(" " + describe(event))
    return line


def sign_text(unseen: int) -> str:
    """What the sign under a log scrolled up says (nothing while it follows the newest)."""
    if not unseen:
        return ""
    return f"▼ {unseen} new event{'s' if unseen != 1 else ''} below — G jumps to the newest"


class EventLines(RichLog):
    """A RichLog that knows whether the operator is reading older lines.

    Lines wrap at the log's own width (RichLog's default minimum of 78 columns would wrap them
    wider than a side panel and cut every line's end), with the scrollbar's column kept free so
    lines written before the log could scroll still fit after; a new width wraps them again.
    """

    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)
    """A new line changes this log's own scroll range, not the screen's layout: Textual lays
    out the whole screen on every change of it (each event written cost a layout pass, most
    of a running release's drawing). The scrollbars follow it here; showing or hiding one
    still lays out (that reactive asks for it)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, wrap=True, markup=False, auto_scroll=True, min_width=1)
        self._wrapped_at = 0

    def watch_virtual_size(self, size: Size) -> None:
        if self.is_mounted:
            self._scroll_update(size)  # Textual's own scrollbar update (pinned <8.3)

    def following(self) -> bool:
        return self.scroll_y >= self.max_scroll_y

    def on_resize(self, event: events.Resize) -> None:
        width = self.scrollable_content_region.width
        if self._wrapped_at and width != self._wrapped_at:
            self.post_message(Rewrap())
        self._wrapped_at = width
        if self.auto_scroll:
            self.call_after_refresh(self.scroll_end, animate=False)


class Rewrap(Message):
    """The log's width changed: its lines are written again at the new width."""


class EventLog(Vertical):
    """A RichLog rebuilt only when the events or the filter change, so idle costs nothing."""

    _pending: State | None = None
    _ready = False

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.filter_text = ""
        self._events: Sequence[Event] = ()
        self.unseen = 0

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter events (Enter keeps, Esc clears)", id="event-filter",
                    disabled=True)
        yield EventLines(id="event-lines")
        yield Drawn(id="event-unseen")

    def on_mount(self) -> None:
        self._ready = True
        if self._pending is not None:
            self.draw(self._pending)

    def show(self, state: State) -> None:
        self._pending = state
        if self._ready:
            # On quit the children go first; a redraw racing that teardown has nothing to draw.
            with contextlib.suppress(NoMatches):
                self.draw(state)

    @property
    def events(self) -> Sequence[Event]:
        return self._events

    def draw(self, state: State) -> None:
        events_now = state.events
        old = self._events
        if len(events_now) == len(old) and (not events_now or events_now[-1] is old[-1]):
            return
        fresh = self._new_count(old, events_now)
        self._events = events_now
        if old and events_now[0] is old[0] and len(events_now) == len(old) + fresh:
            self._write(events_now[len(old):], new=fresh, clear=False)  # only the new lines
        else:  # the first draw, or the oldest events left the window: every line again
            self._rebuild(new=fresh)

    @staticmethod
    def _new_count(old: Sequence[Event], new: Sequence[Event]) -> int:
        if not old:
            return len(new)
        last = old[-1]
        for index in range(len(new) - 1, -1, -1):
            if new[index] is last:
                return len(new) - 1 - index
        return len(new)

    def on_rewrap(self, message: Rewrap) -> None:
        message.stop()
        self._rebuild(new=0)

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip().lower()
        self._rebuild(new=0)

    def visible(self, events: Sequence[Event] | None = None) -> list[Text]:
        lines = [event_line(e) for e in (self._events if events is None else events)]
        if self.filter_text:
            lines = [line for line in lines if self.filter_text in line.plain.lower()]
        return lines

    def _rebuild(self, new: int) -> None:
        self._write(self._events, new=new, clear=True)

    def _write(self, events: Sequence[Event], new: int, clear: bool) -> None:
        """Write `events`' lines (after clearing the log, or below what it holds), following
        the newest unless the operator scrolled up to read."""
        log = self.query_one(EventLines)
        follow = log.following() or not log.max_scroll_y
        keep = log.scroll_y
        log.auto_scroll = follow
        if clear:
            log.clear()
        for line in self.visible(events):
            log.write(line, scroll_end=follow)
        if follow:
            self.unseen = 0
        else:
            self.unseen += new
            log.call_after_refresh(log.scroll_to, y=keep, animate=False)
        self._title()

    def _title(self) -> None:
        count = len(self._events)
        shown = "" if not self.filter_text else f" · filter “{self.filter_text}”"
        set_border_title(self, f"events ({count}){shown}")
        sign = self.query_one("#event-unseen", Drawn)
        text = sign_text(self.unseen)
        sign.put(text, lambda: text, shape=bool(text))  # one line, or none: hidden
        self.set_class(bool(self.unseen), "-unseen")

    def jump(self, where: str) -> None:
        """j/k/g/G from the screen: scroll the log and track whether it follows again."""
        log = self.query_one(EventLines)
        if where == "down":
            log.scroll_down(animate=False)
        elif where == "up":
            log.scroll_up(animate=False)
        elif where == "top":
            log.scroll_home(animate=False)
        else:
            log.scroll_end(animate=False)
        log.call_after_refresh(self._after_jump)

    def _after_jump(self) -> None:
        log = self.query_one(EventLines)
        log.auto_scroll = log.following()
        if log.auto_scroll:
            self.unseen = 0
        self._title()
