"""`i`: what this session runs — the spec (the demo's built-in one too), the router's address,
where the instances' logs and the journal are — so nothing has to be guessed from a temp dir."""

from __future__ import annotations

from rich.syntax import Syntax
from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from tui.runinfo import RunInfo


class InfoScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,i,q", "close", "Close")]

    def __init__(self, info: RunInfo) -> None:
        super().__init__()
        self.info = info

    def compose(self) -> ComposeResult:
        info = self.info
        facts = Table.grid(padding=(0, 2))
        facts.add_column(style="bold", no_wrap=True)
        facts.add_column(overflow="fold")
        facts.add_row("spec", info.spec_origin or "—")
        facts.add_row("router", info.router or "— (the platform routes traffic)")
        facts.add_row("logs", info.logs or "— (see the platform's own logs)")
        facts.add_row("journal", info.journal_note())
        with Vertical(id="info-box", classes="dialog"):
            yield Label("this run — Esc closes", classes="dialog-title")
            yield Static(facts, id="info-facts")
            with VerticalScroll(id="info-spec-box"):
                yield Static(Syntax(info.spec_text or "# no spec text available", "toml",
                                    theme="ansi_dark", word_wrap=True), id="info-spec")

    def action_close(self) -> None:
        self.dismiss(None)
