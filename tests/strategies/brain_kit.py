"""Shared test kit for the brain: specs from TOML text, metric samples, and a tiny in-memory world.

The world is the "platform" of these tests: it applies the engine's actions (weights, replicas)
and confirms them with `engine.action_done`, as the driver does.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from strategies.engine import CheckResult, Engine
from strategies.model import (
    Action,
    Command,
    CommandKind,
    Decision,
    Instance,
    MetricSample,
    MetricsSnapshot,
    PlatformSnapshot,
    Snapshot,
    VersionStatus,
)
from strategies.spec import ReleaseSpec, parse_spec

T0 = 1_700_000_000.0

BASE = """
[release]
service = "checkout"
baseline = "v1"
candidate = "v2"

[platform]
kind = "local"
replicas = {replicas}

[metrics]
interval = "1s"
window = "10s"
stale_after = "5s"
"""

ERROR_GATE = """
[[gate]]
name = "errors"
metric = "error_rate"
max = 0.05
severity = "critical"
min_requests = 20
"""

STRATEGIES = {
    "canary": 'kind = "canary"\nsteps = [10, 50, 100]\nhold = "10s"\nscale_down_delay = "5s"',
    "blue-green": 'kind = "blue-green"\npreview_hold = "5s"\nhold = "10s"\nscale_down_delay = "5s"',
    "rolling": 'kind = "rolling"\nmax_surge = 1\nmax_unavailable = 0\nhold = "10s"\nscale_down_delay = "5s"',
    "ab": 'kind = "ab"\nsplit = 30\nduration = "20s"\nhold = "5s"\nscale_down_delay = "5s"',
    "ring": ('kind = "ring"\nhold = "10s"\nscale_down_delay = "5s"\n'
             'rings = [{name = "internal", weight = 5}, {name = "beta", weight = 30, hold = "20s"}, '
             '{name = "everyone", weight = 100}]'),
    "flag": ('kind = "flag"\nflag = "new-checkout"\nstep_weight = 20\nmax_weight = 60\nhold = "10s"\n'
             'scale_down_delay = "5s"'),
}


def make_spec(strategy: str = STRATEGIES["canary"], gates: str = ERROR_GATE, replicas: int = 1,
              extra: str = "") -> ReleaseSpec:
    """A ReleaseSpec from TOML text: the common head, a [strategy] body and gate tables."""
    text = BASE.format(replicas=replicas) + "\n[strategy]\n" + strategy + "\n" + gates + extra
    return parse_spec(tomllib.loads(text), "test.toml")


def sample(version: str, at: float, *, requests: float | None = 200.0, error_ratio: float | None = 0.0,
           p50: float | None = 0.02, p95: float | None = 0.04, p99: float | None = 0.05,
           throughput: float | None = 20.0, errors: float | None = None) -> MetricSample:
    if errors is None and requests is not None and error_ratio is not None:
        errors = requests * error_ratio
    return MetricSample(version=version, at=at, requests=requests, throughput=throughput,
                        error_ratio=error_ratio, latency_p50=p50, latency_p95=p95, latency_p99=p99,
                        errors=errors)


def metrics(at: float, *samples: MetricSample, error: str | None = None) -> MetricsSnapshot:
    return MetricsSnapshot(at=at, samples={s.version: s for s in samples}, source="test", error=error)


@dataclass
class World:
    """What the platform and router hold: replicas per version and the candidate's weight."""

    baseline: str = "v1"
    candidate: str = "v2"
    replicas: dict[str, int] = field(default_factory=dict)
    weight: int = 0
    applied: list[Action] = field(default_factory=list)

    @classmethod
    def for_spec(cls, spec: ReleaseSpec) -> World:
        n = max(1, spec.platform.replicas)
        return cls(spec.release.baseline, spec.release.candidate,
                   {spec.release.baseline: n, spec.release.candidate: 0})

    def platform(self, now: float) -> PlatformSnapshot:
        versions = {
            v: VersionStatus(v, tuple(Instance(f"{v}-{i}", v, True) for i in range(n)))
            for v, n in self.replicas.items()}
        return PlatformSnapshot(at=now, versions=versions,
                                weights={self.baseline: 100.0 - self.weight,
                                         self.candidate: float(self.weight)})

    def healthy(self, now: float, **candidate: float | None) -> Snapshot:
        """Both versions ready and serving; keyword arguments override the candidate's sample."""
        return Snapshot(at=now, platform=self.platform(now), metrics=metrics(
            now, sample(self.baseline, now), sample(self.candidate, now, **candidate)))

    def apply(self, action: Action) -> None:
        self.applied.append(action)
        if action.kind == "set_weight":
            self.weight = action.value
        elif action.kind == "scale":
            self.replicas[action.version] = action.value

    def settle(self, engine: Engine, now: float) -> list[Decision]:
        """Carry out every pending action, in order, and confirm each one to the engine."""
        out: list[Decision] = []
        for action in list(engine.state.pending):
            self.apply(action)
            out.extend(engine.action_done(action, now))
        return out


def tick(engine: Engine, world: World, now: float, snapshot: Snapshot | None = None,
         checks: Iterable[CheckResult] = (), **candidate: float | None) -> list[Decision]:
    """One driver tick: decide on the snapshot (healthy by default), then act on the decisions."""
    decisions = engine.tick(snapshot or world.healthy(now, **candidate), now, checks)
    return decisions + world.settle(engine, now)


def command(engine: Engine, world: World, kind: CommandKind, now: float,
            value: int | None = None) -> list[Decision]:
    decisions = engine.command(Command(kind, value=value), now)
    return decisions + world.settle(engine, now)


def kinds(decisions: Sequence[Decision]) -> list[str]:
    return [d.kind for d in decisions if d.kind not in ("gate", "action_done")]


def run_until(engine: Engine, world: World, start: float, *, until: Iterable[str] = ("promoted",),
              step: float = 1.0, limit: int = 500, **candidate: float | None) -> tuple[float, list[Decision]]:
    """Tick every `step` seconds until a decision of a kind in `until` (bounded by `limit` ticks)."""
    wanted = set(until)
    now, seen = start, []
    for _ in range(limit):
        decisions = tick(engine, world, now, **candidate)
        seen.extend(decisions)
        if any(d.kind in wanted for d in decisions):
            return now, seen
        now += step
    raise AssertionError(f"none of {sorted(wanted)} within {limit} ticks; last phase "
                         f"{engine.state.phase.value}, decisions {kinds(seen)[-10:]}")
