"""A gate one millisecond short of its `for`, recorded live, is short of it in the replay too.

traces/gate_one_ms_short.jsonl is a real recording (`releasedeck demo --headless --spec
traces/held_second_step.toml --fault-at 4 --record ...`). The fault raised latency-p99 first;
on the next tick it had failed for 0.99927 s, short of its `for = "1s"`, so live held on, and
rolled back a tick later on error-rate (both gates failing by then). Ticks are about a second
apart, so a gate's `for` often ends within a millisecond of a tick. Traces used to keep times to
the millisecond (their RFC 3339 form): a replay of this trace read 0.99927 s as 1.000 s and
rolled back a tick early on latency-p99 alone, and test_demo_record_then_replay_cli failed on
the deciding gate (2 of 20 runs on a loaded machine). The recorder now writes each time's exact
float beside it ("at", "decided_at") and a tick's time is the engine's own (Driver ->
on_judged), so the replay judges at the very times the live engine did.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from strategies.model import rfc3339
from strategies.spec import load_spec
from tui.replay import run_replay

HERE = Path(__file__).with_name("traces")
TRACE = HERE / "gate_one_ms_short.jsonl"
SPEC = load_spec(HERE / "held_second_step.toml")
DECISIONS = ("started", "step", "rolling_back")


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _replay(path: Path) -> tuple[int, list[dict], str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_replay(SPEC, str(path), summary=False, out=out, err=err)
    return code, [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


def _decisions(events: list[dict]) -> list[tuple]:
    return [(e["ts"], e["event"], e.get("gate"), sorted(failing(e)))
            for e in events if e["event"] in DECISIONS]


def failing(event: dict) -> set[str]:
    return {e.get("gate") for e in event.get("evidence", []) if e.get("status") == "fail"}


def test_the_recording_sits_a_millisecond_short_of_a_gate():
    """What makes this trace the case (read from its own lines): on the tick after latency-p99
    first failed, it had failed for just under its 1 s, and live did not roll back there."""
    lines = _lines(TRACE)
    events = [line for line in lines if line.get("kind") == "event"]
    since = next(gate["failing_since"] for e in events if e["event"] == "gate"
                 for gate in e["evidence"][:1] if (gate["gate"], gate["status"]) == (
                     "latency-p99", "fail"))
    decided = [line["decided_at"] for line in lines if line.get("kind") == "tick"]
    after = decided[decided.index(since) + 1]
    assert 0.999 < after - since < 1.0
    back = next(e for e in events if e["event"] == "rolling_back")
    assert back["ts"] > rfc3339(after) and failing(back) == {"error-rate", "latency-p99"}


def test_replay_rolls_back_on_the_gate_live_did_at_the_same_time():
    code, replayed, err = _replay(TRACE)
    live = [line for line in _lines(TRACE) if line.get("kind") == "event"]
    assert code == 1, err
    assert _decisions(replayed) == _decisions(live)
    assert [d[2] for d in _decisions(replayed) if d[1] == "rolling_back"] == ["error-rate"]


def test_the_same_trace_rounded_to_milliseconds_decided_otherwise(tmp_path: Path):
    """Without the exact times (what older recorders wrote) this replay rolled back a tick
    early, on latency-p99 alone: the live run's deciding gate was not among the replay's
    failing ones. Kept to show the trace guards the exact times, not only the logic."""
    rounded = tmp_path / "rounded.jsonl"
    rounded.write_text("".join(
        json.dumps({k: v for k, v in line.items() if k not in ("at", "decided_at")}) + "\n"
        for line in _lines(TRACE)))
    code, replayed, err = _replay(rounded)
    assert code == 1, err
    back = next(e for e in replayed if e["event"] == "rolling_back")
    assert (back["gate"], failing(back)) == ("latency-p99", {"latency-p99"})
