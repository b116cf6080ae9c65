"""The line charts' time axis never collapses to zero width (a zero span would put every
point at one column)."""

from __future__ import annotations

from tui.app.widgets.lines import x_ticks


def test_time_axis_has_at_least_one_step_even_for_data_a_moment_old() -> None:
    for oldest in (-1e-7, -0.01, -0.5, -1.0, -60.0, -3600.0):
        ticks = x_ticks(oldest)
        assert len(ticks) >= 2 and ticks[-1] == 0.0 and ticks[0] < 0.0
        assert ticks == sorted(ticks)
    assert x_ticks(-60.0) == [-60.0, -40.0, -20.0, 0.0]
