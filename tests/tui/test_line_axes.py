"""The line charts' time axis never collapses to zero width (a zero span would put every
point at one column)."""

from __future__ import annotations

from strategies.model import GateResult, GateStatus, Severity
from tui.app.widgets.lines import bound_on_plot, x_ticks


def test_time_axis_has_at_least_one_step_even_for_data_a_moment_old() -> None:
    for oldest in (-1e-7, -0.01, -0.5, -1.0, -60.0, -3600.0):
        ticks = x_ticks(oldest)
        assert len(ticks) >= 2 and ticks[-1] == 0.0 and ticks[0] < 0.0
        assert ticks == sorted(ticks)
    assert x_ticks(-60.0) == [-60.0, -40.0, -20.0, 0.0]


def test_a_bound_is_drawn_only_in_the_plotted_metrics_own_unit() -> None:
    """A p99 gate tested as "≤ 1% of requests slower than 400ms" is p99 ≤ 400ms: its latency is
    drawn, never its 1% as a 10 ms line. Point gates and error-rate shares are drawn as they are."""
    def gate(metric: str, scale: str, comparison: str = "max",
             limit: float | None = None) -> GateResult:
        return GateResult("g", metric, Severity.CRITICAL, GateStatus.PASS, threshold=0.01,
                          comparison=comparison, scale=scale, limit=limit)

    assert bound_on_plot(gate("latency_p99", "share", limit=0.4), "latency_p99") == 0.4
    assert bound_on_plot(gate("latency_p99", "share"), "latency_p99") is None
    assert bound_on_plot(gate("latency_p99", ""), "latency_p99") == 0.01  # p99 ≤ 10ms, a point gate
    assert bound_on_plot(gate("error_rate", "share"), "error_rate") == 0.01
    assert bound_on_plot(gate("error_rate", ""), "error_rate") == 0.01
    assert bound_on_plot(gate("error_rate", "ratio", "max_ratio"), "error_rate") is None
    assert bound_on_plot(gate("latency_p99", "share", "max_ratio", 0.4), "latency_p99") is None
    assert bound_on_plot(gate("error_rate", ""), "latency_p99") is None
