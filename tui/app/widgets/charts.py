"""Charts: per-version sparklines of error %, p99 and req/s over the history the driver keeps.

Baseline and candidate get their own sparkline each, in distinct colours, side by side, so a
diverging candidate stands out even though each line is scaled to its own range.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static

from strategies.model import MetricSample, State
from tui.app import fmt
from tui.app.widgets.deferred import Deferred
from tui.app.widgets.versions import BASELINE_COLOUR, CANDIDATE_COLOUR

SERIES: tuple[tuple[str, str, Callable[[float | None], str]], ...] = (
    ("error_rate", "err %", fmt.pct),
    ("latency_p99", "p99", fmt.ms),
    ("throughput", "req/s", fmt.rate),
)


def series(samples: Sequence[MetricSample], metric: str) -> list[float]:
    """The measured points of one metric; gaps are dropped, never drawn as zero."""
    values = (s.value(metric) for s in samples)
    return [v for v in values if v is not None]


class Charts(Deferred, Vertical):
    """Three rows (error %, p99, req/s), each with a baseline and a candidate sparkline."""

    def compose(self) -> ComposeResult:
        yield Static(id="chart-legend")
        for metric, _title, _render in SERIES:
            with Horizontal(classes="chart-row"):
                yield Static(classes="chart-label", id=f"label-{metric}")
                yield Sparkline([], classes="baseline", id=f"base-{metric}")
                yield Sparkline([], classes="candidate", id=f"cand-{metric}")

    def draw(self, state: State) -> None:
        baseline, candidate = state.baseline, state.candidate
        history = state.history
        span = _span(history.get(candidate, ()) or history.get(baseline, ()))
        legend = Text()
        legend.append("■ ", style=f"bold {BASELINE_COLOUR}")
        legend.append(f"{baseline} baseline  ")
        legend.append("■ ", style=f"bold {CANDIDATE_COLOUR}")
        legend.append(f"{candidate} candidate")
        legend.append(f"   last {span}", style="dim")
        self.query_one("#chart-legend", Static).update(legend)
        for metric, title, render in SERIES:
            base = series(history.get(baseline, ()), metric)
            cand = series(history.get(candidate, ()), metric)
            label = Text(f"{title:<6}", style="bold")
            label.append(f"{render(base[-1] if base else None):>8}", style=BASELINE_COLOUR)
            label.append(f"{render(cand[-1] if cand else None):>8}", style=CANDIDATE_COLOUR)
            self.query_one(f"#label-{metric}", Static).update(label)
            self.query_one(f"#base-{metric}", Sparkline).data = base
            self.query_one(f"#cand-{metric}", Sparkline).data = cand


def _span(samples: Sequence[MetricSample]) -> str:
    if len(samples) < 2:
        return "—"
    return fmt.secs(samples[-1].at - samples[0].at)
