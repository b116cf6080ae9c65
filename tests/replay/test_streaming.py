"""Replay streams a trace: the same ticks, lines and verdicts as reading it whole, in memory
that follows the reorder window, not the file (the figures are in benchmarks/replay_memory.py)."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.replay_adapters import group_collections, stream_timeline, timeline
from strategies.ports import RawCounters
from strategies.spec import load_spec
from strategies.trace import (
    TraceRecord,
    counters_line,
    item_time,
    parse_lines,
    scan_trace,
    tick_line,
    time_ordered,
)
from tests.support.traces import Behaviour, trace_lines
from tui.replay import run_replay

SPEC = load_spec(Path(__file__).with_name("fast_replay.toml"))
HEALTHY = [Behaviour("v1", rps=90, weight=80.0), Behaviour("v2", rps=10, weight=20.0)]
FAULTY = [HEALTHY[0], Behaviour("v2", rps=10, weight=20.0, fault_at=25, fault_error_ratio=0.5)]

# Collection times with jitter, gaps and repeats; tick lines near them, between them, missing.
times = st.lists(st.floats(0, 40).map(lambda t: round(t, 2)), min_size=1, max_size=40)


def _lines(records: list[tuple[str, float]], ticks: list[float]) -> list[str]:
    lines = [counters_line(RawCounters(v, at, 1.0 + at, 0.0)) for v, at in records]
    lines += [tick_line(at, decided=at + 0.01 * (i % 3)) for i, at in enumerate(ticks)]
    return lines


def _summary(ticks) -> list[tuple]:
    return [(t.at, t.decided, None if t.collection is None else
             (t.collection.at, sorted((v, r.line) for v, r in t.collection.records.items())))
            for t in ticks]


@settings(max_examples=200, deadline=None)
@given(v1=times, v2=st.lists(st.floats(0, 40).map(lambda t: round(t, 2)), max_size=40),
       ticks=st.lists(st.floats(-1, 41).map(lambda t: round(t, 1)), max_size=40),
       interval=st.sampled_from([0.5, 1.0, 2.0]))
def test_streamed_timeline_is_the_whole_file_timeline(v1, v2, ticks, interval):
    """stream_timeline over time-ordered lines == timeline(group_collections(...)) at once."""
    read = parse_lines(_lines([("v1", t) for t in v1] + [("v2", t) for t in v2], ticks))
    whole = timeline(group_collections(read.records, interval), read.ticks, interval)
    # time order, ties in file order (tick lines come after the counters lines here): the order
    # time_ordered gives
    numbered = {id(t): n for n, t in enumerate(read.ticks, start=len(read.records) + 1)}
    ordered = sorted([*read.records, *read.ticks], key=lambda i: (
        item_time(i), i.line if isinstance(i, TraceRecord) else numbered[id(i)]))
    streamed = list(stream_timeline(ordered, interval, recorded_ticks=bool(read.ticks)))
    assert _summary(streamed) == _summary(whole)


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), window=st.sampled_from([0.0, 2.0, 1000.0]),
       run=st.sampled_from([1, 500, 10**9]))
def test_time_ordered_gives_every_line_once_in_time_order(tmp_path: Path, seed: int,
                                                          window: float, run: int):
    """Through the heap or through sorted runs in files: the lines parse_lines keeps, in time
    order, ties in file order; a conflicting repeat is reported either way."""
    rng = random.Random(seed)
    lines = trace_lines(HEALTHY, 20)
    other = lines[3].replace('"requests_total":', '"requests_total":1e9,"y":', 1)
    lines = [*lines, *(rng.choice(lines) for _ in range(5)), other]
    rng.shuffle(lines)
    path = tmp_path / f"t{seed}.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    read = parse_lines(lines, str(path))
    expected = sorted([*read.records, *read.ticks],
                      key=lambda i: (item_time(i), getattr(i, "line", 0)))
    scan = scan_trace(path, window)
    problems: list[str] = []
    got = list(time_ordered(path, in_order=scan.in_order, problem=problems.append,
                            window=window, run_size=run))
    assert [(item_time(i), i.line) for i in got] == [(item_time(i), i.line) for i in expected]
    assert sorted(problems) == sorted(read.problems)


def _replay(path: Path) -> tuple[int, dict, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_replay(SPEC, str(path), summary=True, out=out, err=err)
    return code, json.loads(out.getvalue().splitlines()[-1]), err.getvalue()


def test_a_line_far_out_of_order_is_sorted_through_files_to_the_same_verdict(tmp_path: Path):
    """A trace out of order beyond the reorder window (here a line from 400 s in, put first)
    replays exactly like the ordered file: sorted through temporary files, said in --summary."""
    for behaviours in (HEALTHY, FAULTY):
        lines = trace_lines(behaviours, 420)
        clean = tmp_path / "clean.jsonl"
        clean.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        moved = tmp_path / "moved.jsonl"
        moved.write_text("".join(line + "\n" for line in [lines[-1], *lines[:-1]]),
                         encoding="utf-8")
        code, body, err = _replay(clean)
        moved_code, moved_body, moved_err = _replay(moved)
        assert body["trace"]["sorted_through_files"] is False
        assert moved_body["trace"]["sorted_through_files"] is True
        assert moved_code == code and moved_err == err
        for key in ("outcome", "decided_at", "gate", "decisions", "gates"):
            assert moved_body[key] == body[key], key
        assert moved_body["trace"]["counters_lines"] == body["trace"]["counters_lines"]


def test_the_summary_counts_the_whole_trace_though_the_replay_stops_early(tmp_path: Path):
    """The release is decided at 61 s; the summary still counts every line of the 200 s trace
    (the rest is read, not replayed)."""
    lines = trace_lines(HEALTHY, 200)
    path = tmp_path / "t.jsonl"
    path.write_text("".join(line + "\n" for line in lines) + "not json\n", encoding="utf-8")
    code, body, err = _replay(path)
    read = parse_lines(lines)
    assert (code, body["outcome"], body["decided_at"]) == (0, "promoted", 61.0)
    assert body["trace"]["counters_lines"] == len(read.records)
    assert (body["trace"]["duration"], body["trace"]["replayed"]) == (200.0, 61.0)
    assert (body["trace"]["collections"], body["trace"]["bad_lines"]) == (201, 1)
    assert f"{path}:{len(lines) + 1}: bad trace line: not JSON" in err
