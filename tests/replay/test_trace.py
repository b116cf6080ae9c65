"""The trace format: tolerant parsing, bad lines with numbers, round trips, grouping."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.replay_adapters import group_collections
from strategies.model import Event, parse_rfc3339
from strategies.ports import RawCounters
from strategies.trace import TraceLineError, counters_line, event_line, parse_line, parse_lines

LINE = ('{"ts": "2026-11-21T10:00:01.000Z", "service": "checkout", "version": "v2", '
        '"requests_total": 1520, "errors_total": 3, "latency_buckets": {"0.005": 10, '
        '"0.1": 1500, "+Inf": 1520}}')


def test_parses_the_documented_example():
    record = parse_line(LINE, 7)
    assert record is not None
    c = record.counters
    assert (c.version, c.requests_total, c.errors_total) == ("v2", 1520.0, 3.0)
    assert c.at == parse_rfc3339("2026-11-21T10:00:01.000Z")
    assert c.latency_buckets == {"0.005": 10.0, "0.1": 1500.0, "+Inf": 1520.0}
    assert (record.service, record.weight, record.line) == ("checkout", None, 7)


def test_unknown_fields_are_ignored_and_epoch_seconds_accepted():
    data = json.loads(LINE)
    data.update({"ts": 1800000000.25, "pod": "x", "labels": {"a": 1}, "weight": 12.5,
                 "ready": 2, "total": 3})
    record = parse_line(json.dumps(data))
    assert record is not None
    assert record.counters.at == 1800000000.25
    assert (record.weight, record.ready, record.total) == (12.5, 2, 3)


@pytest.mark.parametrize("text", [
    '{"kind": "event", "ts": "x", "event": "started"}',
    '{"kind": "decision", "anything": true}',
    "",
    "   ",
])
def test_other_kinds_and_blank_lines_are_skipped(text):
    assert parse_line(text) is None


@pytest.mark.parametrize(("text", "why"), [
    ("{not json", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"ts": 1, "requests_total": 1, "errors_total": 0}', "version"),
    ('{"version": "v2", "requests_total": 1, "errors_total": 0}', "ts is missing"),
    ('{"ts": "yesterday", "version": "v2", "requests_total": 1, "errors_total": 0}', "ts must"),
    ('{"ts": 1, "version": "v2", "errors_total": 0}', "requests_total is missing"),
    ('{"ts": 1, "version": "v2", "requests_total": "12", "errors_total": 0}', "must be a number"),
    ('{"ts": 1, "version": "v2", "requests_total": true, "errors_total": 0}', "must be a number"),
    ('{"ts": 1, "version": "v2", "requests_total": -4, "errors_total": 0}', ">= 0"),
    ('{"ts": 1, "version": "v2", "requests_total": 4, "errors_total": 0, '
     '"latency_buckets": {"fast": 1}}', "bound 'fast'"),
    ('{"ts": 1, "version": "v2", "requests_total": 4, "errors_total": 0, '
     '"latency_buckets": [1]}', "must be an object"),
])
def test_bad_lines_say_why(text, why):
    with pytest.raises(TraceLineError, match=why):
        parse_line(text)


def test_bad_lines_are_reported_with_numbers_and_reading_goes_on():
    lines = [LINE, "garbage", '{"kind": "event"}', LINE.replace("1520,", '"x",', 1), LINE, ""]
    read = parse_lines(lines, "t.jsonl")
    assert [r.line for r in read.records] == [1]  # line 5 repeats line 1 exactly: dropped
    assert len(read.problems) == 2
    assert read.problems[0].startswith("t.jsonl:2: bad trace line: not JSON")
    assert read.problems[1].startswith("t.jsonl:4: bad trace line: requests_total must be")
    assert read.skipped == 2


def test_counters_line_round_trips():
    raw = RawCounters("v1", 1800000000.125, 10.0, 2.0, {"0.1": 4.0, "+Inf": 10.0}, 0.75)
    text = counters_line(raw, "checkout", weight=80.0, ready=1, total=2)
    record = parse_line(text)
    assert record is not None
    assert record.counters == raw
    assert (record.service, record.weight, record.ready, record.total) == ("checkout", 80.0, 1, 2)
    assert json.loads(text)["ts"] == "2027-01-15T08:00:00.125Z"


@settings(max_examples=200, deadline=None)
@given(at=st.floats(min_value=0, max_value=4e9), later=st.floats(min_value=0, max_value=60))
def test_times_round_trip_to_the_bit(at: float, later: float):
    """The recorder's times come back as the very floats the live run used (the RFC 3339 form
    keeps milliseconds): a replay then compares the differences the live engine compared."""
    from strategies.trace import tick_line

    record = parse_line(counters_line(RawCounters("v1", at, 1.0, 0.0)))
    tick = parse_line(tick_line(at, "checkout", decided=at + later))
    assert record is not None and record.counters.at == at
    assert tick is not None and (tick.at, tick.decided) == (at, at + later)


@pytest.mark.parametrize("twin", ['"x"', "true", "Infinity", "null"])
def test_an_unusable_exact_twin_falls_back_to_the_rfc3339_time(twin: str):
    text = ('{"kind": "tick", "ts": "2027-01-15T08:00:00.125Z", "decided": '
            f'"2027-01-15T08:00:00.250Z", "at": {twin}, "decided_at": {twin}}}')
    tick = parse_line(text)
    assert tick is not None
    assert (tick.at, tick.decided) == (1800000000.125, 1800000000.25)


def test_event_lines_are_skipped_by_the_reader():
    event = Event(at=1800000000.0, release="checkout", event="rolled_back", details={"a": 1})
    text = event_line(event)
    assert json.loads(text)["kind"] == "event"
    assert parse_line(text) is None


def _rec(version: str, at: float):
    record = parse_line(counters_line(RawCounters(version, at, 1.0, 0.0)))
    assert record is not None
    return record


def test_grouping_tolerates_scrape_jitter_and_splits_on_repeats():
    records = [_rec("v1", 100.000), _rec("v2", 100.030), _rec("v1", 101.002), _rec("v2", 100.990),
               _rec("v1", 102.0), _rec("v1", 102.1), _rec("v2", 105.0)]
    groups = group_collections(records, interval=1.0)
    assert [sorted(g.records) for g in groups] == [["v1", "v2"], ["v1", "v2"], ["v1"], ["v1"],
                                                   ["v2"]]
    assert [g.at for g in groups] == [100.03, 101.002, 102.0, 102.1, 105.0]


def test_tick_lines_are_read_and_merged_into_the_timeline():
    from collectors.replay_adapters import timeline
    from strategies.trace import TraceTick, tick_line

    lines = [tick_line(99.0, "checkout", "scrape: no instances known yet"),
             tick_line(100.0, "checkout"), counters_line(RawCounters("v1", 100.0, 1.0, 0.0)),
             tick_line(101.2, "checkout", "timed out"),
             tick_line(102.4, "checkout"), counters_line(RawCounters("v1", 102.4, 2.0, 0.0))]
    read = parse_lines(lines)
    assert read.ticks[0] == TraceTick(99.0, "checkout", "scrape: no instances known yet")
    assert [t.at for t in read.ticks] == [99.0, 100.0, 101.2, 102.4]
    groups = group_collections(read.records, 1.0)
    ticks = timeline(groups, read.ticks, 1.0)
    assert [(t.at, t.collection is not None) for t in ticks] == [
        (99.0, False), (100.0, True), (101.2, False), (102.4, True)]


def test_without_tick_lines_only_real_gaps_get_failed_ticks():
    from collectors.replay_adapters import timeline

    groups = group_collections([_rec("v1", t) for t in (0.0, 1.6, 3.2, 7.0)], 1.0)
    ticks = timeline(groups, [], 1.0)
    # 1.6s apart is a slow live loop, not a missed collection; 3.8s is a gap
    assert [(t.at, t.collection is not None) for t in ticks] == [
        (0.0, True), (1.6, True), (3.2, True), (4.2, False), (5.2, False), (6.2, False),
        (7.0, True)]


def test_trace_source_gives_window_samples_until_stale():
    import asyncio

    from collectors.replay_adapters import Collection, TraceMetricSource
    from tests.replay.test_replay import SPEC

    source = TraceMetricSource(SPEC)
    assert SPEC.metrics.window == SPEC.metrics.stale_after == 5.0
    for t in range(4):
        source.feed(Collection(float(t), {"v1": _rec("v1", float(t)),
                                          "v2": _rec("v2", float(t))}))
        asyncio.run(source.collect(SPEC.versions, None, float(t)))
    seen = {}
    for t in range(4, 10):  # v2 is gone
        source.feed(Collection(float(t), {"v1": _rec("v1", float(t))}))
        seen[t] = asyncio.run(source.collect(SPEC.versions, None, float(t))).samples
    assert all("v1" in samples for samples in seen.values())
    assert [t for t, samples in seen.items() if "v2" in samples] == [4, 5, 6, 7, 8]
    assert seen[4]["v2"].requests == 0.0  # flat counter: 1.0 at 0..3
    assert seen[8]["v2"].requests is None  # window (3, 8] holds one scrape
    source.feed(None)
    assert asyncio.run(source.collect(SPEC.versions, None, 10.0)).error
