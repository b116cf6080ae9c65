"""In-memory doubles of data shared by the driver, app and screenshot tests: a settable clock,
a platform and a router kept in dicts, and a metric source whose answers come from a script.
They stand in for data, never for the code under test (the engine and driver are real).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from strategies.cohorts import Route
from strategies.model import (
    Instance,
    MetricSample,
    MetricsSnapshot,
    PlatformSnapshot,
    VersionStatus,
)

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z: every figure and event time is fixed


class Clock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class MemoryPlatform:
    kind = "memory"

    def __init__(self, replicas: Mapping[str, int] | None = None,
                 usage: Mapping[str, tuple[float, float]] | None = None) -> None:
        self.replicas: dict[str, int] = dict(replicas or {"v1": 2, "v2": 2})
        self.usage = dict(usage or {})  # version → (cores, bytes) each instance reports
        self.scaled: list[tuple[str, int]] = []

    async def snapshot(self, versions: Sequence[str], now: float) -> PlatformSnapshot:
        def instance(v: str, i: int) -> Instance:
            cpu, memory = self.usage.get(v, (None, None))
            return Instance(f"{v}-{i}", v, True, address=f"127.0.0.1:{9000 + i}", cpu=cpu, memory=memory)

        return PlatformSnapshot(at=now, versions={
            v: VersionStatus(v, tuple(instance(v, i) for i in range(self.replicas.get(v, 0))))
            for v in versions})

    async def scale(self, version: str, replicas: int) -> None:
        self.scaled.append((version, replicas))
        self.replicas[version] = replicas

    async def close(self) -> None:
        return None


class MemoryRouter:
    kind = "memory"

    def __init__(self) -> None:
        self.current: dict[str, float] = {"v1": 100.0, "v2": 0.0}
        self.history: list[dict[str, int]] = []
        self.routes: list[Route] = []  # cohort tables set (rings, sticky users, mirror)

    async def set_weights(self, weights: Mapping[str, int]) -> None:
        self.history.append(dict(weights))
        self.current = {k: float(v) for k, v in weights.items()}

    async def weights(self) -> Mapping[str, float]:
        return dict(self.current)

    async def set_route(self, route: Route) -> None:
        self.routes.append(route)

    async def close(self) -> None:
        return None


Script = Callable[[str, float], MetricSample]


def healthy(version: str, now: float) -> MetricSample:
    """Smooth, deterministic numbers: the candidate a little noisier than the baseline."""
    wave = math.sin(now / 7.0)
    candidate = version == "v2"
    requests = 400.0 if not candidate else 120.0
    error = (0.004 if candidate else 0.002) + 0.001 * wave
    p99 = (0.180 if candidate else 0.150) + 0.02 * math.cos(now / 5.0)
    return MetricSample(
        version=version, at=now, requests=requests, throughput=requests / 10.0,
        error_ratio=error, errors=error * requests, latency_p50=p99 * 0.25,
        latency_p95=p99 * 0.7, latency_p99=p99)


def broken(version: str, now: float) -> MetricSample:
    """The candidate after a fault: one request in five fails and p99 jumps."""
    sample = healthy(version, now)
    if version != "v2":
        return sample
    return MetricSample(version=version, at=now, requests=sample.requests,
                        throughput=sample.throughput, error_ratio=0.21,
                        errors=0.21 * (sample.requests or 0), latency_p50=0.09,
                        latency_p95=0.62, latency_p99=0.95)


class ScriptedSource:
    """A metric source whose answers come from a script function; swap it to inject a fault."""

    name = "scripted"

    def __init__(self, script: Script = healthy) -> None:
        self.script = script
        self.calls = 0

    async def collect(self, versions: Sequence[str], platform: PlatformSnapshot | None,
                      now: float) -> MetricsSnapshot:
        self.calls += 1
        return MetricsSnapshot(at=now, source=self.name,
                               samples={v: self.script(v, now) for v in versions})

    async def close(self) -> None:
        return None
