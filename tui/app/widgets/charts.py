"""Charts: baseline and candidate side by side on one shared, 0-based scale per metric.

Each row draws both versions' recent values against the same top (shown at the right), so a
flat 25 ms p99 is a low line and a candidate twice as slow is twice as tall. The values beside
the row are the ones the versions table shows (frozen once a version takes no traffic), never a
stale last point next to a dash there.

Rows: error %, p99 and req/s, plus the candidate's weight over time. On wide screens the line
charts beside (widgets.lines) plot error % and p99 against the gates' bounds, so this panel
keeps only traffic (req/s and weight): the two panels never plot the same thing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.geometry import Size

from strategies.model import MetricSample, Role, State
from tui.app import facts, fmt
from tui.app.charts_math import nice_axis, spark, tick_label
from tui.app.widgets.deferred import Deferred
from tui.app.widgets.drawn import Drawn
from tui.app.widgets.versions import BASELINE_COLOUR, CANDIDATE_COLOUR

# metric, title, formatter, scale to the shown unit, unit, kind of row
SERIES: tuple[tuple[str, str, Callable[[float | None], str], float, str, str], ...] = (
    ("error_rate", "err %", fmt.pct, 100.0, "%", "behaviour"),
    ("latency_p99", "p99", fmt.ms, 1000.0, "ms", "behaviour"),
    ("throughput", "req/s", fmt.rate, 1.0, "/s", "traffic"),
)
LABEL_WIDTH = 22
SCALE_WIDTH = 7


def series(samples: Sequence[MetricSample], metric: str, until: float | None = None) -> list[float]:
    """The measured points of one metric (up to `until`); gaps are dropped, never drawn as zero."""
    values = (s.value(metric) for s in samples if until is None or s.at <= until)
    return [v for v in values if v is not None]


def weight_series(state: State, samples: Sequence[MetricSample]) -> list[float]:
    """The candidate's weight in force at each sample's time, from the decisions' weights."""
    changes = [(e.at, e.details.get("weight")) for e in state.events
               if isinstance(e.details.get("weight"), int)]
    out: list[float] = []
    current = 0.0
    index = 0
    for sample in samples:
        while index < len(changes) and changes[index][0] <= sample.at:
            current = float(changes[index][1])  # type: ignore[arg-type]
            index += 1
        out.append(current)
    return out


class ChartRow(Drawn):
    """One metric: label and current values, the two sparklines, the shared scale's top."""

    DEFAULT_CSS = "ChartRow { height: 1; }"

    def __init__(self, *, id: str, classes: str) -> None:
        super().__init__(id=id, classes=classes)
        self.label = Text()
        self.lines: list[tuple[list[float], str]] = []  # (values, colour) per sparkline
        self.top = 1.0
        self.unit = ""

    def set(self, label: Text, lines: list[tuple[list[float], str]], top: float, unit: str) -> None:
        """Redraw only when the figures change (never a layout: its height is fixed), and
        repaint only the lines whose bars moved: a flat weight or an idle service adds points
        that draw the same bars."""
        self.label, self.lines, self.top, self.unit = label, lines, top, unit
        self.put((label, lines, top, unit), lambda: self.picture(self.size))

    def picture(self, size: Size) -> Group:
        """One text per screen line: a line whose bars did not move is not drawn again."""
        width, height = size.width, max(1, size.height)
        room = max(0, width - LABEL_WIDTH - SCALE_WIDTH - 1)
        each = max(1, (room - (len(self.lines) - 1)) // max(1, len(self.lines)))
        drawn = [spark(values, self.top, each, height) for values, _colour in self.lines]
        lines = []
        for row in range(height):
            out = Text(no_wrap=True, overflow="crop")
            if row == 0:
                label = self.label.copy()
                label.truncate(LABEL_WIDTH, pad=True)
                out.append_text(label)
            else:
                out.append(" " * LABEL_WIDTH)
            for index, (rows, (_values, colour)) in enumerate(zip(drawn, self.lines, strict=True)):
                if index:
                    out.append(" ")
                out.append(rows[row], style=colour)
            scale = tick_label(self.top, self.unit) if row == 0 else (
                tick_label(0, self.unit) if row == height - 1 else "")
            out.append(f" {scale:>{SCALE_WIDTH - 1}}", style="dim")
            lines.append(out)
        return Group(*lines)


class Charts(Deferred, Vertical):
    """The compact charts: one row per metric, both versions on a shared scale."""

    def compose(self) -> ComposeResult:
        yield Drawn(id="chart-legend")
        for metric, _title, _render, _scale, _unit, kind in SERIES:
            yield ChartRow(id=f"row-{metric}", classes=f"chart-row -{kind}")
        yield ChartRow(id="row-weight", classes="chart-row -traffic -weight")

    def draw(self, state: State) -> None:
        names = {Role.BASELINE: facts.baseline(state), Role.CANDIDATE: facts.candidate(state)}
        views = {v.role: v for v in state.versions}
        history = state.history
        span = _span(history.get(names[Role.CANDIDATE], ()) or history.get(names[Role.BASELINE], ()))
        legend = Text(no_wrap=True, overflow="ellipsis")
        legend.append("■ ", style=f"bold {BASELINE_COLOUR}")
        legend.append(f"{names[Role.BASELINE]} baseline  ")
        legend.append("■ ", style=f"bold {CANDIDATE_COLOUR}")
        legend.append(f"{names[Role.CANDIDATE]} candidate")
        legend.append(f"  last {span}, scale from 0", style="dim")
        self.query_one("#chart-legend", Drawn).put(legend, lambda: legend)  # one line: no layout
        for metric, title, render, scale, unit, _kind in SERIES:
            label = Text(f"{title:<6}", style="bold")
            lines: list[tuple[list[float], str]] = []
            for role, colour in ((Role.BASELINE, BASELINE_COLOUR), (Role.CANDIDATE, CANDIDATE_COLOUR)):
                view = views.get(role)
                shown = facts.figures(state, view) if view is not None else facts.Figures(None)
                until = facts.traffic_stopped_at(state) if shown.frozen else None
                values = [v * scale for v in series(history.get(names[role], ()), metric, until)]
                text = render(shown.sample.value(metric) if shown.sample is not None else None)
                label.append(f"{text:>8}", style=f"{colour} dim" if shown.frozen else colour)
                lines.append((values, colour))
            top = nice_axis(max((max(v) for v, _c in lines if v), default=0.0))[-1]
            self.query_one(f"#row-{metric}", ChartRow).set(label, lines, top, unit)
        samples = history.get(names[Role.CANDIDATE], ())
        weight = Text("weight", style="bold")
        weight.append(f"{state.rollout.weight:>15}%", style=CANDIDATE_COLOUR)
        self.query_one("#row-weight", ChartRow).set(
            weight, [(weight_series(state, samples), CANDIDATE_COLOUR)], 100.0, "%")


def _span(samples: Sequence[MetricSample]) -> str:
    if len(samples) < 2:
        return "—"
    return fmt.secs(samples[-1].at - samples[0].at)
