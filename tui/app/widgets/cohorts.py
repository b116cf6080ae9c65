"""The cohorts panel: each ring (who is in it, the share, where it stands, its live evidence) and
an A/B experiment's readout. Hidden for plans that route by weight only."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from strategies.model import CohortView, State

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


class CohortsPanel(Static):
    """A few lines: one per ring, then the experiment's line."""

    def show(self, state: State) -> None:
        shown = bool(state.cohorts) or state.experiment is not None
        self.set_class(shown, "-shown")
        if not shown:
            return
        table = Table.grid(padding=(0, 1), expand=True)
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column(ratio=1, overflow="ellipsis", no_wrap=True)
        table.add_column(no_wrap=True, justify="right")
        for row in state.cohorts:
            mark, style = MARK.get(row.status, ("?", ""))
            table.add_row(Text(mark, style=style), Text(row.name, style=style),
                          Text(row.who, style="dim" if row.status == "ahead" else ""),
                          Text(evidence(row)))
        parts: list[Table | Text] = [table]
        readout = state.experiment
        if readout is not None:
            style = "bold green" if readout.winner == readout.treatment else \
                "bold red" if readout.winner == readout.control else "yellow"
            line = Text(readout.summary(), style=style)
            line.append(f"  evidence B>A {readout.evidence_better:.1f} · B<A "
                        f"{readout.evidence_worse:.1f} / {readout.threshold:.1f}", style="dim")
            parts.append(line)
        self.update(Group(*parts))
