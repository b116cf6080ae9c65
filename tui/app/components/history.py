"""`:history`: how this release's past runs went, read from the journals, inside the app.

The same reading and the same words as `releasedeck history` (`tui.history.load_history`,
`table_lines`, `figures_text`, `plot`): every attempt with when, versions, strategy, outcome,
duration, the deciding gate with its evidence and the operator's commands, then the delivery
figures and the per-day chart. On a narrow terminal each attempt takes two lines instead of
being cut. Reading runs in a thread (a big journal must not freeze the screen); Esc closes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from tui.history import HistoryReport, figures_text, load_history, plot, table_lines


def history_text(report: HistoryReport, width: int) -> str:
    """The view's body at this width: attempts, figures, chart, anything skipped."""
    if not report.journals:
        return "no journal yet: nothing has been decided for this release"
    lines = table_lines(report.runs, width) if report.runs else ["no attempt in the journals"]
    lines += ["", figures_text(report.figures), "", plot(report.figures, width=max(8, min(40, width - 42)))]
    lines += [f"skipped: {problem}" for problem in report.problems]
    return "\n".join(lines)


class HistoryScreen(ModalScreen[None]):
    """Every run of the release(s) the paths name; j/k scroll, Esc goes back."""

    BINDINGS = [Binding("escape,q,h", "close", "Back"),
                Binding("j,down", "scroll(1)", "Down", show=False),
                Binding("k,up", "scroll(-1)", "Up", show=False)]
    DEFAULT_CSS = """
    HistoryScreen { background: $background; }
    #history-title { height: 1; background: $primary-background; padding: 0 1; width: 1fr; }
    #history-scroll { height: 1fr; padding: 0 1; }
    """

    def __init__(self, paths: Sequence[str], what: str) -> None:
        super().__init__()
        self.paths = list(paths)
        self.what = what
        self.report: HistoryReport | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"history · {self.what} · reading the journals…", id="history-title")
            with VerticalScroll(id="history-scroll"):
                yield Static("", id="history-body")

    async def on_mount(self) -> None:
        self.report = await asyncio.to_thread(load_history, self.paths)
        self.query_one("#history-title", Label).update(
            f"history · {self.what} · {len(self.report.runs)} attempts · j/k scroll · Esc back")
        self.draw()

    def on_resize(self) -> None:
        self.draw()

    def draw(self) -> None:
        if self.report is not None:
            width = max(20, self.app.size.width - 4)
            self.query_one("#history-body", Static).update(Text(history_text(self.report, width)))

    def action_scroll(self, delta: int) -> None:
        self.query_one("#history-scroll", VerticalScroll).scroll_relative(y=delta, animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
