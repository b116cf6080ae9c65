"""Journal growth of one long step: lines and bytes an hour, evidence checkpoints every tick
(before, EVIDENCE_EVERY = 0) against bounded checkpoints (now).

    PYTHONPATH=. .venv/bin/python benchmarks/journal_growth.py            # one simulated hour
    PYTHONPATH=. .venv/bin/python benchmarks/journal_growth.py --json

What runs: the real engine writing the real journal file (JournalWriter, fsync per line), a tick
a second for an hour of simulated time on one canary step (hold 2 h) with an error-rate and a
p99 latency gate, healthy traffic from cumulative counters (as a scrape gives them). Simulated
time, so it takes seconds, not an hour; the figure is the file the hour leaves behind.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from strategies import engine as engine_module  # noqa: E402
from strategies.engine import Engine  # noqa: E402
from strategies.journal import JournalWriter  # noqa: E402
from strategies.model import MetricsSnapshot, Snapshot  # noqa: E402
from tests.strategies.brain_kit import T0, World, make_spec  # noqa: E402
from tests.strategies.test_gate_evidence import Counter  # noqa: E402

GATES = """
[[gate]]
name = "errors"
metric = "error_rate"
max = 0.05
min_requests = 20

[[gate]]
name = "latency"
metric = "latency_p99"
max = 0.5
"""


def one_step(seconds: int, every: float, folder: Path) -> dict[str, float]:
    """Lines and bytes the journal holds after `seconds` ticks of one step (checkpoints at
    most every `every` seconds while counts only grow)."""
    engine_module.EVIDENCE_EVERY = every
    spec = make_spec('kind = "canary"\nsteps = [10, 100]\nhold = "2h"', GATES)
    path = folder / f"every-{every:g}.journal"
    writer = JournalWriter(path)
    engine, world = Engine(spec, journal=writer), World.for_spec(spec)
    base, cand = Counter("v1"), Counter("v2")
    for t in range(seconds):
        base.serve(45, 0)
        cand.serve(5, 0)
        now = T0 + t
        samples = {s.version: s for s in (base.sample(now), cand.sample(now))}
        engine.tick(Snapshot(at=now, platform=world.platform(now),
                             metrics=MetricsSnapshot(at=now, samples=samples)), now)
        world.settle(engine, now)
    writer.close()
    assert engine.state.step == 0, "the step ended early: the figure would not be one step"
    lines = path.read_text().splitlines()
    scale = 3600 / seconds
    return {"every": every, "lines_per_hour": round(len(lines) * scale),
            "bytes_per_hour": round(path.stat().st_size * scale),
            "evidence_lines_per_hour": round(sum('"kind":"evidence"' in x for x in lines) * scale)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3600, help="simulated length of the step")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    bounded = engine_module.EVIDENCE_EVERY
    with tempfile.TemporaryDirectory(prefix="releasedeck-journal-growth-") as tmp:
        rows = [one_step(args.seconds, every, Path(tmp)) for every in (0.0, bounded)]
    if args.json:
        print(json.dumps(rows))
        return 0
    for label, row in zip(("every tick (before)", f"at most every {bounded:g}s (now)"), rows,
                          strict=True):
        print(f"{label:>26}: {row['lines_per_hour']:>6,} lines/h "
              f"({row['evidence_lines_per_hour']:,} evidence), "
              f"{row['bytes_per_hour'] / 1e6:.2f} MB/h")
    return 0


if __name__ == "__main__":
    sys.exit(main())
