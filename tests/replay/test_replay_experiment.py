"""An A/B trace replays to the same experiment readout: `replay --summary` names the winner.

The trace is written line by line with the recorder's own serializer (counters plus the
experiment's cumulative visits and orders), one collection a second, B converting twice as often.
"""

from __future__ import annotations

import io
import json
import random
import tomllib
from pathlib import Path

from strategies.experiment import SUCCESS_KEY, TRIALS_KEY
from strategies.ports import RawCounters
from strategies.spec import parse_spec
from strategies.trace import counters_line, parse_line, tick_line
from tui.demo_specs import demo_spec_text
from tui.replay import run_replay

T0 = 1_790_000_000.0


def write_trace(path: Path, rate_b: float, seconds: int = 120, seed: int = 5) -> None:
    rng = random.Random(seed)
    totals = {"v1": [0.0, 0.0, 0.0], "v2": [0.0, 0.0, 0.0]}  # requests, orders, visits
    lines = []
    for second in range(seconds):
        at = T0 + second
        for version, rate in (("v1", 0.10), ("v2", rate_b)):
            served = 30.0
            totals[version][0] += served
            totals[version][2] += served
            totals[version][1] += sum(rng.random() < rate for _ in range(30))
            counters = RawCounters(version=version, at=at, requests_total=totals[version][0],
                                   errors_total=0.0, latency_buckets={"0.05": totals[version][0],
                                                                      "+Inf": totals[version][0]},
                                   custom={SUCCESS_KEY: totals[version][1],
                                           TRIALS_KEY: totals[version][2]})
            lines.append(counters_line(counters, "checkout", weight=50.0, ready=1, total=1))
        lines.append(tick_line(at, "checkout"))
    path.write_text("\n".join(lines) + "\n")


def test_custom_counters_round_trip_through_a_trace_line() -> None:
    counters = RawCounters("v2", T0, 10.0, 0.0, custom={SUCCESS_KEY: 3.0, TRIALS_KEY: 10.0})
    record = parse_line(counters_line(counters, "checkout"))
    assert record.counters.custom == {SUCCESS_KEY: 3.0, TRIALS_KEY: 10.0}
    old = parse_line('{"ts":"2026-11-27T10:00:00Z","version":"v1","requests_total":5,"errors_total":0}')
    assert old.counters.custom == {}  # traces written before experiments still read


def test_replay_summary_reports_the_experiment_winner(tmp_path: Path) -> None:
    spec = parse_spec(tomllib.loads(demo_spec_text("ab")), "<ab>")
    trace = tmp_path / "ab.trace"
    write_trace(trace, rate_b=0.22)
    out, err = io.StringIO(), io.StringIO()
    assert run_replay(spec, str(trace), summary=True, out=out, err=err) == 0, err.getvalue()
    body = json.loads(out.getvalue().strip().splitlines()[-1])
    assert body["outcome"] == "promoted" and body["decided_by"] is not None
    readout = body["experiment"]
    assert readout["winner"] == "v2" and readout["low"] > 0 and readout["control_trials"] > 0
    assert "experiment: v2 wins over v1" in err.getvalue()
