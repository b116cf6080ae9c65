"""The cohorts panel: each ring (who is in it, the share, where it stands, its live evidence) and
an A/B experiment's readout. Hidden for plans that route by weight only."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from strategies.model import CohortView, State
from tui.app.widgets.drawn import Drawn, shape_of

MARK = {"reached": ("✔", "green"), "current": ("▶", "bold cyan"), "ahead": ("·", "dim"),
        "closed": ("✖", "bold red")}


def evidence(row: CohortView) -> str:
    """The candidate's traffic in the current ring (what its gates judge)."""
    if row.status != "current":
        return ""
    if row.requests is None:
        return "no data yet"
    errors = "n/a" if row.error_ratio is None else f"{row.error_ratio * 100:.1f}% err"
    return f"{row.requests:.0f} req · {errors}"


def ring_cells(row: CohortView) -> tuple[Text, ...]:
    mark, style = MARK.get(row.status, ("?", ""))
    return (Text(mark, style=style), Text(row.name, style=style),
            Text(row.who, style="dim" if row.status == "ahead" else ""), Text(evidence(row)))


class CohortsPanel(Drawn):
    """A few lines: one per ring, then the experiment's line (built only when one changed)."""

    def show(self, state: State) -> None:
        shown = bool(state.cohorts) or state.experiment is not None
        self.set_class(shown, "-shown")
        if not shown:
            return
        rows = [ring_cells(row) for row in state.cohorts]
        readout = state.experiment
        lines: list[Text] = []
        if readout is not None:
            style = "bold green" if readout.winner == readout.treatment else \
                "bold red" if readout.winner == readout.control else "yellow"
            line = Text(readout.summary(), style=style)
            line.append(f"  evidence B>A {readout.evidence_better:.1f} · B<A "
                        f"{readout.evidence_worse:.1f} / {readout.threshold:.1f}", style="dim")
            lines.append(line)
        shape = (len(rows), shape_of(self.app, lines, self.content_region.width))
        self.put((rows, lines), lambda: cohorts_table(rows, lines), shape)


def cohorts_table(rows: list[tuple[Text, ...]], lines: list[Text]) -> RenderableType:
    table = Table.grid(padding=(0, 1), expand=True)
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(ratio=1, overflow="ellipsis", no_wrap=True)
    table.add_column(no_wrap=True, justify="right")
    for row in rows:
        table.add_row(*row)
    return Group(table, *lines)
