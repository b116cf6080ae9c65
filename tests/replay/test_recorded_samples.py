"""The sample the live engine judged, kept on each counters line, and how a replay uses it.

A replay cannot make the live samples up from summed counters: the scrape source counts each
instance on its own (a new instance's first scrape only anchors), Prometheus counts nothing
exactly (its gates count window shares). So the recorder keeps the sample; the replay judges on
it at the recorded window, and recomputes only the window (never the tallies) at another one.
The live round trips are in test_prometheus_roundtrip.py and test_live_roundtrip.py.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest

from collectors.replay_adapters import Collection, TraceMetricSource, stream_timeline
from strategies.model import MetricSample, Tally, frozen_map
from strategies.ports import RawCounters
from strategies.trace import TraceLineError, TraceRecord, counters_line, parse_line, tick_line
from tests.replay.test_replay import SPEC  # window 5 s

TALLY = Tally(120.0, 3.0, frozen_map({"0.1": 100.0, "+Inf": 120.0}))


def live_sample(version: str, at: float, tally: Tally | None = TALLY) -> MetricSample:
    return MetricSample(version=version, at=at, requests=50.0, throughput=10.0, error_ratio=0.02,
                        errors=1.0, latency_p50=0.01, latency_p95=None, latency_p99=0.2,
                        custom=frozen_map({"orders": 7.0, "visits": None}), tally=tally)


def line(version: str, at: float, requests: float, *, sample: MetricSample | None = None,
         window: float = 5.0) -> TraceRecord:
    raw = RawCounters(version, at, requests, 0.0, {"0.1": requests, "+Inf": requests})
    parsed = parse_line(counters_line(raw, "checkout", sample=sample, window=window), 1)
    assert isinstance(parsed, TraceRecord)
    return parsed


def test_a_sample_goes_through_its_line_unchanged():
    for tally in (TALLY, None):
        sample = live_sample("v2", 1_800_000_000.25, tally)
        record = line("v2", sample.at, 10.0, sample=sample)
        assert record.sample == sample and record.window == 5.0


@pytest.mark.parametrize(("sample", "why"), [
    ({"requests": 1}, "sample: window is missing"),
    ({"window": 0}, "sample: window must be more than 0 seconds"),
    ({"window": 5, "latency_p99": -1}, "sample: latency_p99 must be a finite number >= 0"),
    ({"window": 5, "custom": [1]}, "sample: custom must be an object"),
    ({"window": 5, "tally": {"errors": 1}}, "sample: tally: requests is missing"),
    ({"window": 5, "tally": 3}, "sample: tally must be an object"),
    ([5], "sample must be an object"),
])
def test_a_sample_that_is_not_one_is_a_bad_line_that_says_why(sample, why):
    body = {"ts": 1_800_000_000, "version": "v2", "requests_total": 1, "errors_total": 0,
            "sample": sample}
    with pytest.raises(TraceLineError, match=why.replace("[", r"\[")):
        parse_line(json.dumps(body))


def collect(source: TraceMetricSource, collection: Collection | None) -> dict[str, MetricSample]:
    source.feed(collection)
    return dict(asyncio.run(source.collect(SPEC.versions, None, 0.0)).samples)


def test_at_the_recorded_window_the_replay_judges_the_live_sample():
    source = TraceMetricSource(SPEC)
    sample = live_sample("v2", 7.0)
    got = collect(source, Collection(7.0, {"v2": line("v2", 7.0, 10.0, sample=sample)}))
    assert got["v2"] == sample


def test_at_another_window_the_window_is_recomputed_and_the_live_tallies_kept():
    """The tallies are the live source's, not ones counted from the summed counters (another
    origin: mixing them would count the difference as traffic)."""
    source = TraceMetricSource(replace(SPEC, metrics=replace(SPEC.metrics, window=3.0)))
    for t in range(4):
        got = collect(source, Collection(float(t), {"v2": line(
            "v2", float(t), 10.0 * t, sample=live_sample("v2", float(t), Tally(float(t))))}))
    assert got["v2"].tally == Tally(3.0)
    assert got["v2"].requests == pytest.approx(30.0)  # (0, 3]: 10/s, extrapolated to the edge
    assert got["v2"].latency_p99 != 0.2


def test_a_window_source_that_read_no_series_for_a_version_gives_it_no_values():
    """Prometheus answers without a version's series as a sample with no values; a replay
    must not keep judging that version's last window (the scrape source would)."""
    source = TraceMetricSource(SPEC)
    collect(source, Collection(1.0, {"v1": line("v1", 1.0, 5.0, sample=live_sample("v1", 1.0, None)),
                                     "v2": line("v2", 1.0, 5.0, sample=live_sample("v2", 1.0, None))}))
    got = collect(source, Collection(2.0, {"v1": line("v1", 2.0, 9.0,
                                                      sample=live_sample("v1", 2.0, None))}))
    assert got["v2"] == MetricSample(version="v2", at=2.0)


def test_a_recorded_tick_that_read_no_counters_without_an_error_is_a_read_not_an_outage():
    ticks = [parse_line(tick_line(10.0, "checkout")),
             parse_line(tick_line(11.0, "checkout", "prometheus: query timed out"))]
    replayed = list(stream_timeline(ticks, 1.0, recorded_ticks=True))
    assert [(t.at, t.collection) for t in replayed] == [(10.0, Collection(10.0)), (11.0, None)]


def test_tallies_of_two_origins_are_never_mixed():
    """A trace appended to by an older releasedeck (lines without samples) and a newer one:
    each version keeps the kind of counting its first line gave, so no tick counts the
    difference between two origins as traffic (own tallies here start at 0, live ones at
    1000)."""
    source = TraceMetricSource(SPEC)
    kept, own = [], []
    for t in range(8):
        live = live_sample("v2", float(t), Tally(1000.0 + t)) if t not in (3, 4) else None
        later = live_sample("v1", float(t), Tally(5000.0 + t)) if t >= 2 else None
        got = collect(source, Collection(float(t), {"v2": line("v2", float(t), 10.0 * t,
                                                                 sample=live),
                                                    "v1": line("v1", float(t), 10.0 * t,
                                                               sample=later)}))
        kept.append(got["v2"].tally.requests)
        own.append(got["v1"].tally.requests if got["v1"].tally is not None else None)
    assert kept == [1000.0, 1001.0, 1002.0, 1002.0, 1002.0, 1005.0, 1006.0, 1007.0]
    assert own == [None, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0]
