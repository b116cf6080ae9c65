"""Resources per version reach the gates: cpu, memory and restarts as gate metrics."""

from __future__ import annotations

from strategies.engine import Engine
from strategies.model import (
    Instance,
    MetricsSnapshot,
    Phase,
    PlatformSnapshot,
    Snapshot,
    VersionStatus,
)
from strategies.resources import with_resources
from tests.strategies.brain_kit import T0, World, make_spec, metrics, sample, tick

MIB = 1024 * 1024


def _platform(now: float, memory: dict[str, float], cpu: float | None = 0.1,
              restarts: int = 0) -> PlatformSnapshot:
    versions = {v: VersionStatus(v, (Instance(f"{v}-0", v, True, cpu=cpu, memory=m / 2,
                                              restarts=restarts),
                                     Instance(f"{v}-1", v, True, cpu=cpu, memory=m / 2)))
                for v, m in memory.items()}
    return PlatformSnapshot(at=now, versions=versions, weights={"v1": 90.0, "v2": 10.0})


def test_resources_join_the_samples_of_the_versions_the_source_answered_for() -> None:
    joined = with_resources(metrics(T0, sample("v1", T0)),
                            _platform(T0, {"v1": 100 * MIB, "v2": 300 * MIB}, restarts=2))
    assert set(joined.samples) == {"v1"}  # v2 has no metrics: its last full sample stays
    v1 = joined.samples["v1"]
    assert (v1.cpu, v1.memory, v1.restarts) == (0.2, 100 * MIB, 2.0)
    assert v1.value("memory") == 100 * MIB and v1.value("cpu") == 0.2
    assert v1.requests == 200.0  # the request figures are untouched


def test_a_failed_platform_read_adds_no_resources() -> None:
    snapshot = metrics(T0, sample("v1", T0))
    broken = PlatformSnapshot(at=T0, error="engine down")
    assert with_resources(snapshot, broken) is snapshot
    assert with_resources(snapshot, None) is snapshot
    unmeasured = with_resources(snapshot, _platform(T0, {"v1": 0}, cpu=None))
    assert unmeasured.samples["v1"].cpu is None


def test_memory_ratio_gate_rolls_back_a_candidate_using_three_times_the_baseline() -> None:
    spec = make_spec(gates='''
[[gate]]
name = "memory"
metric = "memory"
max_ratio = 1.2
severity = "critical"
min_requests = 0
''')
    engine, world = Engine(spec), World.for_spec(spec)
    tick(engine, world, T0)  # started: the candidate takes its first step

    def snapshot(now: float, candidate_memory: float) -> Snapshot:
        return Snapshot(at=now, platform=_platform(now, {"v1": 100 * MIB, "v2": candidate_memory}),
                        metrics=MetricsSnapshot(at=now, samples={
                            "v1": sample("v1", now), "v2": sample("v2", now)}, source="test"))

    healthy = tick(engine, world, T0 + 1, snapshot(T0 + 1, 110 * MIB))
    assert engine.state.phase is Phase.PROGRESSING, [d.kind for d in healthy]
    gate = next(g for g in engine.gates if g.name == "memory")
    assert gate.status.value == "pass" and gate.value == 110 * MIB

    decisions = tick(engine, world, T0 + 2, snapshot(T0 + 2, 300 * MIB))
    assert "rolling_back" in [d.kind for d in decisions]
    cause = next(d for d in decisions if d.kind == "rolling_back").evidence[0]
    assert cause["gate"] == "memory" and cause["value"] == 300 * MIB
