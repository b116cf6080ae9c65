"""`releasedeck history` over 10,000 journal runs: seconds to read, summarise and print.

Writes journals the way the engine does (one healthy canary with an operator pause and one
rolled back by a gate, recorded through the real Engine, then repeated under new run ids and
times until the count is reached: a year of releases across 20 services), then times
`history` end to end (find, read, summarise, figures, table) on them. Target: ≤ 2 s.

    PYTHONPATH=. .venv/bin/python benchmarks/history_bench.py [--runs 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

from strategies.journal import MemoryJournal
from tests.history.test_history import _faulty_run, _healthy_run
from tests.strategies.brain_kit import T0
from tui.cli import build_parser
from tui.history import JOURNAL_SUFFIX, history_command

SERVICES = 20
DAY = 86_400.0


def write_journals(folder: Path, runs: int) -> int:
    """`runs` attempts spread over SERVICES journals; returns the number of lines written."""
    healthy, faulty = MemoryJournal(), MemoryJournal()
    _healthy_run(healthy, T0)
    _faulty_run(faulty, T0)
    patterns = [healthy.records, faulty.records, healthy.records, healthy.records]
    lines = 0
    handles = [(folder / f".svc{i:02d}{JOURNAL_SUFFIX}").open("w") for i in range(SERVICES)]
    for n in range(runs):
        shift = n * (365 * DAY / runs)
        service = f"svc{n % SERVICES:02d}"
        for record in patterns[n % len(patterns)]:
            copy = dict(record, run=f"run{n}", release=service, at=record["at"] + shift)
            handles[n % SERVICES].write(json.dumps(copy, separators=(",", ":")) + "\n")
            lines += 1
    for handle in handles:
        handle.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        lines = write_journals(folder, options.runs)
        times, cpu = [], []
        for _ in range(options.repeat):
            out, err = io.StringIO(), io.StringIO()
            args = build_parser().parse_args(["history", str(folder)])
            started, cpu0 = time.perf_counter(), time.process_time()
            history_command(args, out, err)
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu0)
        rows = out.getvalue().count("\n")
        print(f"history over {options.runs} runs ({lines} journal lines, {SERVICES} journals, "
              f"{rows} lines printed): median {statistics.median(times):.2f} s wall "
              f"({statistics.median(cpu):.2f} s CPU), max {max(times):.2f} s over "
              f"{options.repeat} runs")


if __name__ == "__main__":
    main()
