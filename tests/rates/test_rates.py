"""strategies.rates against hand-computed values and properties.

The rules of Prometheus' increase()/rate() (promql/functions.go, extrapolatedRate), as the
expected values below are computed by hand:

1. Take the samples with start < t <= end (Prometheus 3; 2.x also takes t == start, so the
   tests against a real 2.x server never put a sample exactly on the range start).
2. Fewer than 2 samples: no result.
3. raw = last - first, plus the previous value at every drop (a drop is a counter reset).
4. sampled = t_last - t_first; avg = sampled / (n - 1).
5. d_start = t_first - start; d_end = end - t_last.
6. If raw > 0 and first >= 0: d_zero = sampled * first / raw (where the counter would have
   been 0 going back at the observed slope); d_start = min(d_start, d_zero): never
   extrapolate below zero.
7. Each edge: if d < 1.1 * avg extend by d (a sample would have been there), otherwise by
   avg / 2 (the series started or stopped inside the range).
8. increase = raw * (sampled + extensions) / sampled; rate = increase / (end - start).

histogram_quantile (bucketQuantile): buckets sorted by bound, same bounds summed, counts made
monotonic (a count lower than one before it is raised to it); NaN (None here) without a +Inf
bucket, with fewer than 2 buckets or 0 observations; rank = q * total; the first bucket whose
count >= rank holds it; in +Inf -> the highest finite bound; first bucket with bound <= 0 ->
that bound; otherwise linear interpolation from the previous bound (0 for the first bucket).
"""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.ports import RawCounters
from strategies.rates import counter_increase, counter_rate, histogram_quantile, sample_from_counters

INF = math.inf


# --------------------------------------------------------------------------- hand-computed


def test_both_edges_close_extrapolates_to_the_range():
    # raw 20, sampled 20, avg 10, d_start 1 (d_zero 10), d_end 9: 20 * (20 + 1 + 9) / 20
    points = [(1.0, 10.0), (11.0, 20.0), (21.0, 30.0)]
    assert counter_increase(points, 0.0, 30.0) == pytest.approx(30.0)
    assert counter_rate(points, 0.0, 30.0) == pytest.approx(1.0)


def test_reset_adds_the_value_before_the_drop():
    # raw = 15 - 10 + 20 = 25; sampled 30, avg 10, d_start 1, d_end 9: 25 * 40 / 30
    points = [(1.0, 10.0), (11.0, 20.0), (21.0, 5.0), (31.0, 15.0)]
    assert counter_increase(points, 0.0, 40.0) == pytest.approx(25 * 40 / 30)


def test_never_extrapolates_below_zero():
    # raw 20, sampled 20, d_start 5 but d_zero = 20 * 1 / 20 = 1; d_end 0: 20 * 21 / 20
    points = [(5.0, 1.0), (15.0, 11.0), (25.0, 21.0)]
    assert counter_increase(points, 0.0, 25.0) == pytest.approx(21.0)


def test_gap_at_start_extends_by_half_an_interval():
    # raw 10, sampled 10, avg 5; d_start 20 >= 5.5 -> 2.5; d_end 0: 10 * 12.5 / 10
    points = [(20.0, 100.0), (25.0, 105.0), (30.0, 110.0)]
    assert counter_increase(points, 0.0, 30.0) == pytest.approx(12.5)


def test_edge_just_beyond_the_slack_is_a_gap():
    # avg 10, d_start 12 >= 1.1 * 10 -> 5 (d_zero 100 does not bite); d_end 0: 20 * 25 / 20
    points = [(12.0, 100.0), (22.0, 110.0), (32.0, 120.0)]
    assert counter_increase(points, 0.0, 32.0) == pytest.approx(25.0)
    # d_start 10.5 < 11: extrapolated all the way: 20 * 30.5 / 20
    assert counter_increase(points, 1.5, 32.0) == pytest.approx(30.5)


def test_gap_at_end_extends_by_half_an_interval():
    # raw 2, sampled 2, avg 1; d_start 1 < 1.1 -> 1; d_end 7 -> 0.5: 2 * 3.5 / 2
    points = [(1.0, 100.0), (2.0, 101.0), (3.0, 102.0)]
    assert counter_increase(points, 0.0, 10.0) == pytest.approx(3.5)
    assert counter_rate(points, 0.0, 10.0) == pytest.approx(0.35)


def test_range_is_open_at_start_closed_at_end():
    points = [(0.0, 0.0), (10.0, 10.0), (20.0, 20.0), (30.0, 30.0)]
    # (0, 20]: samples at 10 and 20 only; raw 10, sampled 10, d_start 10 (d_zero 10) < 11 -> 10
    assert counter_increase(points, 0.0, 20.0) == pytest.approx(20.0)
    # one sample in (25, 30]
    assert counter_increase(points, 25.0, 30.0) is None


def test_fewer_than_two_points_is_none():
    assert counter_increase([], 0, 10) is None
    assert counter_increase([(5.0, 3.0)], 0, 10) is None
    assert counter_rate([(5.0, 3.0), (6.0, 4.0)], 10, 10) is None


