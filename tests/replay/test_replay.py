"""Replay end to end on synthetic traces whose decisions can be worked out by hand.

The spec (fast_replay.toml): collections every 1s, window 5s, stale after 5s, canary 20/50/100
with 20s holds, scale-down delay 1s, error-rate <= 5% and p99 <= 400ms, each for 1s, at least
10 requests. A healthy trace therefore steps at 0, 20, 40, promotes (promoting) at 60 and
finishes (promoted) at 61 seconds into the trace.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from strategies.spec import load_spec
from tests.support.traces import Behaviour, trace_lines, write_trace
from tui.replay import run_replay

SPEC = load_spec(Path(__file__).with_name("fast_replay.toml"))
HEALTHY = [Behaviour("v1", rps=90, weight=80.0), Behaviour("v2", rps=10, weight=20.0)]


def replay(path: Path, *, summary: bool = True) -> tuple[int, list[dict], dict | None, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_replay(SPEC, str(path), summary=summary, out=out, err=err)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    body = lines.pop() if summary and lines else None
    return code, lines, body, err.getvalue()


def times(body: dict, event: str) -> list[float]:
    return [d["t"] for d in body["decisions"] if d["event"] == event]


def test_healthy_trace_promotes(tmp_path: Path):
    code, events, body, err = replay(write_trace(tmp_path / "t.jsonl", HEALTHY, 120))
    assert code == 0
    assert err.splitlines() == ["releasedeck: checkout v1→v2 promoted after 61.0s; "
                                "at step 3/3, weight 100%"]
    assert body is not None
    assert [(d["event"], d["t"]) for d in body["decisions"]] == [
        ("started", 0.0), ("step", 20.0), ("step", 40.0), ("promoting", 60.0),
        ("promoted", 61.0)]
    assert (body["outcome"], body["exit_code"], body["decided_at"]) == ("promoted", 0, 61.0)
    assert "rolling_back" not in {e["event"] for e in events}
    for event in events:
        assert {"ts", "release", "event"} <= event.keys() and event["release"] == "checkout"


def test_fault_rolls_back_at_the_expected_trace_time(tmp_path: Path):
    # The fault starts after 25s: the collection at 26 is the first to count errors (5 of 10),
    # too few against 60 clean ones to show a breach at 99%; with 5 more at 27 the evidence
    # of a breach that began in the step crosses (no `for`: the evidence alone decides).
    faulty = [HEALTHY[0], Behaviour("v2", rps=10, fault_at=25, fault_error_ratio=0.5)]
    code, events, body, err = replay(write_trace(tmp_path / "t.jsonl", faulty, 120))
    assert code == 1, err
    assert body is not None
    assert (body["outcome"], body["decided_at"], body["gate"]) == ("rolled_back", 27.0,
                                                                     "error-rate")
    assert body["decided_by"] == "gate:error-rate"
    assert body["gates"]["error-rate"]["first_failure"] == 27.0
    assert body["gates"]["error-rate"]["first_breach"] == 27.0
    assert body["gates"]["latency-p99"]["first_failure"] is None
    names = [e["event"] for e in events]
    assert names.index("rolling_back") < names.index("rolled_back")
    assert "promoted" not in names
    first_fail = next(e for e in events if e["event"] == "gate" and e["evidence"][0]["status"]
                      == "fail")
    assert first_fail["value"] == pytest.approx(0.2)  # the window's point value, for reference
    assert first_fail["evidence"][0]["test"] == "sequential"
    assert first_fail["evidence"][0]["toward_fail"] == 1.0


def test_latency_fault_is_caught_by_p99(tmp_path: Path):
    slow = [HEALTHY[0], Behaviour("v2", rps=10, fault_at=45, fault_error_ratio=0.0,
                                  fault_latency=1.0)]
    code, _, body, _ = replay(write_trace(tmp_path / "t.jsonl", slow, 120))
    assert code == 1
    assert body is not None
    # every request after 45 is slower than 0.4 s: one collection shows it against p99
    assert (body["gate"], body["decided_at"]) == ("latency-p99", 46.0)


class StateTap:
    """Keeps the candidate sample the Driver published at each tick."""

    def __init__(self) -> None:
        self.samples: dict[float, object] = {}

    def on_state(self, state) -> None:
        view = next(v for v in state.versions if v.version == "v2")
        if view.sample is not None:
            self.samples[round(state.at - 1_800_000_000.0, 3)] = view.sample


def test_counter_reset_counts_like_prometheus_and_does_not_fail(tmp_path: Path):
    import asyncio

    from collectors.replay_adapters import group_collections
    from strategies.trace import read_trace
    from tui.replay import replay_collections

    restart = [HEALTHY[0], Behaviour("v2", rps=10, restarts=frozenset({30}))]
    path = write_trace(tmp_path / "t.jsonl", restart, 120)
    code, _, body, _ = replay(path)
    assert code == 0 and body is not None and body["decided_at"] == 61.0
    # At 30 the counter reads 10 after 300: the window (25, 30] holds 270, 280, 290, 300, 10.
    # raw = 10 - 270 + 300 = 40 over 4s sampled; extrapolated 1s to the start: 40 * 5/4 = 50.
    tap = StateTap()
    collections = group_collections(read_trace(path).records, 1.0)
    asyncio.run(replay_collections(SPEC, collections, listeners=[tap]))
    assert tap.samples[30.0].requests == pytest.approx(50.0)
    assert tap.samples[30.0].error_ratio == 0.0
    assert len(tap.samples) == 62
    assert all(s.requests >= 0 for t, s in tap.samples.items() if t > 0)


def test_gap_goes_stale_and_is_not_bridged(tmp_path: Path):
    # Nothing recorded for collections 30..39. Live, the driver kept ticking and failing: the
    # metrics are stale once older than 5s (at 35). Holds count observed time only, so the
    # outage restarts the 50% step's evidence: its 20 s hold is observed again from the first
    # collection after the gap (40), and the step advances at 60, not in the tick data return.
    gap = frozenset(range(30, 40))
    gapped = [Behaviour(b.version, rps=b.rps, weight=b.weight, missing=gap) for b in HEALTHY]
    code, events, body, err = replay(write_trace(tmp_path / "t.jsonl", gapped, 120))
    assert code == 0, err
    assert body is not None
    assert body["trace"]["failed_ticks"] == 10
    stale = [e for e in events if e["event"] == "stale"]
    fresh = [e for e in events if e["event"] == "fresh"]
    assert [e["ts"] for e in stale] == ["2027-01-15T08:00:35.000Z"]
    assert [e["ts"] for e in fresh] == ["2027-01-15T08:00:40.000Z"]
    assert times(body, "step") == [20.0, 60.0]
    assert times(body, "promoted") == [81.0]


def test_late_candidate_is_unknown_until_it_has_two_scrapes(tmp_path: Path):
    late = [HEALTHY[0], Behaviour("v2", rps=10, start=10)]
    code, events, body, _ = replay(write_trace(tmp_path / "t.jsonl", late, 120))
    assert code == 0
    assert body is not None
    gates = [e for e in events if e["event"] == "gate"]
    # Lines from 10 s: at 11 s the first counted interval only anchors the candidate's tally
    # (as the live scrape source's first tally does); 11 -> 12 s is the first evidence.
    assert {e["ts"] for e in gates} == {"2027-01-15T08:00:12.000Z"}  # unknown -> pass
    assert {e["evidence"][0]["previous"] for e in gates} == {"unknown"}
    assert times(body, "promoted") == [61.0]


def test_candidate_gone_stale_holds_and_the_trace_ends_incomplete(tmp_path: Path):
    gone = [HEALTHY[0], Behaviour("v2", rps=10, stop=30)]
    code, events, body, err = replay(write_trace(tmp_path / "t.jsonl", gone, 120))
    assert code == 1
    assert err.startswith("releasedeck: checkout v1→v2 trace ended in phase progressing before "
                          "the release finished after 120.0s; at step 2/3, weight 50%; holding:")
    assert body is not None
    assert (body["outcome"], body["phase"], body["step"]) == ("incomplete", "progressing", 2)
    assert body["ended"] == ("trace ended in phase progressing at step 2/3 (50%), 120.0s into "
                             "the trace: release not finished")
    unknown = [e for e in events if e["event"] == "gate" and e["evidence"][0]["status"]
               == "unknown"]
    # Its last line is at 29: at 33 the 5s window (28, 33] holds one scrape, too few for a
    # rate (Prometheus gives nothing either); from 35 it is stale and gets no sample at all.
    assert {e["ts"] for e in unknown} == {"2027-01-15T08:00:33.000Z"}
    assert "no fresh data for the candidate" in unknown[0]["reason"]
    assert times(body, "step") == [20.0]


def test_bad_lines_are_reported_and_the_replay_goes_on(tmp_path: Path):
    lines = trace_lines(HEALTHY, 120, events=True)
    lines.insert(3, "{broken")
    lines.insert(10, '{"ts": 1, "version": "v2", "requests_total": "many", "errors_total": 0}')
    lines.insert(20, '{"service": "other", "ts": 1800000000, "version": "v2", '
                     '"requests_total": 1e9, "errors_total": 1e9}')
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, _, body, err = replay(path)
    assert code == 0
    assert err.splitlines()[:-1] == [
        f"{path}:4: bad trace line: not JSON (Expecting property name enclosed in double quotes)",
        f"{path}:11: bad trace line: requests_total must be a number, got 'many'",
    ]
    assert err.splitlines()[-1].startswith("releasedeck: checkout v1→v2 promoted")
    assert body is not None
    assert body["trace"]["bad_lines"] == 2
    assert body["trace"]["other_lines"] == 242  # the interleaved event lines
    assert body["trace"]["used_lines"] == body["trace"]["counters_lines"] - 1  # other service
    assert body["decided_at"] == 61.0


def test_trace_errors_exit_2(tmp_path: Path):
    code, _, _, err = replay(tmp_path / "missing.jsonl")
    assert code == 2 and "cannot read trace" in err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("garbage\n", encoding="utf-8")
    code, _, _, err = replay(empty)
    assert code == 2
    assert "no usable counters lines for service 'checkout'" in err
    other = write_trace(tmp_path / "other.jsonl", HEALTHY, 10, service="payments")
    assert replay(other)[0] == 2


def test_summary_fields(tmp_path: Path):
    faulty = [HEALTHY[0], Behaviour("v2", rps=10, weight=20.0, fault_at=25)]
    _, _, body, _ = replay(write_trace(tmp_path / "t.jsonl", faulty, 120))
    assert body is not None
    assert set(body) == {"outcome", "exit_code", "phase", "step", "steps", "weight",
                         "decided_at", "decided_by", "gate", "reason", "ended", "decisions",
                         "gates", "trace"}
    assert body["trace"]["start"] == "2027-01-15T08:00:00.000Z"
    assert body["trace"]["duration"] == 120.0
    assert body["trace"]["replayed"] == 28.0  # stops once finished: scaled down after 1s
    assert body["trace"]["collections"] == 121 and body["trace"]["ticks"] == 29
    rolling = next(d for d in body["decisions"] if d["event"] == "rolling_back")
    assert rolling == {"t": 27.0, "event": "rolling_back", "phase": "rolling_back", "step": 2,
                       "weight": 0, "actor": "gate:error-rate", "gate": "error-rate",
                       "reason": "critical gate failed: error-rate"}
    assert set(body["gates"]) == {"error-rate", "latency-p99"}
    assert body["gates"]["error-rate"]["failures"] == 1


def test_without_summary_only_events_are_printed(tmp_path: Path):
    code, events, body, _ = replay(write_trace(tmp_path / "t.jsonl", HEALTHY, 120),
                                   summary=False)
    assert code == 0 and body is None
    assert events[-1]["event"] in ("promoted", "action_done")
    assert all("outcome" not in e for e in events)


def _with_ticks(lines: list[str], until: float, errors_from: float) -> list[str]:
    """Add a tick line per second up to `until`; ticks from `errors_from` on failed."""
    from strategies.trace import tick_line

    t0 = 1_800_000_000.0
    ticks = [tick_line(t0 + k, "checkout", "scrape: none of 2 instances answered"
                       if k >= errors_from else None) for k in range(int(until) + 1)]
    return ticks + lines


def test_metrics_unreachable_too_long_exits_3_like_headless(tmp_path: Path):
    # Counters stop at 30 but the live run kept ticking (and failing) until 80: stale from
    # 35 (> 5s), unreachable for more than 3 x stale_after = 15s at 51: headless gives up.
    lines = _with_ticks(trace_lines([Behaviour(b.version, rps=b.rps, stop=30) for b in HEALTHY],
                                    120), 80, 30)
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, events, body, err = replay(path)
    assert code == 3
    assert "unreachable for 16.0s (> 3× stale_after 5s) in the trace" in err
    assert body is not None
    assert (body["outcome"], body["trace"]["replayed"]) == ("unreachable", 51.0)
    assert body["trace"]["tick_lines"] == 81 and body["trace"]["failed_ticks"] == 22
    assert body["ended"].startswith("replay stopped in phase progressing at step 2/3")
    assert [e["ts"] for e in events if e["event"] == "stale"] == ["2027-01-15T08:00:35.000Z"]


def test_trace_ending_while_stale_exits_3(tmp_path: Path):
    lines = _with_ticks(trace_lines([Behaviour(b.version, rps=b.rps, stop=30) for b in HEALTHY],
                                    120), 42, 30)
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, _, body, err = replay(path)
    assert code == 3 and "trace ended while unreachable for 7.0s" in err
    assert body is not None and body["outcome"] == "unreachable"
