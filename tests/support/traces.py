"""Synthetic traces with known behaviour: steady traffic, faults, restarts, gaps, late versions.

Counters grow by exact amounts each collection so tests can compute expected rates by hand:
every collection k (at t0 + k * interval) adds `rps * interval` requests to a version, a share
`error_ratio` of them errors, and latencies spread evenly over [0, 2 * latency] seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from strategies.ports import RawCounters
from strategies.trace import counters_line

BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def label(bound: float) -> str:
    return f"{bound:g}"


@dataclass
class Behaviour:
    """How one version behaves over the trace; times are seconds from the trace start."""

    version: str
    rps: float = 10.0
    error_ratio: float = 0.0
    latency: float = 0.02
    weight: float | None = None
    start: float = 0.0  # first line at or after this time (a late version)
    stop: float | None = None  # no lines from this time on
    restarts: frozenset[int] = frozenset()  # collection indexes where counters restart at 0
    missing: frozenset[int] = frozenset()  # collection indexes with no line (failed scrape)
    fault_at: float | None = None  # from here on: fault_error_ratio and fault_latency
    fault_error_ratio: float = 0.5
    fault_latency: float | None = None


@dataclass
class _Counter:
    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[str, float] = field(default_factory=dict)


def counters(behaviours: Sequence[Behaviour], seconds: float, *, t0: float = 1_800_000_000.0,
             interval: float = 1.0) -> Iterable[tuple[RawCounters, Behaviour]]:
    """Raw counters of every version at every collection, in time order."""
    state = {b.version: _Counter() for b in behaviours}
    steps = round(seconds / interval)
    for k in range(steps + 1):
        offset = k * interval
        for b in behaviours:
            if offset < b.start or (b.stop is not None and offset >= b.stop):
                continue
            c = state[b.version]
            if k in b.restarts:
                state[b.version] = c = _Counter()
            faulted = b.fault_at is not None and offset > b.fault_at
            ratio = b.fault_error_ratio if faulted else b.error_ratio
            latency = (b.fault_latency or b.latency) if faulted else b.latency
            n = b.rps * interval
            c.requests += n
            c.errors += n * ratio
            for bound in BOUNDS:
                share = min(1.0, bound / (2 * latency))
                c.buckets[label(bound)] = c.buckets.get(label(bound), 0.0) + n * share
            c.buckets["+Inf"] = c.requests
            if k in b.missing:
                continue
            yield (RawCounters(b.version, t0 + offset, c.requests, c.errors, dict(c.buckets)), b)


def trace_lines(behaviours: Sequence[Behaviour], seconds: float, *, service: str = "checkout",
                t0: float = 1_800_000_000.0, interval: float = 1.0,
                events: bool = False) -> list[str]:
    lines = []
    for raw, b in counters(behaviours, seconds, t0=t0, interval=interval):
        lines.append(counters_line(raw, service, weight=b.weight))
        if events:
            lines.append(json.dumps({"kind": "event", "ts": raw.at, "event": "noise"}))
    return lines


def write_trace(path: Path, behaviours: Sequence[Behaviour], seconds: float, **kwargs) -> Path:
    path.write_text("\n".join(trace_lines(behaviours, seconds, **kwargs)) + "\n",
                    encoding="utf-8")
    return path
