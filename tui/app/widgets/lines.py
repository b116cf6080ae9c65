"""Line charts (plotext) for wide terminals: both versions on one pair of axes per metric.

Sparklines scale each version to its own range; these share the axes, so "the candidate's p99
is twice the baseline's" is visible at a glance. Drawn only when the layout has room for them.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Vertical
from textual_plotext import PlotextPlot

from strategies.model import MetricSample, State
from tui.app.widgets.deferred import Deferred

RGB_BASELINE = (78, 161, 255)
RGB_CANDIDATE = (255, 159, 28)
PLOTS: tuple[tuple[str, str, float], ...] = (
    ("error_rate", "error %", 100.0),
    ("latency_p99", "p99 ms", 1000.0),
    ("throughput", "req/s", 1.0),
)


def points(samples: Sequence[MetricSample], metric: str, scale: float,
           now: float) -> tuple[list[float], list[float]]:
    """(seconds before now, value) pairs of the measured points; gaps stay gaps."""
    xs: list[float] = []
    ys: list[float] = []
    for sample in samples:
        value = sample.value(metric)
        if value is not None:
            xs.append(round(sample.at - now, 1))
            ys.append(value * scale)
    return xs, ys


class LineCharts(Deferred, Vertical):
    def compose(self) -> ComposeResult:
        for metric, _title, _scale in PLOTS:
            yield PlotextPlot(id=f"line-{metric}", classes="line-chart")

    def draw(self, state: State) -> None:
        if not self.display:
            return
        baseline, candidate = state.baseline, state.candidate
        for metric, title, scale in PLOTS:
            plot = self.query_one(f"#line-{metric}", PlotextPlot)
            plt = plot.plt
            plt.clear_data()
            plt.clear_figure()
            plt.title(title)
            for version, colour, role in ((baseline, RGB_BASELINE, "baseline"),
                                          (candidate, RGB_CANDIDATE, "candidate")):
                xs, ys = points(state.history.get(version, ()), metric, scale, state.at)
                if xs:
                    plt.plot(xs, ys, color=colour, label=f"{version} {role}", marker="braille")
            plt.xlabel("seconds ago")
            plot.refresh()
