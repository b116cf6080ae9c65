"""In-test adapters and spec builders for the headless tests: small, real async objects."""

from __future__ import annotations

import asyncio
import copy
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from strategies.model import (
    Instance,
    MetricSample,
    MetricsSnapshot,
    PlatformSnapshot,
    VersionStatus,
    frozen_map,
)
from strategies.spec import ReleaseSpec, parse_spec
from tui.headless import run_headless_async
from tui.session import RunOptions, assemble
from tui.wiring import Adapters

BASE_SPEC: dict[str, Any] = {
    "release": {"service": "checkout", "baseline": "v1", "candidate": "v2"},
    "platform": {"kind": "local", "replicas": 1},
    "router": {"kind": "none"},
    "metrics": {"source": "scrape", "interval": "20ms", "window": "1s", "timeout": "500ms",
                "stale_after": "100ms"},
    "strategy": {"kind": "canary", "steps": [20, 50, 100], "hold": "60ms",
                 "scale_down_delay": "0s"},
    "gate": [{"name": "errors", "metric": "error_rate", "max": 0.05, "severity": "critical",
              "min_requests": 10}],
}


def make_spec(path: str = "<test>", **sections: Any) -> ReleaseSpec:
    """The base spec with whole sections replaced (alert=[...], webhook=[...], metrics={...})."""
    data = copy.deepcopy(BASE_SPEC)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_spec(data, path)


class Platform:
    """Every version runs `replicas` ready instances; scale and set_weights are remembered."""

    kind = "test"

    def __init__(self) -> None:
        self.replicas: dict[str, int] = {"v1": 1, "v2": 1}
        self.weights: dict[str, float] = {"v1": 100.0, "v2": 0.0}
        self.calls: list[tuple[str, Any]] = []
        self.failing = False

    async def snapshot(self, versions: Sequence[str], now: float) -> PlatformSnapshot:
        if self.failing:
            raise ConnectionError("platform API refused the connection")
        statuses = {v: VersionStatus(v, tuple(Instance(f"{v}-{i}", v, True)
                                              for i in range(self.replicas.get(v, 0))),
                                     desired=self.replicas.get(v, 0)) for v in versions}
        return PlatformSnapshot(at=now, versions=frozen_map(statuses),
                                weights=frozen_map(self.weights))

    async def scale(self, version: str, replicas: int) -> None:
        self.calls.append(("scale", (version, replicas)))
        self.replicas[version] = replicas

    async def set_weights(self, weights: Mapping[str, int]) -> None:
        self.calls.append(("set_weights", dict(weights)))
        self.weights = {k: float(v) for k, v in weights.items()}

    async def close(self) -> None:
        return None


class Source:
    """Per-version error ratio; `bad` makes the candidate fail, `down` makes every read fail."""

    name = "test"

    def __init__(self, *, bad: bool = False) -> None:
        self.bad = bad
        self.down = False
        self.reads = 0

    async def collect(self, versions: Sequence[str], platform: PlatformSnapshot | None,
                      now: float) -> MetricsSnapshot:
        self.reads += 1
        if self.down:
            raise ConnectionError("connection refused by 127.0.0.1:9")
        samples = {}
        for v in versions:
            ratio = 0.5 if (self.bad and v == "v2") else 0.001
            samples[v] = MetricSample(v, now, requests=200.0, throughput=50.0, error_ratio=ratio,
                                      errors=200 * ratio, latency_p50=0.01, latency_p95=0.02,
                                      latency_p99=0.03)
        return MetricsSnapshot(at=now, samples=frozen_map(samples), source=self.name)

    async def close(self) -> None:
        return None


class TickClock:
    """A driver clock that moves a fixed step per reading, so a `timeout` means a number of
    ticks, not a wall-clock race on a busy machine. Starts at the real time (sane timestamps)."""

    def __init__(self, step: float = 0.005):
        import time

        self.now = time.time()
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def run(spec: Any, platform: Platform, source: Source, tmp_path: Path, *, until: str = "done",
        timeout: float | None = 20.0, observe: bool = False, flush: float = 10.0,
        fresh: bool = False, ticking: bool = False) -> tuple[int, list[dict[str, Any]], str, Any]:
    """A headless run; `ticking` uses TickClock, for tests whose end is a timeout."""
    out, err = io.StringIO(), io.StringIO()
    session = assemble(spec, Adapters(platform, None, source),
                       RunOptions(observe=observe, journal_path=str(tmp_path / "journal"),
                                  fresh=fresh, alert_stream=out, alert_backoff=0.01),
                       clock=TickClock() if ticking else None, err=err)
    code = asyncio.run(run_headless_async(session, until=until, timeout=timeout, out=out,
                                          err=err, flush_timeout=flush))
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    return code, events, err.getvalue(), session


def names(events: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in events]
