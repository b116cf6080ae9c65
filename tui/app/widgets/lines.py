"""Line charts (braille, tui.app.line_plot) for wide terminals: error % and p99 of both versions on shared axes,
with the gate's bound drawn across, so "the candidate crossed the line" is visible at a glance.

The y axis starts at 0 (a rate or a latency is never negative) and has round ticks with their
unit; the x axis is in round seconds before now. The legend sits in the panel's title, off the
data. Traffic (req/s, weight) is plotted by the compact charts panel instead, never twice.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.segment import Segment
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget

from strategies.model import GateResult, MetricSample, State
from tui.app import facts
from tui.app.charts_math import nice_axis, nice_step, tick_label
from tui.app.line_plot import Figure, draw
from tui.app.widgets.deferred import Deferred
from tui.app.widgets.drawn import set_border_title
from tui.app.widgets.versions import BASELINE_COLOUR, CANDIDATE_COLOUR

RGB_BASELINE = (78, 161, 255)
RGB_CANDIDATE = (255, 159, 28)
RGB_BOUND = (220, 60, 60)
PLOTS: tuple[tuple[str, str, float, str], ...] = (
    ("error_rate", "error rate", 100.0, "%"),
    ("latency_p99", "p99 latency", 1000.0, "ms"),
)


def points(samples: Sequence[MetricSample], metric: str, scale: float,
           now: float, until: float | None = None) -> tuple[list[float], list[float]]:
    """(seconds before now, value) pairs of the measured points; gaps stay gaps."""
    xs: list[float] = []
    ys: list[float] = []
    for sample in samples:
        value = sample.value(metric)
        if value is not None and (until is None or sample.at <= until):
            xs.append(round(sample.at - now, 1))
            ys.append(value * scale)
    return xs, ys


def x_ticks(oldest: float) -> list[float]:
    """Round seconds from the oldest point (negative) up to 0, at a nice step."""
    span = max(1.0, -oldest)
    step = nice_step(span, 4)
    ticks = [0.0]
    while ticks[-1] - step >= oldest - 1e-9:
        ticks.append(round(ticks[-1] - step, 6))
    if len(ticks) < 2:  # data only a moment old: still one step of axis, never a zero-width one
        ticks.append(-step)
    return sorted(ticks)


def legend_markup(state: State) -> str:
    return (f"[{BASELINE_COLOUR}]━ {facts.baseline(state)} baseline[/]  "
            f"[{CANDIDATE_COLOUR}]━ {facts.candidate(state)} candidate[/]  "
            f"[#dc3c3c]━ gate bound[/]")


def bound_on_plot(gate: GateResult, metric: str) -> float | None:
    """The gate's bound in the plotted metric's own unit, or None when it has none there. A
    point gate's threshold is one (p99 ≤ 500ms); an error-rate share is a share of requests, as
    the plot is; a p99 gate tested as "≤ 1% of requests slower than 400ms" is p99 ≤ 400ms, so
    its latency is drawn (its 1% drawn as a latency read as a 10 ms line)."""
    if gate.metric != metric or gate.comparison != "max":
        return None
    if gate.scale == "" or (gate.scale == "share" and metric == "error_rate"):
        return gate.threshold
    return gate.limit if gate.scale == "share" else None


def figure(state: State, metric: str, title: str, scale: float, unit: str) -> Figure:
    stopped = facts.traffic_stopped_at(state)
    lines = []
    tops: list[float] = []
    oldest = 0.0
    for version, colour in ((facts.baseline(state), RGB_BASELINE),
                            (facts.candidate(state), RGB_CANDIDATE)):
        until = stopped if version == facts.candidate(state) else None
        xs, ys = points(state.history.get(version, ()), metric, scale, state.at, until)
        if xs:
            lines.append((tuple(xs), tuple(ys), colour))
            tops.append(max(ys))
            oldest = min(oldest, xs[0])
    bounds = [b * scale for b in (bound_on_plot(g, metric) for g in state.gates) if b is not None]
    tops += bounds[:1]
    ticks = nice_axis(max(tops, default=0.0))
    xt = x_ticks(oldest if oldest < 0 else -60.0)
    return Figure(f"{title} ({unit})", tuple(lines), bounds[0] if bounds else None, RGB_BOUND,
                  tuple(ticks), tuple(tick_label(t, unit) for t in ticks), tuple(xt),
                  tuple("now" if t == 0 else f"{t:g}s" for t in xt))


class LinePlot(Widget):
    """One plot, drawn line by line straight into Strips (no Rich rendering on the way): its
    picture is built again only when its Figure or its size changes, and only the lines that
    differ from the last picture are repainted (a new point each second moves a line or two;
    the box, the labels and the empty rows stay as they were)."""

    DEFAULT_CSS = "LinePlot { height: 1fr; }"

    def __init__(self, *, id: str, classes: str) -> None:
        super().__init__(id=id, classes=classes)
        self.figure: Figure | None = None
        self._picture: tuple[Size, Figure, list[Strip]] | None = None

    def show(self, fig: Figure) -> None:
        size = self.content_size
        old = self._picture[2] if self._picture is not None and self._picture[0] == size else None
        self.figure = fig
        if old is None:
            self.refresh()
            return
        new = self.strips(size)
        for y in range(max(len(old), len(new))):
            if y >= len(old) or y >= len(new) or old[y] != new[y]:
                self.refresh(Region(0, y, size.width, 1))

    def render_line(self, y: int) -> Strip:
        strips = self.strips(self.content_size)
        return strips[y] if y < len(strips) else Strip.blank(self.content_size.width, self.rich_style)

    def strips(self, size: Size) -> list[Strip]:
        if self.figure is None:
            return []
        picture = self._picture
        if picture is None or picture[0] != size or picture[1] is not self.figure:
            base = self.rich_style
            rows = draw(self.figure, size.width, size.height)
            strips = [Strip([Segment(text, style) for text, style in row], size.width)
                      .apply_style(base) for row in rows]
            picture = self._picture = (size, self.figure, strips)
        return picture[2]


class LineCharts(Deferred, Vertical):
    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.figures: dict[str, Figure] = {}
        self.draws = 0  # plots drawn again (tests count them)

    def compose(self) -> ComposeResult:
        for metric, _title, _scale, _unit in PLOTS:
            yield LinePlot(id=f"line-{metric}", classes="line-chart")

    def draw(self, state: State) -> None:
        if not self.display:
            return
        set_border_title(self, "over time, shared axes · " + legend_markup(state))
        for metric, title, scale, unit in PLOTS:
            fig = figure(state, metric, title, scale, unit)
            if self.figures.get(metric) == fig:
                continue
            self.figures[metric] = fig
            self.query_one(f"#line-{metric}", LinePlot).show(fig)
            self.draws += 1