def test_flat_counter_is_zero_not_none():
    assert counter_increase([(1.0, 7.0), (2.0, 7.0), (3.0, 7.0)], 0.0, 3.0) == 0.0


def test_unsorted_points_are_sorted():
    points = [(21.0, 30.0), (1.0, 10.0), (11.0, 20.0)]
    assert counter_increase(points, 0.0, 30.0) == pytest.approx(30.0)


@pytest.mark.parametrize(("q", "expected"), [
    (0.5, 0.3),  # rank 20 in (0.1, 0.5]: 0.1 + 0.4 * 10/20
    (0.99, 0.98),  # rank 39.6 in (0.5, 1]: 0.5 + 0.5 * 9.6/10
    (0.25, 0.1),  # rank 10 == count of the first bucket: its upper bound
    (0.1, 0.04),  # rank 4 in (0, 0.1]: 0.1 * 4/10
])
def test_quantile_interpolates(q, expected):
    buckets = {0.1: 10, 0.5: 30, 1.0: 40, INF: 40}
    assert histogram_quantile(q, buckets) == pytest.approx(expected)


def test_quantile_in_inf_bucket_is_highest_finite_bound():
    assert histogram_quantile(0.9, {0.1: 10, 0.25: 12, INF: 20}) == 0.25


def test_quantile_out_of_range_and_undefined():
    buckets = {0.1: 10, INF: 20}
    assert histogram_quantile(-0.5, buckets) == -INF
    assert histogram_quantile(1.5, buckets) == INF
    assert histogram_quantile(math.nan, buckets) is None
    assert histogram_quantile(0.5, {0.1: 10, 0.5: 20}) is None  # no +Inf
    assert histogram_quantile(0.5, {0.1: 0, INF: 0}) is None  # no observations
    assert histogram_quantile(0.5, {INF: 10}) is None  # one bucket
    assert histogram_quantile(0.5, {}) is None


def test_quantile_fixes_non_monotonic_counts():
    # 0.5's count 8 is raised to 10: rank 10 lands in the first bucket
    assert histogram_quantile(0.5, {0.1: 10, 0.5: 8, INF: 20}) == pytest.approx(0.1)


def test_quantile_lowest_bound_not_positive():
    assert histogram_quantile(0.1, {-1.0: 5, 0.0: 10, INF: 10}) == -1.0


def test_quantile_q_one_and_zero():
    buckets = {0.1: 10, 0.5: 30, 1.0: 40, INF: 40}
    assert histogram_quantile(1.0, buckets) == pytest.approx(1.0)  # rank 40 first hit at 1.0
    assert histogram_quantile(0.0, buckets) == pytest.approx(0.0)


# --------------------------------------------------------------------------- the sample


def _counters(at: float, n: float, errors: float, fast: float) -> RawCounters:
    """n requests, `fast` of them under 0.1s, the rest under 0.5s."""
    return RawCounters(version="v2", at=at, requests_total=n, errors_total=errors,
                       latency_buckets={"0.1": fast, "0.5": n, "+Inf": n}, latency_sum=None)


def test_sample_from_counters_hand_computed():
    # 10 requests/s, 1 error/s, 80% under 0.1s, scraped every second, window 10s ending at 10
    series = [_counters(float(t), 10.0 * t + 100, 1.0 * t, 8.0 * t + 80) for t in range(0, 11)]
    series.append(RawCounters("v1", 10.0, 5, 5))  # another version: ignored
    sample = sample_from_counters("v2", series, now=10.0, window=10.0)
    assert sample.version == "v2" and sample.at == 10.0
    assert sample.requests == pytest.approx(100.0)  # 9 s sampled + 1 s extrapolated
    assert sample.errors == pytest.approx(10.0)
    assert sample.error_ratio == pytest.approx(0.1)
    assert sample.throughput == pytest.approx(10.0)
    # increases: 0.1 -> 80, 0.5 -> 100, +Inf -> 100
    assert sample.latency_p50 == pytest.approx(0.1 * 50 / 80)
    assert sample.latency_p95 == pytest.approx(0.1 + 0.4 * 15 / 20)
    assert sample.latency_p99 == pytest.approx(0.1 + 0.4 * 19 / 20)


def test_sample_unknown_without_two_scrapes_or_traffic():
    one = sample_from_counters("v2", [_counters(9.5, 10, 0, 5)], now=10.0, window=10.0)
    assert (one.requests, one.throughput, one.error_ratio, one.latency_p99) == (None,) * 4
    idle = sample_from_counters("v2", [_counters(float(t), 10, 0, 5) for t in range(11)],
                                now=10.0, window=10.0)
    assert idle.requests == 0.0 and idle.throughput == 0.0
    assert idle.error_ratio is None and idle.latency_p50 is None


def test_sample_without_buckets_has_no_latency():
    series = [RawCounters("v2", float(t), 10.0 * t, 0.0) for t in range(11)]
    sample = sample_from_counters("v2", series, now=10.0, window=10.0)
    assert sample.requests == pytest.approx(100.0)
    assert sample.latency_p99 is None


# --------------------------------------------------------------------------- properties


