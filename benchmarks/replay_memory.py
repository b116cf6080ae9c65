"""Replay memory: peak RSS and time of `releasedeck replay` on a large trace.

Writes an 11-hour trace of 1-second collections for two versions with tick lines (80,000
counters lines with 12 latency buckets each + 40,000 tick lines, ~30 MB), under a spec whose
holds outlast it, so every line is replayed. Three orders of the same lines:
  in order           the recorder's own order
  jittered           every line up to 30 s late (several scrapers merged): the reorder window
  shuffled           a full shuffle: out of order beyond the window, sorted through temp files
Each replay runs in its own process (`python -m tui.cli replay`); its peak RSS (ru_maxrss), CPU
and wall time are printed, with the load average.

    PYTHONPATH=. .venv/bin/python benchmarks/replay_memory.py [--seconds 40000] [--code DIR]

`--code DIR` replays with the releasedeck checked out in DIR (to compare with another commit).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from strategies.trace import tick_line
from tests.support.traces import Behaviour, trace_lines

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
hold = "4h"
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

ONE = """
import resource, sys, time
from tui.cli import main
began, cpu = time.perf_counter(), time.process_time()
try:
    main(["replay", sys.argv[1], sys.argv[2], "--summary"])
except SystemExit:
    pass
wall, cpu = time.perf_counter() - began, time.process_time() - cpu
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"{rss} {cpu:.2f} {wall:.2f}", file=sys.stderr)
"""


def lines(seconds: int) -> list[str]:
    """The trace in the recorder's order: a tick line after each collection's counters."""
    behaviours = [Behaviour("v1", rps=180, weight=90.0), Behaviour("v2", rps=20, weight=10.0)]
    counters = trace_lines(behaviours, seconds)
    out: list[str] = []
    for k in range(0, len(counters), 2):
        out += counters[k:k + 2]
        out.append(tick_line(1_800_000_000.0 + k // 2 + 0.01, "checkout"))
    return out


def jittered(ordered: list[str], rng: random.Random, late: float = 30.0) -> list[str]:
    """Each line moved up to `late` seconds later (a line per version per second)."""
    keyed = [(k / 3 + rng.uniform(0, late), k, line) for k, line in enumerate(ordered)]
    return [line for _key, _k, line in sorted(keyed)]


def replay(code: Path, spec: Path, trace: Path) -> tuple[int, float, float, dict]:
    """(peak RSS KiB, CPU s, wall s, summary) of one replay in a fresh process."""
    done = subprocess.run([sys.executable, "-c", ONE, str(spec), str(trace)], cwd=code,
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(code)})
    rss, cpu, wall = done.stderr.strip().splitlines()[-1].split()
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return int(rss), float(cpu), float(wall), summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=40_000)
    parser.add_argument("--code", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="replay-memory-") as tmp:
        root = Path(tmp)
        spec = root / "release.toml"
        spec.write_text(SPEC, encoding="utf-8")
        ordered = lines(args.seconds)
        shuffled = ordered[:]
        rng.shuffle(shuffled)
        for name, order in (("in order", ordered), ("jittered 30s", jittered(ordered, rng)),
                            ("shuffled", shuffled)):
            trace = root / "trace.jsonl"
            trace.write_text("".join(line + "\n" for line in order), encoding="utf-8")
            rss, cpu, wall, summary = replay(args.code, spec, trace)
            print(f"{name:>13}: {trace.stat().st_size / 1e6:.1f} MB, {len(order)} lines, "
                  f"replayed {summary['trace']['replayed']:.0f}s ({summary['trace']['ticks']} "
                  f"ticks, outcome {summary['outcome']}): peak RSS {rss / 1024:.0f} MB, "
                  f"{cpu:.1f}s CPU, {wall:.1f}s wall")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
          f"code {args.code}; python {sys.version.split()[0]}")


if __name__ == "__main__":
    started = time.time()
    main()
    print(f"(benchmark {time.time() - started:.0f}s; RSS in MB of 1024 KiB, from ru_maxrss)",
          file=sys.stderr)
