"""Detection latency of the headless demo: fault onset → rollback decision → candidate weight 0.

Runs `releasedeck demo --headless` as a real subprocess, N times per metric source with a
fault, and N times healthy, and reads the timings off the JSON-line events it prints.

    .venv/bin/python benchmarks/detection_latency.py --runs 10
    .venv/bin/python benchmarks/detection_latency.py --runs 3 --sources scrape --healthy 0
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from strategies.model import parse_rfc3339

RELEASEDECK = [sys.executable, "-m", "tui.cli"]
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    code: int
    detect: float | None  # fault → rollback decision, seconds
    weight_zero: float | None  # fault → router confirmed candidate weight 0, seconds
    rollbacks: int


def run_demo(source: str, fault_at: float | None, timeout: float) -> Run:
    cmd = [*RELEASEDECK, "demo", "--headless", "--timeout", str(timeout)]
    if fault_at is not None:
        cmd += ["--fault-at", str(fault_at)]
    if source == "prometheus":
        cmd += ["--with-prometheus"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout + 60,
                          check=False)
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    fault = next((parse_rfc3339(e["ts"]) for e in events if e["event"] == "fault_injected"), None)
    decided = next((e for e in events if e["event"] in ("rolling_back", "aborted")), None)
    zero = None
    if decided is not None:
        ids = {a["id"] for a in decided.get("actions", []) if a["kind"] == "set_weight"}
        zero = next((parse_rfc3339(e["ts"]) for e in events if e["event"] == "action_done"
                     and any(x.get("action") in ids for x in e.get("evidence", []))), None)
    rollbacks = sum(1 for e in events if e["event"] == "rolling_back")
    detect = parse_rfc3339(decided["ts"]) - fault if decided and fault else None
    return Run(proc.returncode, detect, zero - fault if zero and fault else None, rollbacks)


def summarise(label: str, values: list[float]) -> str:
    if not values:
        return f"{label}: no data"
    return (f"{label}: median {statistics.median(values):.2f}s, max {max(values):.2f}s, "
            f"n={len(values)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="fault runs per source")
    parser.add_argument("--healthy", type=int, default=10, help="healthy runs per source")
    parser.add_argument("--sources", default="scrape,prometheus")
    parser.add_argument("--fault-at", type=float, default=12.0)
    args = parser.parse_args()
    sources = [s for s in args.sources.split(",") if s]
    if "prometheus" in sources and shutil.which("prometheus") is None:
        print("prometheus not on PATH: skipping the prometheus source")
        sources.remove("prometheus")
    for source in sources:
        faults = [run_demo(source, args.fault_at, timeout=60) for _ in range(args.runs)]
        detect = [r.detect for r in faults if r.detect is not None]
        zero = [r.weight_zero for r in faults if r.weight_zero is not None]
        print(f"[{source}] fault runs: {len(faults)}, exit 1: "
              f"{sum(r.code == 1 for r in faults)}, rolled back: {len(detect)}")
        print(f"[{source}] " + summarise("fault → rollback decision", detect))
        print(f"[{source}] " + summarise("fault → candidate weight 0", zero))
        if args.healthy:
            healthy = [run_demo(source, None, timeout=120) for _ in range(args.healthy)]
            print(f"[{source}] healthy runs: {len(healthy)}, promoted (exit 0): "
                  f"{sum(r.code == 0 for r in healthy)}, rollbacks: "
                  f"{sum(r.rollbacks for r in healthy)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
