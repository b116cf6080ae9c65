"""The versions table: one row per version, the worse one marked where a gate compares them."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Group, RenderableType
from rich.text import Text

from strategies.model import MetricSample, Role, State, VersionView
from tui.app import facts, fmt
from tui.app.widgets.drawn import shape_of
from tui.app.widgets.grid import GAP, Column, grid, share
from tui.app.widgets.state_panel import StatePanel

# column title, metric name, formatter; higher is worse for every column but throughput
COLUMNS: tuple[tuple[str, str, Callable[[float | None], str]], ...] = (
    ("req/s", "throughput", fmt.rate),
    ("err %", "error_rate", fmt.pct),
    ("p50", "latency_p50", fmt.ms),
    ("p95", "latency_p95", fmt.ms),
    ("p99", "latency_p99", fmt.ms),
)
BASELINE_COLOUR = "#4ea1ff"
CANDIDATE_COLOUR = "#ff9f1c"
ROLE_STYLE = {Role.BASELINE: f"bold {BASELINE_COLOUR}", Role.CANDIDATE: f"bold {CANDIDATE_COLOUR}"}


def compared_metrics(state: State) -> set[str]:
    """Metrics some gate judged with both versions' numbers in hand."""
    return {g.metric for g in state.gates if g.baseline is not None and g.value is not None}


def worse_version(metric: str, views: tuple[VersionView, ...]) -> str | None:
    """The version with the worse value of `metric`, or None when they tie or one is missing."""
    values: list[tuple[float, str]] = []
    for view in views:
        value = view.sample.value(metric) if view.sample is not None else None
        if value is None:
            return None
        values.append((value, view.version))
    if len(values) < 2 or values[0][0] == values[1][0]:
        return None
    pick = min(values) if metric == "throughput" else max(values)
    return pick[1]


def _value(sample: MetricSample | None, metric: str) -> float | None:
    return None if sample is None else sample.value(metric)


RESOURCE_MIN_HEIGHT = 30  # screen rows: below this the table keeps its two rows only


def measured_resources(state: State) -> bool:
    """Does the platform report CPU or memory for any version (local, Docker, metrics-server)?"""
    return any(v.sample is not None and (v.sample.cpu is not None or v.sample.memory is not None)
               for v in state.versions)


def resource_line(view: VersionView) -> Text:
    """One version's resources under the table: CPU, memory, restarts, and the digest it runs."""
    sample = view.sample
    line = Text(f"{view.version:<8}", style=ROLE_STYLE.get(view.role, ""))
    line.append(f" cpu {fmt.cores(sample.cpu if sample else None)}"
                f"  mem {fmt.mib(sample.memory if sample else None)}"
                f"  restarts {'—' if sample is None or sample.restarts is None else f'{sample.restarts:.0f}'}")
    if view.digest:
        line.append(f"  {view.digest[:19]}", style="dim")
    return line


class VersionsTable(StatePanel):
    """The table (tui.app.widgets.grid), built only when a cell, a note under it or the width
    changed.

    Only the candidate is marked red where it is the worse one: a baseline that is worse than
    the candidate is no alarm. A version taking no traffic shows its last figures from before
    the traffic stopped, dimmed, and a line under the table says so."""

    def show(self, state: State) -> None:
        self._state = state
        compared = compared_metrics(state)
        worse = {m: worse_version(m, state.versions) for m in compared}
        notes: list[Text] = []
        rows: list[list[Text]] = []
        for view in state.versions:
            shown = facts.figures(state, view)
            if shown.frozen:
                notes.append(Text(f"{view.version}: {shown.frozen}", style="dim italic"))
            rows.append(version_cells(view, shown, worse))
        if self.app.size.height >= RESOURCE_MIN_HEIGHT and measured_resources(state):
            notes += [resource_line(v) for v in state.versions]
        # cells never wrap: the height is the rows plus the notes as they wrap
        width = self.content_region.width
        shape = (len(rows), shape_of(self.app, notes, width))
        self.put((rows, notes, width), lambda: versions_table(rows, notes, width), shape)


def version_cells(view: VersionView, shown: facts.Figures, worse: dict[str, str | None]) -> list[Text]:
    """One version's row: name, role, weight actual/desired, ready, then its figures."""
    style = ROLE_STYLE.get(view.role, "")
    ready = Text(f"{view.ready}/{view.total}",
                 style="bold red" if view.total and view.ready < view.total else "")
    cells = [Text(view.version, style=style), Text(view.role.value, style=style),
             Text(f"{fmt.weight(view.actual_weight)}/{view.desired_weight}%",
                  style="" if view.actual_weight in (None, view.desired_weight) else "bold yellow"),
             ready]
    for _title, metric, render in COLUMNS:
        text = Text(render(_value(shown.sample, metric)))
        if shown.frozen:
            text.stylize("dim")
        elif worse.get(metric) == view.version and view.role is Role.CANDIDATE:
            text.stylize("bold red reverse")
        cells.append(text)
    return cells


def version_columns(rows: list[list[Text]], width: int) -> list[Column]:
    """Label columns as wide as their longest values ("candidate", "100%/100%"); the metric
    columns share what is left evenly, none narrower than its widest figure. A version name
    too long for the screen is cut with an ellipsis (never the figures at the right edge)."""
    def widest(index: int, title: str, least: int) -> int:
        return max([least, len(title)] + [row[index].cell_len for row in rows])

    least = [widest(4 + i, title, 0) for i, (title, _m, _f) in enumerate(COLUMNS)]
    rest = [Column("role", 10), Column("weight", 9, "right"),
            Column("ready", widest(3, "ready", 5), "right")]
    room = width - sum(c.width + GAP for c in rest) - sum(w + GAP for w in least) - GAP
    labels = [Column("version", min(widest(0, "version", 7), max(7, room))), *rest]
    left = width - sum(c.width + GAP for c in labels) - GAP * len(COLUMNS)
    shares = share(left, len(COLUMNS), least)
    return labels + [Column(title, w, "right") for (title, _m, _f), w in zip(COLUMNS, shares, strict=True)]


def versions_table(rows: list[list[Text]], notes: list[Text], width: int) -> RenderableType:
    table = grid(version_columns(rows, width), rows)
    return Group(table, *notes) if notes else table
