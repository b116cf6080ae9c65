"""The wallboard: a few big figures readable across a room, the gates strip, recent events."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Digits, Footer, Label

from strategies.model import Phase, Role, State
from tui.app import facts, fmt
from tui.app.screens.base import StateScreen, StateView
from tui.app.widgets import EventLog, GatesStrip, RolloutBar, StatusBar
from tui.app.widgets.deferred import Deferred
from tui.app.widgets.drawn import Drawn, shape_of
from tui.app.widgets.rollout import phase_word, where


def big_number(value: float | None, digits: int) -> str:
    """Digits can draw 0-9 . - only: unmeasured shows as a dash, never as zero."""
    return "-" if value is None else f"{value:.{digits}f}"


class PhaseBanner(Drawn):
    """The phase in a full-width coloured band (Digits has no letters), and once it has
    ended, why: the room reads the cause, not just the colour."""

    def show(self, state: State) -> None:
        phase = state.rollout.phase
        for name in Phase:
            self.set_class(phase is name, f"-{name.value}")
        text = Text(f"{phase_word(phase)}   {where(state)}", style="bold", justify="center")
        ended = facts.cause(state)
        if ended is not None:
            text.append(f"\n{ended.headline}", style="bold")
            if ended.details:
                text.append(f"\n{ended.details[0]}")
        self.put(text, lambda: text, shape_of(self.app, [text], self.content_region.width))


class Figure(Vertical):
    """A caption over a Digits figure."""

    def __init__(self, caption: str, *, id: str) -> None:
        super().__init__(id=id, classes="figure")
        self.caption = caption

    def compose(self) -> ComposeResult:
        yield Label(self.caption, classes="figure-caption")
        yield Digits("-")

    def caption_note(self, note: str) -> None:
        """Say why a figure is frozen (no traffic since ...), on its border, dimming it."""
        if note != self.note:  # setting a subtitle repaints, even an equal one
            self.note = note
            self.border_subtitle = note
        self.set_class(bool(note), "-frozen")

    value = "-"
    note = ""

    def set(self, text: str, alarm: bool) -> None:
        self.set_class(alarm, "-alarm")
        if text == self.value:
            return
        self.value = text
        for digits in self.query(Digits):  # none yet before mount: on_mount draws it
            digits.update(text)

    def on_mount(self) -> None:
        self.query_one(Digits).update(self.value)


class Figures(Deferred, Horizontal):
    def compose(self) -> ComposeResult:
        yield Figure("candidate error %", id="fig-errors")
        yield Figure("candidate p99 ms", id="fig-p99")
        yield Figure("candidate weight %", id="fig-weight")

    def draw(self, state: State) -> None:
        view = next((v for v in state.versions if v.role is Role.CANDIDATE), None)
        shown = facts.figures(state, view) if view is not None else facts.Figures(None)
        sample = shown.sample
        failing = {g.metric for g in state.gates if g.status.value == "fail"}
        failing |= {str(e.get("metric")) for e in state.rollout.cause if e.get("status") == "fail"}
        stopped = facts.traffic_stopped_at(state)
        note = "" if not shown.frozen else (
            f"no traffic since {fmt.clock(stopped)}" if stopped else "no traffic")
        self.query_one("#fig-errors", Figure).caption_note(note)
        self.query_one("#fig-p99", Figure).caption_note(note)
        error = sample.error_ratio if sample is not None else None
        p99 = sample.latency_p99 if sample is not None else None
        self.query_one("#fig-errors", Figure).set(
            big_number(None if error is None else error * 100, 2), "error_rate" in failing)
        self.query_one("#fig-p99", Figure).set(
            big_number(None if p99 is None else p99 * 1000, 0), "latency_p99" in failing)
        self.query_one("#fig-weight", Figure).set(str(state.rollout.weight), False)


class WallboardScreen(StateScreen):
    def compose(self) -> ComposeResult:
        yield StatusBar(id="status", read_only=self.read_only)
        yield PhaseBanner(id="phase")
        yield Figures(id="figures")
        yield GatesStrip(id="gates-strip", classes="panel")
        yield RolloutBar(id="rollout", classes="-no-cause")
        yield EventLog(id="events")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#gates-strip").border_title = "gates"
        self.query_one("#events").add_class("panel")

    def views(self) -> tuple[StateView, ...]:
        return (self.query_one(StatusBar), self.query_one(PhaseBanner), self.query_one(Figures),
                self.query_one(GatesStrip), self.query_one(RolloutBar), self.query_one(EventLog))
