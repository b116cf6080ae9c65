"""`?`: what every key does, and what this session is allowed to do."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, keys: list[tuple[str, str]], read_only: bool) -> None:
        super().__init__()
        self.keys = keys
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        for key, what in self.keys:
            table.add_row(key, what)
        with Vertical(id="help-box", classes="dialog"):
            yield Label("releasedeck — keys", classes="dialog-title")
            yield Static(table)
            if self.read_only:
                yield Label("READ-ONLY session: no key can change the rollout, and the engine "
                            "refuses every command.", id="help-readonly")
            yield Label("Rollback, abort and promote-full ask for confirmation. "
                        "Esc closes.", id="help-foot")

    def action_close(self) -> None:
        self.dismiss(None)
