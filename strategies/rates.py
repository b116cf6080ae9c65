"""Prometheus counter math on raw samples: increase(), rate() and histogram_quantile().

Live scraping and trace replay both turn cumulative counters into a MetricSample here, with the
same rules Prometheus applies (promql/functions.go: extrapolatedRate, bucketQuantile), so a gate
sees the same numbers whether they came from a Prometheus server or from our own scrape.
Pure functions: no clock, no I/O.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import operator
from collections.abc import Mapping, Sequence

from strategies.model import MetricSample, Tally, frozen_map
from strategies.ports import RawCounters

Point = tuple[float, float]  # (epoch seconds, cumulative value)

EXTRAPOLATION_SLACK = 1.1  # Prometheus extrapolates to an edge only if it is this close


def _in_range(points: Sequence[Point], start: float, end: float) -> list[Point]:
    """Points with start < t <= end, in time order (Prometheus 3 range semantics)."""
    return sorted((p for p in points if start < p[0] <= end), key=_time_of)


def _time_of(point: Point) -> float:
    return point[0]


def counter_increase(points: Sequence[Point], start: float, end: float) -> float | None:
    """Prometheus increase() over (start, end]; None with fewer than 2 points in range.

    The raw increase between the first and last sample is stretched to the range edges, but
    only to an edge within 1.1x the average sample interval (otherwise by half an interval:
    the series probably began or ended there), and never back past the counter's zero point.
    """
    return _extrapolated(_in_range(points, start, end), start, end)


def _extrapolated(picked: Sequence[Point], start: float, end: float) -> float | None:
    """extrapolatedRate's increase on points already in range and in time order."""
    if len(picked) < 2:
        return None
    values = [v for _, v in picked]
    return _stretch(_raw(values), picked[0][0], values[0], picked[-1][0], len(values), start,
                    end)


def _raw(values: list[float]) -> float:
    """last - first, plus the value before every drop (a drop means the counter reset to 0)."""
    result = values[-1] - values[0]
    if values != sorted(values):  # the common no-reset case stays in C
        result += sum(p for p, v in itertools.pairwise(values) if v < p)
    return result


def _stretch(result: float, first_t: float, first_v: float, last_t: float, count: int,
             start: float, end: float) -> float | None:
    """Extrapolate a raw increase seen from first_t to last_t (count samples) to the range."""
    sampled = last_t - first_t
    if sampled <= 0:
        return None
    to_start = first_t - start
    to_end = end - last_t
    average = sampled / (count - 1)
    if result > 0 and first_v >= 0:
        to_zero = sampled * (first_v / result)
        to_start = min(to_start, to_zero)
    threshold = average * EXTRAPOLATION_SLACK
    interval = sampled
    interval += to_start if to_start < threshold else average / 2
    interval += to_end if to_end < threshold else average / 2
    return result * (interval / sampled)


def counter_rate(points: Sequence[Point], start: float, end: float) -> float | None:
    """Prometheus rate(): the extrapolated increase per second of the range."""
    if end <= start:
        return None
    increase = counter_increase(points, start, end)
    return None if increase is None else increase / (end - start)


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """Prometheus bucketQuantile on classic buckets (upper bound -> cumulative count).

    None where Prometheus answers NaN (no +Inf bucket, fewer than 2 buckets, no observations,
    q is NaN); -inf / +inf for q below 0 / above 1; the highest finite bound when the rank
    falls in the +Inf bucket; linear interpolation inside a bucket, the lowest bucket starting
    at 0 unless its bound is <= 0. Counts that go down with the bound (possible with rates of
    separately extrapolated buckets) are raised to keep the buckets monotonic.
    """
    if math.isnan(q):
        return None
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    prepared = _monotonic(buckets)
    return None if prepared is None else _quantile(q, *prepared)


def _monotonic(buckets: Mapping[float, float]) -> tuple[list[float], list[float]] | None:
    """Sorted bounds and monotonic counts (same bounds summed); None where no quantile exists."""
    merged: dict[float, float] = {}
    for bound, count in buckets.items():
        key = float(bound)
        merged[key] = merged.get(key, 0.0) + float(count)
    ordered = sorted(merged.items())
    if len(ordered) < 2 or ordered[-1][0] != math.inf:
        return None
    highest = -math.inf
    bounds: list[float] = []
    counts: list[float] = []
    for bound, count in ordered:
        if count > highest:
            highest = count
        bounds.append(bound)
        counts.append(highest)
    observations = counts[-1]
    if observations == 0 or math.isnan(observations):
        return None
    return bounds, counts


