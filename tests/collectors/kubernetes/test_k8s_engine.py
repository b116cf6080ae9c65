"""The real engine walking a canary on kmock through the replicas lever, as the driver would.

A tiny stand-in for the Deployment controller and kubelet makes pods follow spec.replicas,
so readiness, weights and the engine's holds see what a cluster would show.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from k8s_harness import DEPLOYMENTS, NS, PODS, kmock_cluster, make_spec, seed, seed_release, stored

from collectors.kubernetes import KubernetesPlatform
from strategies.engine import Engine
from strategies.model import MetricSample, MetricsSnapshot, Phase, Snapshot


def reconcile(k) -> None:
    """Pods follow each Deployment's spec.replicas, all Ready; Deployment status follows pods."""
    for name in ("checkout-v1", "checkout-v2"):
        dep = stored(k, DEPLOYMENTS, name)
        want = int(dep["spec"]["replicas"])
        labels = dep["spec"]["template"]["metadata"]["labels"]
        mine = sorted(key for key, obj in k.objects.items()
                      if key[0] == PODS and not obj.deleted and key[2].startswith(f"{name}-"))
        for key in mine[want:]:
            k.objects[key].delete()
        for i in range(len(mine), want):
            seed(k, PODS, {"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"name": f"{name}-{i}", "namespace": NS, "labels": labels},
                           "spec": {"containers": dep["spec"]["template"]["spec"]["containers"]},
                           "status": {"phase": "Running", "podIP": f"10.0.0.{i + 1}",
                                      "conditions": [{"type": "Ready", "status": "True"}]}})
        k.objects[DEPLOYMENTS, NS, name].patch({"status": {
            "replicas": want, "updatedReplicas": want, "readyReplicas": want, "availableReplicas": want}})


def run_release(tmp_path: Path, candidate_errors: float) -> tuple[Engine, list[tuple[int, int]], list[str]]:
    async def scenario():
        async with kmock_cluster(tmp_path) as (k, kubeconfig):
            seed_release(k)
            for key, obj in list(k.objects.items()):  # start clean: only v1 runs, at full size
                if key[0] == PODS and not obj.deleted:
                    obj.delete()
            k.objects[DEPLOYMENTS, NS, "checkout-v1"].patch({"spec": {"replicas": 4}})
            k.objects[DEPLOYMENTS, NS, "checkout-v2"].patch({"spec": {"replicas": 0}})
            reconcile(k)
            spec = make_spec(kubeconfig, "replicas", replicas=4,
                             strategy={"kind": "canary", "steps": [25, 50, 100], "hold": "10s",
                                       "scale_down_delay": "5s"})
            spec = type(spec)(**{**spec.__dict__, "gates": _gates()})
            engine = Engine(spec)
            platform = KubernetesPlatform(spec)
            seen: list[tuple[int, int]] = [(4, 0)]
            now = 1000.0
            ticks = 0
            for _ in range(60):  # bounded: a 3-step canary needs about 15 ticks
                ticks += 1
                snap = await platform.snapshot(spec.versions, now)
                assert snap.error is None, snap.error
                samples = {v: MetricSample(version=v, at=now, requests=100.0, throughput=10.0,
                                           error_ratio=candidate_errors if v == "v2" else 0.0)
                           for v in spec.versions if snap.version(v).ready}
                engine.tick(Snapshot(at=now, platform=snap, metrics=MetricsSnapshot(at=now, samples=samples)), now)
                for action in list(engine.state.pending):
                    if action.kind == "scale":
                        await platform.scale(action.version, action.value)
                    else:
                        await platform.set_weights({"v1": 100 - action.value, "v2": action.value})
                    engine.action_done(action, now, True)
                reconcile(k)
                pair = (stored(k, DEPLOYMENTS, "checkout-v1")["spec"]["replicas"],
                        stored(k, DEPLOYMENTS, "checkout-v2")["spec"]["replicas"])
                if seen[-1] != pair:
                    seen.append(pair)
                if engine.finished:
                    break
                now += 5.0
            await platform.close()
            return engine, seen, [snap.weight_note], ticks

    return asyncio.run(scenario())


def _gates():
    from strategies.spec import GateSpec

    return (GateSpec(name="errors", metric="error_rate", max=0.05, min_requests=20.0),)


def test_canary_promotes_through_replica_ratios(tmp_path: Path) -> None:
    engine, seen, notes, ticks = run_release(tmp_path, candidate_errors=0.0)
    assert engine.finished and engine.state.phase is Phase.SUCCEEDED
    assert ticks < 60
    assert seen == [(4, 0), (3, 1), (2, 2), (0, 4)]
    assert notes == ["weight ≈ replicas"]


def test_failing_candidate_rolls_back_to_baseline(tmp_path: Path) -> None:
    engine, seen, _, _ = run_release(tmp_path, candidate_errors=0.3)
    assert engine.finished and engine.state.phase is Phase.ROLLED_BACK
    assert seen == [(4, 0), (3, 1), (4, 0)]
