"""A live release recorded with --record replays to the same decision at the same trace time.

Real local processes, the built-in router, real load and the scrape source (as the demo runs
them), with TraceRecorder attached to the Driver; a fault is injected into the candidate.
The recording is then replayed with the same spec: the rollback must come from the same gate,
within one collection interval of when the live run decided it (trace time).
"""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from collectors.local.stack import LocalStack
from collectors.scrape_source import ScrapeSource
from strategies.engine import Engine
from strategies.journal import MemoryJournal
from strategies.model import parse_rfc3339
from strategies.spec import load_spec
from tui.driver import Driver
from tui.recorder import TraceRecorder
from tui.replay import run_replay

SPEC = Path(__file__).resolve().parents[1] / "demo" / "fast_release.toml"


class Events:
    def __init__(self) -> None:
        self.events: list = []

    def on_event(self, event) -> None:
        self.events.append(event)


async def live(trace: Path) -> tuple[list, float]:
    spec = load_spec(SPEC)
    recorder = TraceRecorder(trace, service=spec.release.service)
    seen = Events()
    async with LocalStack(spec, rate=60.0) as stack:
        driver = Driver(spec, Engine(spec, journal=MemoryJournal()), stack.platform, stack.router,
                        ScrapeSource.for_release(spec), listeners=[recorder, seen])
        first = None
        try:
            for _ in range(120):  # bounded: 1s ticks, the release ends in ~10s
                state = await driver.tick()
                first = state.at if first is None else first
                if driver.engine.finished:
                    break
                if any(e.event == "step" for e in seen.events) and not any(
                        e.event == "fault_injected" for e in seen.events):
                    await stack.inject_fault(spec.release.candidate, error_ratio=0.5)
                    driver.emit("fault_injected", {"version": spec.release.candidate})
                await asyncio.sleep(spec.metrics.interval)
        finally:
            recorder.close()
            await driver.close()
    return seen.events, first or 0.0


@pytest.mark.timeout(120)
def test_live_recording_replays_to_the_same_rollback(tmp_path: Path):
    trace = tmp_path / "live.jsonl"
    events, _ = asyncio.run(live(trace))
    names = [e.event for e in events]
    assert "rolling_back" in names, names
    live_rollback = next(e for e in events if e.event == "rolling_back")

    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    counters = [line for line in lines if "kind" not in line]
    assert counters and {c["version"] for c in counters} == {"v1", "v2"}
    ticks = [parse_rfc3339(line["ts"]) for line in lines if line.get("kind") == "tick"]
    assert ticks == sorted(ticks) and len(ticks) >= 5
    # the live decision was taken in the tick that collected last before it
    live_tick = max(i for i, t in enumerate(ticks) if t <= live_rollback.at)

    out, err = io.StringIO(), io.StringIO()
    code = run_replay(load_spec(SPEC), str(trace), summary=True, out=out, err=err)
    assert code == 1, err.getvalue()
    summary = json.loads(out.getvalue().splitlines()[-1])
    assert summary["outcome"] == "rolled_back"
    assert summary["gate"] == live_rollback.details["actor"].removeprefix("gate:")
    replay_at = parse_rfc3339(summary["trace"]["start"]) + summary["decided_at"]
    replay_tick = min(range(len(ticks)), key=lambda i: abs(ticks[i] - replay_at))
    assert abs(ticks[replay_tick] - replay_at) < 0.002  # replay decides at recorded ticks
    # Same decision, same collection or the next/previous one: live, `for` and holds are
    # measured at the engine's time (collection + scrape time), replay at the collection's.
    assert abs(replay_tick - live_tick) <= 1, (replay_tick, live_tick, ticks)
