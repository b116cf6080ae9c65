"""`?`: what every key does, and what this session is allowed to do. Scrolls (j/k) when the
terminal is too short, and wraps its lines at any width."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close"),
                Binding("j,down", "scroll(1)", "Down", show=False),
                Binding("k,up", "scroll(-1)", "Up", show=False)]

    def __init__(self, keys: list[tuple[str, str]], read_only: bool, why_read_only: str = "") -> None:
        super().__init__()
        self.keys = keys
        self.read_only = read_only
        self.why_read_only = why_read_only

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for key, what in self.keys:
            table.add_row(key, what)
        with Vertical(id="help-box", classes="dialog"):
            yield Label("releasedeck — keys (Esc closes)", classes="dialog-title")
            with VerticalScroll(id="help-scroll"):
                yield Static(table, id="help-keys")
                if self.read_only:
                    yield Label(f"READ-ONLY session{self.why_read_only}: no key can change the "
                                "rollout; action keys say so, and the engine refuses every "
                                "command.", id="help-readonly")
                else:
                    yield Label("Rollback, abort, promote-fully and retry ask first; keys the "
                                "current phase does not allow are left out of the footer and "
                                "say why when pressed.", id="help-foot")

    def action_scroll(self, delta: int) -> None:
        box = self.query_one("#help-scroll", VerticalScroll)
        box.scroll_relative(y=delta, animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
