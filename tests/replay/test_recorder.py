"""TraceRecorder as a Driver listener, and the `releasedeck replay` command line."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from collectors.replay_adapters import group_collections
from strategies.trace import read_trace
from tests.replay.test_replay import HEALTHY, SPEC
from tests.support.traces import Behaviour, write_trace
from tui.recorder import TraceRecorder
from tui.replay import replay_collections, run_replay

ROOT = Path(__file__).resolve().parents[2]


def _summary(path: Path) -> tuple[int, dict]:
    out, err = io.StringIO(), io.StringIO()
    code = run_replay(SPEC, str(path), summary=True, out=out, err=err)
    assert err.getvalue().startswith("releasedeck: checkout v1→v2 ")
    assert len(err.getvalue().splitlines()) == 1
    return code, json.loads(out.getvalue().splitlines()[-1])


def test_a_recording_replays_to_the_same_decisions(tmp_path: Path):
    """Drive a release (over a trace), record it, replay the recording: same decisions."""
    faulty = [HEALTHY[0], Behaviour("v2", rps=10, weight=20.0, fault_at=33)]
    source = write_trace(tmp_path / "source.jsonl", faulty, 60)
    recorded = tmp_path / "recorded.jsonl"
    recorder = TraceRecorder(recorded, service="checkout")
    collections = group_collections(read_trace(source).records, SPEC.metrics.interval)
    asyncio.run(replay_collections(SPEC, collections, listeners=[recorder]))
    recorder.close()

    lines = [json.loads(line) for line in recorded.read_text().splitlines()]
    counters = [line for line in lines if "kind" not in line]
    events = [line for line in lines if line.get("kind") == "event"]
    ticks = [line for line in lines if line.get("kind") == "tick"]
    assert len(ticks) == 37 and all("error" not in t for t in ticks)
    assert len(counters) == 2 * 37  # both versions, collections 0..36: fails 34, rolls back 35,
    # scaled down (finished) 36
    assert {c["service"] for c in counters} == {"checkout"}
    v2 = [c for c in counters if c["version"] == "v2"]
    assert {c["weight"] for c in v2} == {20.0} and {c["ready"] for c in v2} == {1}
    assert "rolling_back" in [e["event"] for e in events]

    code_a, live = _summary(source)
    code_b, again = _summary(recorded)
    assert code_a == code_b == 1
    assert again["decisions"] == live["decisions"]
    assert again["gates"] == live["gates"]
    assert again["trace"]["other_lines"] == len(events)


def test_recorder_appends_and_learns_the_service_from_events(tmp_path: Path):
    from strategies.model import Event

    path = tmp_path / "sub" / "trace.jsonl"
    first = TraceRecorder(path)
    first.on_event(Event(at=1.0, release="checkout", event="started"))
    first.close()
    first.on_event(Event(at=2.0, release="checkout", event="late"))  # closed: ignored
    second = TraceRecorder(path)
    second.on_event(Event(at=3.0, release="checkout", event="resumed"))
    second.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["event"] for line in lines] == ["started", "resumed"]
    assert first.service == "checkout"


def test_cli_replay_prints_events_and_summary(tmp_path: Path):
    trace = write_trace(tmp_path / "t.jsonl", HEALTHY, 80)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "tui.cli", "replay", str(Path(__file__).with_name(
            "fast_replay.toml")), str(trace), "--summary"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines[-1]["outcome"] == "promoted"
    assert [e["event"] for e in lines[:-1]].count("promoted") == 1
    bad = subprocess.run(
        [sys.executable, "-m", "tui.cli", "replay", str(tmp_path / "nope.toml"), str(trace)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2
    assert "nope.toml" in bad.stderr and "Traceback" not in bad.stderr


def test_tick_line_carries_the_engine_time(tmp_path: Path):
    from types import SimpleNamespace

    from strategies.model import Event, MetricsSnapshot, Snapshot
    from strategies.ports import RawCounters
    from strategies.trace import read_trace

    path = tmp_path / "t.jsonl"
    recorder = TraceRecorder(path, service="checkout")
    raw = [RawCounters("v1", 10.0, 5.0, 0.0)]
    recorder.on_snapshot(Snapshot(at=10.0, metrics=MetricsSnapshot(at=10.0)), raw)
    recorder.on_event(Event(at=10.4, release="checkout", event="step"))  # the decision
    recorder.on_event(Event(at=10.6, release="checkout", event="action_done"))
    recorder.on_state(SimpleNamespace(at=10.7))
    recorder.on_snapshot(Snapshot(at=11.0, metrics=MetricsSnapshot(at=11.0, error="boom")), ())
    recorder.on_state(SimpleNamespace(at=11.3))  # no decision: the State's time
    recorder.on_state(SimpleNamespace(at=11.5))  # a command's state: no tick
    recorder.on_snapshot(Snapshot(at=12.0, metrics=None), ())
    recorder.close()  # cut short: the tick is still written
    read = read_trace(path)
    assert [(t.at, t.decided, t.error) for t in read.ticks] == [
        (10.0, 10.4, ""), (11.0, 11.3, "boom"), (12.0, None, "metric collection timed out")]
    assert [r.counters for r in read.records] == raw


def test_tick_line_carries_the_time_the_engine_judged_at_exactly(tmp_path: Path):
    """The driver hands the recorder the engine's time (on_judged): a tick without a decision is
    stamped with it, not with the State's (later by the engine's own work), and to the bit, not
    to the millisecond of its RFC 3339 form (a replay compares the same differences: a gate
    failing `for` 1 s at ticks 0.9996 s apart)."""
    from types import SimpleNamespace

    from strategies.model import Event, MetricsSnapshot, Snapshot
    from strategies.ports import JudgedListener, RawCounters
    from strategies.trace import read_trace

    path = tmp_path / "t.jsonl"
    recorder = TraceRecorder(path, service="checkout")
    assert isinstance(recorder, JudgedListener)  # so the Driver calls it
    at, judged = 1795918057.1982694, 1795918057.2079191
    raw = [RawCounters("v1", at, 5.0, 0.0)]
    recorder.on_snapshot(Snapshot(at=at, metrics=MetricsSnapshot(at=at)), raw)
    recorder.on_judged(judged)
    recorder.on_state(SimpleNamespace(at=judged + 0.04))  # no decision: still the engine's time
    recorder.on_snapshot(Snapshot(at=at + 1, metrics=MetricsSnapshot(at=at + 1)), raw)
    recorder.on_judged(judged + 0.9996)
    recorder.on_event(Event(at=judged + 0.9996, release="checkout", event="rolling_back"))
    recorder.on_event(Event(at=judged + 1.01, release="checkout", event="action_done"))
    recorder.on_state(SimpleNamespace(at=judged + 1.02))
    recorder.close()
    read = read_trace(path)
    assert [(t.at, t.decided) for t in read.ticks] == [(at, judged),
                                                        (at + 1, judged + 0.9996)]
    assert read.ticks[1].decided - read.ticks[0].decided == (judged + 0.9996) - judged
    assert {r.counters.at for r in read.records} == {at}
