"""Test doubles of data for the app: an in-memory platform and router, a scripted metric source,
a settable clock, and deterministic scenes (operate, paused, rolled back) built by really
running the engine through the Driver. Also used by scripts/screenshots.py.
"""

from __future__ import annotations

import asyncio
import math
import tomllib
from collections.abc import Callable, Mapping, Sequence

from strategies.engine import Engine
from strategies.journal import MemoryJournal
from strategies.model import (
    Command,
    CommandKind,
    Instance,
    MetricSample,
    MetricsSnapshot,
    Phase,
    PlatformSnapshot,
    VersionStatus,
)
from strategies.spec import ReleaseSpec, parse_spec
from tui.driver import Driver

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z: every figure and event time is fixed

SPEC = """
[release]
service = "checkout"
baseline = "v1"
candidate = "v2"

[platform]
kind = "local"
replicas = 2

[metrics]
source = "scrape"
interval = "250ms"
window = "10s"
stale_after = "5s"

[strategy]
kind = "canary"
steps = [10, 25, 50, 100]
hold = "30s"
scale_down_delay = "2s"

[[gate]]
name = "errors"
metric = "error_rate"
max = 0.05
max_ratio = 3.0
for = "5s"
severity = "critical"
min_requests = 20

[[gate]]
name = "p99"
metric = "latency_p99"
max = 0.5
for = "5s"
severity = "critical"
min_requests = 20

[[gate]]
name = "p95-warn"
metric = "latency_p95"
max = 0.3
for = "10s"
severity = "warning"
min_requests = 20
"""


def make_spec(text: str = SPEC) -> ReleaseSpec:
    return parse_spec(tomllib.loads(text), "<test>")


class Clock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class MemoryPlatform:
    kind = "memory"

    def __init__(self, replicas: Mapping[str, int] | None = None) -> None:
        self.replicas: dict[str, int] = dict(replicas or {"v1": 2, "v2": 2})
        self.scaled: list[tuple[str, int]] = []

    async def snapshot(self, versions: Sequence[str], now: float) -> PlatformSnapshot:
        return PlatformSnapshot(at=now, versions={
            v: VersionStatus(v, tuple(Instance(f"{v}-{i}", v, True, address=f"127.0.0.1:{9000 + i}")
                                      for i in range(self.replicas.get(v, 0))))
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

    async def set_weights(self, weights: Mapping[str, int]) -> None:
        self.history.append(dict(weights))
        self.current = {k: float(v) for k, v in weights.items()}

    async def weights(self) -> Mapping[str, float]:
        return dict(self.current)

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


class World:
    """One Driver over the doubles, with handles on every part a test wants to inspect."""

    def __init__(self, *, read_only: bool = False, spec: ReleaseSpec | None = None) -> None:
        self.spec = spec or make_spec()
        self.clock = Clock()
        self.journal = MemoryJournal()
        self.platform = MemoryPlatform()
        self.router = MemoryRouter()
        self.source = ScriptedSource()
        self.engine = Engine(self.spec, read_only=read_only, journal=self.journal, run="testrun")
        self.driver = Driver(self.spec, self.engine, self.platform, self.router, self.source,
                             clock=self.clock, extra={"demo": True})

    async def run_for(self, seconds: int) -> None:
        """Tick once per simulated second (bounded by `seconds`)."""
        for _ in range(seconds):
            await self.driver.tick()
            self.clock.now += 1.0

    async def fault(self) -> None:
        self.source.script = broken
        self.driver.emit("fault_injected", {"version": "v2", "error_rate": 0.2},
                         severity="warning")


async def make_scene(name: str, *, read_only: bool = False) -> World:
    """A deterministic world in one of the states the screenshots and snapshots show."""
    world = World(read_only=read_only)
    await world.run_for(45)  # step 1 (10%) held 30s, now 14s into step 2 (25%)
    if name == "paused":
        await world.driver.command(Command(CommandKind.PAUSE))
        world.clock.now += 3.0
        await world.driver.tick()
    elif name == "rolled-back":
        await world.fault()
        for _ in range(30):  # bounded: the critical gates need 5s of failure
            await world.run_for(1)
            if world.engine.state.phase is Phase.ROLLED_BACK:
                break
        await world.run_for(1)
    return world


def scene(name: str, *, read_only: bool = False) -> World:
    """`make_scene` for code that is not in an event loop yet (snapshot tests, scripts)."""
    return asyncio.run(make_scene(name, read_only=read_only))
