"""The wallboard: a few big figures readable across a room, the gates strip, recent events."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Digits, Footer, Label, Static

from strategies.model import Phase, State
from tui.app.screens.base import StateScreen
from tui.app.widgets import EventLog, GatesStrip, RolloutBar, StatusBar
from tui.app.widgets.deferred import Deferred
from tui.app.widgets.rollout import phase_word


def big_number(value: float | None, digits: int) -> str:
    """Digits can draw 0-9 . - only: unmeasured shows as a dash, never as zero."""
    return "-" if value is None else f"{value:.{digits}f}"


class PhaseBanner(Static):
    """The phase in a full-width coloured band (Digits has no letters)."""

    def show(self, state: State) -> None:
        phase = state.rollout.phase
        for name in Phase:
            self.set_class(phase is name, f"-{name.value}")
        step = min(state.rollout.step + 1, len(state.steps))
        self.update(Text(f"{phase_word(phase)}   step {step}/{len(state.steps)}",
                         style="bold", justify="center"))


class Figure(Vertical):
    """A caption over a Digits figure."""

    def __init__(self, caption: str, *, id: str) -> None:
        super().__init__(id=id, classes="figure")
        self.caption = caption

    def compose(self) -> ComposeResult:
        yield Label(self.caption, classes="figure-caption")
        yield Digits("-")

    value = "-"

    def set(self, text: str, alarm: bool) -> None:
        self.value = text
        self.set_class(alarm, "-alarm")
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
        candidate = state.candidate
        view = next((v for v in state.versions if v.version == candidate), None)
        sample = view.sample if view is not None else None
        failing = {g.metric for g in state.gates if g.status.value == "fail"}
        error = sample.error_ratio if sample is not None else None
        p99 = sample.latency_p99 if sample is not None else None
        self.query_one("#fig-errors", Figure).set(
            big_number(None if error is None else error * 100, 2), "error_rate" in failing)
        self.query_one("#fig-p99", Figure).set(
            big_number(None if p99 is None else p99 * 1000, 0), "latency_p99" in failing)
        self.query_one("#fig-weight", Figure).set(str(state.rollout.weight), False)


class WallboardScreen(StateScreen):
    def compose(self) -> ComposeResult:
        yield StatusBar(id="status", classes="view")
        yield PhaseBanner(id="phase", classes="view")
        yield Figures(id="figures", classes="view")
        yield GatesStrip(id="gates-strip", classes="view panel")
        yield RolloutBar(id="rollout", classes="view")
        yield EventLog(id="events")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#gates-strip").border_title = "gates"
        self.query_one("#events").add_class("view", "panel")
