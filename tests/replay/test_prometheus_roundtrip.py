"""A release read through a real Prometheus, recorded, replays to the same decisions.

`releasedeck demo --with-prometheus` starts a real Prometheus server (1 s scrapes of the demo's
instances) and reads every metric through PromQL, as a user's `source = "prometheus"` does; a
fault in the candidate at its held second step makes the gates roll it back.

A Prometheus source has no exact counts: its gates count window shares (`approximate` on the
screen), latency gates the share of the window's histogram above the bound. A replay that
counted tallies from the raw counters judged another release: other evidence, other ticks. The
recorder now keeps the sample the live engine judged beside the raw counters, and the replay
judges on it; the comparison is the whole decision sequence (tests/replay/fidelity.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.replay.fidelity import compare, record_demo, replayed, trace_events
from tests.replay.test_live_roundtrip import held

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None,
                                reason="prometheus binary not found on PATH")


@pytest.mark.timeout(240)
def test_a_prometheus_run_replays_to_the_same_decisions_and_evidence(tmp_path: Path):
    spec_path = held(tmp_path)
    trace = tmp_path / "prometheus.jsonl"
    live_code, err = record_demo(spec_path, trace, "--with-prometheus", "--fault-at", "4",
                                 "--timeout", "120", timeout=200)
    lines = [json.loads(text) for text in trace.read_text().splitlines()] \
        if trace.exists() else []
    if not any(line.get("kind") == "tick" for line in lines):  # the stack never started
        pytest.skip(f"the demo's stack or Prometheus did not start: {err.strip()[-300:]}")
    assert live_code in (1, 3), err
    counters = [line for line in lines if "version" in line and "kind" not in line]
    assert all(line["sample"]["window"] == 5.0 for line in counters)  # what live judged, kept
    assert all("tally" not in line["sample"] for line in counters)  # Prometheus counts none

    code, events, summary, replay_err = replayed(spec_path, trace)
    assert code == live_code, replay_err
    result = compare(trace_events(trace), events)
    assert result.same, result.differences
    if live_code == 1:
        assert summary["outcome"] == "rolled_back"
        # The latency gate tested the share of slow requests in Prometheus' window histogram,
        # as live did (a point comparison of two window quantiles flips on noise).
        assert summary["gates"]["latency-p99"]["evidence"].get("test") == "sequential", summary