def _quantile(q: float, bounds: list[float], counts: list[float]) -> float | None:
    rank = q * counts[-1]
    index = bisect.bisect_left(counts, rank, 0, len(counts) - 1)
    if index == len(counts) - 1:
        return bounds[-2]
    if index == 0 and bounds[0] <= 0:
        return bounds[0]
    start, end, count = 0.0, bounds[index], counts[index]
    if index > 0:
        start = bounds[index - 1]
        count -= counts[index - 1]
        rank -= counts[index - 1]
    if count == 0:  # only when q == 0 and the lowest bucket is empty: 0/0 in Prometheus
        return None
    return start + (end - start) * (rank / count)


@functools.lru_cache(maxsize=4096)
def parse_bound(text: str) -> float | None:
    """A bucket's `le` label as a number ("+Inf" -> inf); None if it is not one."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def sample_from_counters(version: str, series: Sequence[RawCounters], now: float,
                         window: float) -> MetricSample:
    """One version's MetricSample over (now - window, now] from its raw counter history.

    Counters of other versions in `series` are ignored. Each latency bucket's increase is
    computed on its own (as `rate(..._bucket[w])` does) before the quantile is taken. Fields
    that cannot be known (fewer than two scrapes in the window, no traffic) stay None.
    """
    start = now - window
    own = sorted((c for c in series if c.version == version and start < c.at <= now),
                 key=_counters_time)
    requests = _extrapolated([(c.at, c.requests_total) for c in own], start, now)
    errors = _extrapolated([(c.at, c.errors_total) for c in own], start, now)
    throughput = None if requests is None or window <= 0 else requests / window
    ratio = None
    if requests is not None and errors is not None and requests > 0:
        ratio = min(1.0, max(0.0, errors / requests))
    p50 = p95 = p99 = None
    increases: dict[float, float] = {}
    if requests is not None and requests > 0:
        increases = _bucket_increases(own, start, now)
        prepared = _monotonic(increases)
        if prepared is not None:
            p50, p95, p99 = (_quantile(q, *prepared) for q in (0.5, 0.95, 0.99))
    return MetricSample(version=version, at=now, requests=requests, throughput=throughput,
                        error_ratio=ratio, latency_p50=p50, latency_p95=p95, latency_p99=p99,
                        errors=errors, latency_buckets=bucket_labels(increases))


def counter_growth(old: float, new: float) -> float:
    """A counter's growth between two reads; one that went down was reset, and what it shows
    now was counted since (Prometheus' rule)."""
    return new if new < old else new - old


def counted_between(before: RawCounters, after: RawCounters) -> Tally:
    """What a version served between two recordings of its counters."""
    buckets = {le: counter_growth(before.latency_buckets.get(le, 0.0), count)
               for le, count in after.latency_buckets.items()}
    return Tally(counter_growth(before.requests_total, after.requests_total),
                 counter_growth(before.errors_total, after.errors_total), frozen_map(buckets))


def bucket_labels(buckets: Mapping[float, float]) -> Mapping[str, float]:
    """Window bucket increases keyed by `le` label again ("0.1", "+Inf"), as MetricSample
    carries them for histogram comparisons (e.g. a Mann-Whitney gate)."""
    return frozen_map({("+Inf" if math.isinf(bound) else f"{bound:g}"): count
                       for bound, count in sorted(buckets.items())})


def _counters_time(counters: RawCounters) -> float:
    return counters.at


def _bucket_increases(own: Sequence[RawCounters], start: float, end: float) -> dict[float, float]:
    """Per-bucket extrapolated increase, as `increase(x_bucket[w])` gives per `le`.

    A bucket missing from some scrapes is computed from the scrapes that have it.
    """
    if len(own) < 2:
        return {}
    tables = [c.latency_buckets for c in own]
    times = [c.at for c in own]
    out: dict[float, float] = {}
    for label in set().union(*tables):
        bound = parse_bound(label)
        if bound is None:
            continue
        try:
            values = list(map(operator.itemgetter(label), tables))
        except KeyError:
            increase = _extrapolated([(at, t[label]) for at, t in zip(times, tables, strict=True)
                                      if label in t], start, end)
        else:
            increase = _stretch(_raw(values), times[0], values[0], times[-1], len(values),
                                start, end)
        if increase is not None:
            out[bound] = out.get(bound, 0.0) + increase
    return out