def _true_counter(increments: list[float], resets: list[bool]) -> tuple[list[float], float]:
    """Scraped values of a counter that restarts at 0 right after some scrapes; total increase."""
    values = [increments[0]]
    for inc, reset in zip(increments[1:], resets, strict=False):
        values.append(inc if reset else values[-1] + inc)
    return values, sum(increments[1:])


counters = st.integers(min_value=2, max_value=40).flatmap(lambda n: st.tuples(
    st.lists(st.floats(0, 1000, allow_nan=False), min_size=n, max_size=n),
    st.lists(st.booleans(), min_size=n - 1, max_size=n - 1),
    st.floats(0.1, 30), st.floats(0.01, 1.0)))


@settings(max_examples=200, deadline=None)
@given(counters)
def test_increase_never_negative_and_never_below_the_raw_increase(data):
    increments, resets, step, phase = data
    values, _ = _true_counter(increments, resets)
    times = [1000 + i * step for i in range(len(values))]
    start, end = times[0] - phase * step, times[-1] + phase * step * 3
    got = counter_increase(list(zip(times, values, strict=True)), start, end)
    assert got is not None and got >= 0
    seen = sum(max(0.0, b - a) if b >= a else b for a, b in itertools.pairwise(values))
    assert got >= seen * (1 - 1e-9) - 1e-9  # float rounding of last - first + dropped
    # extrapolation adds at most 1.1 average intervals at each end
    assert got <= seen * (1 + 2.2 / (len(values) - 1)) * (1 + 1e-9) + 1e-9


@settings(max_examples=200, deadline=None)
@given(st.floats(0.01, 500), st.floats(0, 1e6), st.integers(2, 60), st.floats(0.05, 20),
       st.floats(0.001, 1.0), st.lists(st.integers(1, 59), max_size=4))
def test_linear_counter_with_visible_resets_gives_the_true_increase(slope, v0, n, step, phase,
                                                                    reset_at):
    # Samples every `step`, the first `phase * step` after the range start and the last one
    # at most a step before its end: the samples cover the window exactly.
    start = 5000.0
    times = [start + phase * step + i * step for i in range(n)]
    end = times[-1] + (1 - phase) * step
    values, offset = [], 0.0
    for i, t in enumerate(times):
        if i in reset_at and values[-1] > 1.5 * slope * step:  # restarted after a scrape,
            offset += values[-1]  # visibly (the next scrape reads lower)
        values.append(v0 + slope * (t - start) - offset)
    got = counter_increase(list(zip(times, values, strict=True)), start, end)
    assert got == pytest.approx(slope * (end - start), rel=1e-6)
    assert counter_rate(list(zip(times, values, strict=True)), start, end) == pytest.approx(
        slope, rel=1e-6)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from([0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0]),
                       st.floats(0, 1000), min_size=1),
       st.floats(0, 1000), st.floats(0, 1))
def test_quantile_stays_within_the_bounds(buckets, extra, q):
    bounds = sorted(buckets)
    cumulative, total = {}, 0.0
    for bound in bounds:
        total += buckets[bound]
        cumulative[bound] = total
    cumulative[INF] = total + extra
    got = histogram_quantile(q, cumulative)
    if total + extra == 0:
        assert got is None
    elif got is not None:
        assert 0.0 <= got <= bounds[-1]
        # monotone in q
        higher = histogram_quantile(min(1.0, q + 0.1), cumulative)
        assert higher is None or higher >= got - 1e-12


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 50), st.floats(0, 50), st.booleans(), st.booleans()),
                min_size=2, max_size=30),
       st.floats(0.5, 1.5), st.floats(0.1, 0.9))
def test_sample_latency_equals_quantile_of_per_bucket_increases(steps, interval, phase):
    """The one-pass bucket path of sample_from_counters is increase() per bucket, resets and
    scrapes missing a bucket included."""
    series, fast, slow = [], 0.0, 0.0
    for k, (add_fast, add_slow, reset, drop_label) in enumerate(steps):
        if reset and k:
            fast = slow = 0.0
        fast, slow = fast + add_fast, slow + add_fast + add_slow
        buckets = {"0.1": fast, "+Inf": slow}
        if drop_label and 0 < k < len(steps) - 1:
            del buckets["0.1"]
        series.append(RawCounters("v2", 100 + k * interval, slow, 0.0, buckets))
    now = series[-1].at + phase * interval
    window = now - series[0].at + phase * interval
    sample = sample_from_counters("v2", series, now, window)
    per_bucket = {}
    for label, bound in (("0.1", 0.1), ("+Inf", INF)):
        points = [(c.at, c.latency_buckets[label]) for c in series if label in c.latency_buckets]
        increase = counter_increase(points, now - window, now)
        if increase is not None:
            per_bucket[bound] = increase
    requests = counter_increase([(c.at, c.requests_total) for c in series], now - window, now)
    assert sample.requests == pytest.approx(requests)
    for q, got in ((0.5, sample.latency_p50), (0.99, sample.latency_p99)):
        expected = histogram_quantile(q, per_bucket) if requests else None
        assert got == pytest.approx(expected, abs=1e-9) if expected is not None else got is None
