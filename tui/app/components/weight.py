"""Ask for a candidate weight (0..100): Argo's setWeight, by hand."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.validation import Number
from textual.widgets import Input, Label


class WeightScreen(ModalScreen[int | None]):
    """Enter submits a valid weight; Esc cancels. The engine pauses the rollout after it."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, current: int) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="weight-box", classes="dialog"):
            yield Label("Set candidate weight (%)", classes="dialog-title")
            yield Label(f"now {self.current}% — the rollout pauses at the new weight",
                        id="weight-help")
            box = Input(str(self.current), type="integer", id="weight-input",
                        validators=[Number(minimum=0, maximum=100)])
            box.cursor_blink = False  # a steady cursor: the same frame every time (snapshots)
            yield box
            yield Label("", id="weight-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        result = event.validation_result
        if result is not None and not result.is_valid:
            self.query_one("#weight-error", Label).update("weight must be a whole number 0..100")
            return
        self.dismiss(int(event.value))

    def action_cancel(self) -> None:
        self.dismiss(None)
