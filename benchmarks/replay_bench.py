"""Replay speed: seconds of CPU per 10 minutes of trace.

Generates 1 hour of 1-second collections for two versions (7,200 counters lines with 12
latency buckets each), once healthy and once with a fault in the second half, replays each
end to end (read, parse, rates, Driver, Engine, JSON events to /dev/null) and prints how long
10 minutes of trace take. Target: well under 1 s.

    PYTHONPATH=. .venv/bin/python benchmarks/replay_bench.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from strategies.spec import load_spec
from tests.support.traces import Behaviour, write_trace
from tui.replay import run_replay

SPEC = """
[release]
service = "checkout"
baseline = "v1"
candidate = "v2"
[platform]
kind = "local"
[metrics]
interval = "1s"
window = "30s"
stale_after = "10s"
[strategy]
kind = "canary"
steps = [10, 25, 50, 100]
hold = "14m"
scale_down_delay = "30s"
[[gate]]
name = "errors"
metric = "error_rate"
max = 0.02
max_ratio = 3.0
for = "10s"
[[gate]]
name = "p99"
metric = "latency_p99"
max = 0.5
for = "10s"
"""

HOUR = 3600


def one(spec_path: Path, trace: Path) -> tuple[float, float, dict]:
    """(wall seconds, CPU seconds, summary) of one end-to-end replay."""
    out = io.StringIO()
    with open(os.devnull, "w") as err:
        began, cpu = time.perf_counter(), time.process_time()
        code = run_replay(load_spec(spec_path), str(trace), summary=True, out=out, err=err)
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    summary = json.loads(out.getvalue().splitlines()[-1])
    assert summary["exit_code"] == code
    return elapsed, cpu, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="replay-bench-") as tmp:
        root = Path(tmp)
        spec = root / "release.toml"
        spec.write_text(SPEC, encoding="utf-8")
        traces = {
            "healthy": [Behaviour("v1", rps=180, weight=90.0), Behaviour("v2", rps=20,
                                                                         weight=10.0)],
            "fault at 50m": [Behaviour("v1", rps=180, weight=90.0),
                             Behaviour("v2", rps=20, weight=10.0, fault_at=3000,
                                       fault_error_ratio=0.2)],
        }
        for name, behaviours in traces.items():
            path = write_trace(root / "trace.jsonl", behaviours, HOUR)
            runs = [one(spec, path) for _ in range(args.repeat)]
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            summary = runs[0][2]
            tens = summary["trace"]["replayed"] / 600
            print(f"{name:>13}: {summary['trace']['counters_lines']} lines, replayed "
                  f"{summary['trace']['replayed']:.0f}s of trace "
                  f"({summary['trace']['ticks']} ticks): per 10 min of trace "
                  f"{wall / tens:.3f}s wall, {cpu / tens:.3f}s CPU; outcome "
                  f"{summary['outcome']} at {summary['decided_at']}s (gate {summary['gate']})")
    print(f"median of {args.repeat} runs; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs (wall time grows with load, CPU time much less)")


if __name__ == "__main__":
    main()
