"""Every lever against kmock over real HTTP: what it writes, and what it reads back.

kmock stores objects and applies patches as dict merges, so the objects after a lever acted are
compared field by field with what a real API server would hold after the same patch.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from k8s_harness import (
    DEPLOYMENTS,
    HTTPROUTES,
    NS,
    ROLLOUTS,
    SERVICES,
    fixture,
    kmock_cluster,
    make_spec,
    platform_for,
    seed,
    seed_release,
    stored,
    writes,
)

from collectors.fleet_discovery import discover_kubernetes
from strategies.fleet import Driver
from strategies.model import Phase
from strategies.ports import Platform, PlatformError, TrafficRouter

STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
DEP = f"/apis/apps/v1/namespaces/{NS}/deployments"


def test_satisfies_both_ports(tmp_path: Path) -> None:
    platform = platform_for(make_spec(tmp_path / "none", "replicas"))
    assert isinstance(platform, Platform)
    assert isinstance(platform, TrafficRouter)
    assert platform.kind == "kubernetes"


def test_snapshot_groups_pods_by_version(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with kmock_cluster(tmp_path) as (k, kubeconfig):
            seed_release(k)
            platform = platform_for(make_spec(kubeconfig, "replicas"))
            snap = await platform.snapshot(["v1", "v2"], 100.0)
            await platform.close()
            assert snap.error is None
            assert snap.at == 100.0
            assert sorted(snap.versions) == ["v1", "v2"]  # the payments pod is not ours
            v1, v2 = snap.versions["v1"], snap.versions["v2"]
            assert (v1.desired, v1.ready, v1.total, v1.updated) == (3, 3, 3, 3)
            assert v1.image == "ghcr.io/acme/checkout:1.4.2"
            assert (v2.desired, v2.ready, v2.total, v2.updated) == (1, 0, 1, 1)
            pod = v2.instances[0]
            assert pod.id == "checkout-v2-7c9f6d4b8-hk2vr"
            assert (pod.state, pod.restarts, pod.ready) == ("CrashLoopBackOff", 4, False)
            assert pod.address == "10.244.2.9:8080"
            assert pod.metrics_url == "http://10.244.2.9:8080/metrics"
            assert [i.restarts for i in v1.instances] == [0, 0, 1]
            # weights follow ready replicas: 3 ready v1, 0 ready v2
            assert dict(snap.weights) == {"v1": 100.0, "v2": 0.0}
            assert snap.weight_note == "weight ≈ replicas"
            # the label selector went to the server, namespace from the kubeconfig context
            lists = [r for r in list(k) if r.method.value == "GET" and r.url.path.endswith("/pods")]
            assert lists and lists[0].url.path == f"/api/v1/namespaces/{NS}/pods"
            assert lists[0].params.get("labelSelector") == "app=checkout"

    asyncio.run(scenario())


def test_replicas_lever_scales_by_ratio(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with kmock_cluster(tmp_path) as (k, kubeconfig):
            seed_release(k)  # before the release: v1 at full size, v2 created at 0
            k.objects[DEPLOYMENTS, NS, "checkout-v1"].patch({"spec": {"replicas": 4}})
            k.objects[DEPLOYMENTS, NS, "checkout-v2"].patch({"spec": {"replicas": 0}})
            platform = platform_for(make_spec(kubeconfig, "replicas", replicas=4))
            # The engine enters step 1: scale both to full size, then set the weight.
            await platform.scale("v2", 4)
            await platform.scale("v1", 4)
            await platform.set_weights({"v1": 75, "v2": 25})
            assert stored(k, DEPLOYMENTS, "checkout-v1")["spec"]["replicas"] == 3
            assert stored(k, DEPLOYMENTS, "checkout-v2")["spec"]["replicas"] == 1
            await platform.set_weights({"v1": 50, "v2": 50})
            assert stored(k, DEPLOYMENTS, "checkout-v2")["spec"]["replicas"] == 2
            assert stored(k, DEPLOYMENTS, "checkout-v1")["spec"]["replicas"] == 2
            await platform.set_weights({"v1": 0, "v2": 100})
            assert stored(k, DEPLOYMENTS, "checkout-v2")["spec"]["replicas"] == 4
            assert stored(k, DEPLOYMENTS, "checkout-v1")["spec"]["replicas"] == 0
            await platform.close()
            sent = writes(k)
            # a full-size request never outgrows the weight (v2 stays 0 until 25% asks for 1);
            # growing comes before shrinking at every step
            assert sent == [
                ("PATCH", f"{DEP}/checkout-v2", STRATEGIC, {"spec": {"replicas": 0}}),
                ("PATCH", f"{DEP}/checkout-v1", STRATEGIC, {"spec": {"replicas": 4}}),
                ("PATCH", f"{DEP}/checkout-v2", STRATEGIC, {"spec": {"replicas": 1}}),
                ("PATCH", f"{DEP}/checkout-v1", STRATEGIC, {"spec": {"replicas": 3}}),
                ("PATCH", f"{DEP}/checkout-v2", STRATEGIC, {"spec": {"replicas": 2}}),
                ("PATCH", f"{DEP}/checkout-v1", STRATEGIC, {"spec": {"replicas": 2}}),
                ("PATCH", f"{DEP}/checkout-v2", STRATEGIC, {"spec": {"replicas": 4}}),
                ("PATCH", f"{DEP}/checkout-v1", STRATEGIC, {"spec": {"replicas": 0}}),
            ]

    asyncio.run(scenario())


def test_service_lever_switches_selector(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with kmock_cluster(tmp_path) as (k, kubeconfig):
            seed_release(k)
            seed(k, SERVICES, fixture("service"))
            platform = platform_for(make_spec(kubeconfig, "service", service="checkout",
                                              strategy={"kind": "blue-green"}))
            assert dict(await platform.weights()) == {"v1": 100.0, "v2": 0.0}
            await platform.set_weights({"v1": 0, "v2": 100})
            svc = stored(k, SERVICES, "checkout")
            assert svc["spec"]["selector"] == {"app": "checkout", "version": "v2"}
            assert svc["spec"]["ports"] == fixture("service")["spec"]["ports"]
            snap = await platform.snapshot(["v1", "v2"], 1.0)
            assert dict(snap.weights) == {"v1": 0.0, "v2": 100.0}
            assert snap.status == "service checkout selects version=v2"
            await platform.set_weights({"v1": 100, "v2": 0})  # instant switch back
            assert stored(k, SERVICES, "checkout")["spec"]["selector"] == {"app": "checkout", "version": "v1"}
            await platform.set_weights({"v1": 100, "v2": 0})  # already there: no write
            with pytest.raises(PlatformError) as err:
                await platform.set_weights({"v1": 50, "v2": 50})
            await platform.close()
            assert "\n" not in str(err.value) and "needs lever = 'replicas' or 'httproute'" in str(err.value)
            path = f"/api/v1/namespaces/{NS}/services/checkout"
            assert writes(k) == [
                ("PATCH", path, STRATEGIC, {"spec": {"selector": {"version": "v2"}}}),
                ("PATCH", path, STRATEGIC, {"spec": {"selector": {"version": "v1"}}}),
            ]

    asyncio.run(scenario())


def test_httproute_lever_sets_exact_weights(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with kmock_cluster(tmp_path) as (k, kubeconfig):
            seed_release(k)
            seed(k, HTTPROUTES, fixture("httproute"))
            platform = platform_for(make_spec(kubeconfig, "httproute", httproute="checkout",
                                              backends={"v1": "checkout-v1", "v2": "checkout-v2"}))
            await platform.set_weights({"v1": 90, "v2": 10})
            route = stored(k, HTTPROUTES, "checkout")
            assert route["spec"]["rules"] == [{
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [
                    {"group": "", "kind": "Service", "name": "checkout-v1", "port": 80, "weight": 90},
                    {"group": "", "kind": "Service", "name": "checkout-v2", "port": 80, "weight": 10},
                ],
            }]
            assert route["spec"]["parentRefs"] == fixture("httproute")["spec"]["parentRefs"]
            snap = await platform.snapshot(["v1", "v2"], 1.0)
            assert dict(snap.weights) == {"v1": 90.0, "v2": 10.0}
            assert snap.weight_note == ""
            assert snap.status == "HTTPRoute checkout: accepted by 1 gateway(s)"
            await platform.set_weights({"v1": 0, "v2": 100})
            await platform.close()
            refs = stored(k, HTTPROUTES, "checkout")["spec"]["rules"][0]["backendRefs"]
            assert [(r["name"], r["weight"]) for r in refs] == [("checkout-v1", 0), ("checkout-v2", 100)]
            sent = writes(k)
            assert [(m, p, c) for m, p, c, _ in sent] == [
                ("PATCH", f"/apis/gateway.networking.k8s.io/v1/namespaces/{NS}/httproutes/checkout", MERGE)] * 2
            # optimistic concurrency: each write carries the resourceVersion it was computed from
            assert sent[0][3]["metadata"] == {"resourceVersion": "48520"}
            assert set(sent[0][3]) == {"metadata", "spec"} and set(sent[0][3]["spec"]) == {"rules"}

    asyncio.run(scenario())


def test_rolling_lever_updates_pauses_and_reports(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with kmock_cluster(tmp_path) as (k, kubeconfig):
            dep = fixture("deployment-v1")
            dep["metadata"]["name"] = "checkout"
            dep["spec"]["replicas"] = 4
            dep["spec"]["selector"] = {"matchLabels": {"app": "checkout"}}
            seed(k, DEPLOYMENTS, dep)
            spec = make_spec(kubeconfig, "rolling", deployment="checkout", container="app",
                             images={"v1": "ghcr.io/acme/checkout:1.4.2", "v2": "ghcr.io/acme/checkout:1.5.0"},
                             strategy={"kind": "rolling", "max_surge": 1, "max_unavailable": 0})
            platform = platform_for(spec)
            await platform.scale("v2", 1)  # the controller owns the ReplicaSets: no write
            await platform.set_weights({"v1": 50, "v2": 50})
            after = stored(k, DEPLOYMENTS, "checkout")
            assert after["spec"]["paused"] is False
            assert after["spec"]["strategy"] == {"type": "RollingUpdate",
                                                 "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
            assert after["spec"]["template"]["metadata"]["labels"] == {"app": "checkout", "version": "v2"}
            assert after["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/acme/checkout:1.5.0"
            assert writes(k)[0][3] == {"spec": {
                "paused": False,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                "template": {"metadata": {"labels": {"version": "v2"}},
                             "spec": {"containers": [{"name": "app", "image": "ghcr.io/acme/checkout:1.5.0"}]}}}}
            # The controller reports progress: 1 of 4 updated, then 2 of 4 (the 50% batch).
            k.objects[DEPLOYMENTS, NS, "checkout"].patch(
                {"metadata": {"generation": 4}, "status": {"observedGeneration": 4, "updatedReplicas": 1,
                                                           "replicas": 5, "availableReplicas": 4}})
            snap = await platform.snapshot(["v1", "v2"], 1.0)
            assert snap.status == ('Waiting for deployment "checkout" rollout to finish: '
                                   "1 out of 4 new replicas have been updated...")
            assert stored(k, DEPLOYMENTS, "checkout")["spec"]["paused"] is False
            k.objects[DEPLOYMENTS, NS, "checkout"].patch({"status": {"updatedReplicas": 2}})
            snap = await platform.snapshot(["v1", "v2"], 2.0)
            assert stored(k, DEPLOYMENTS, "checkout")["spec"]["paused"] is True  # batch held
            assert snap.status.startswith('deployment "checkout" paused: Waiting for deployment')
            assert snap.weight_note == "weight ≈ ready pods"
            # the 50% batch of 4: two new pods wanted, two old ones kept while the batch is held
            assert (snap.versions["v2"].desired, snap.versions["v1"].desired) == (2, 2)
            assert snap.versions["v2"].updated == 2
            await platform.set_weights({"v1": 0, "v2": 100})  # the last batch: resume
            await platform.close()
            assert "paused" not in stored(k, DEPLOYMENTS, "checkout")["spec"]
            assert [body for *_, body in writes(k)][1:] == [{"spec": {"paused": True}}, {"spec": {"paused": None}}]

    asyncio.run(scenario())


def test_argo_lever_reads_and_promotes_like_the_plugin(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with kmock_cluster(tmp_path) as (k, kubeconfig):
            seed(k, ROLLOUTS, fixture("rollout"))
            platform = platform_for(make_spec(kubeconfig, "argo", rollout="checkout"))
            snap = await platform.snapshot(["v1", "v2"], 1.0)
            assert snap.error is None
            assert snap.status == "Rollout checkout: Paused, step 1/6, setWeight 20, CanaryPauseStep"
            assert dict(snap.weights) == {"v1": 80.0, "v2": 20.0}
            # basic canary (no trafficRouting): 20% of 4 is one canary pod, the stable side shrinks to 3
            assert (snap.versions["v2"].desired, snap.versions["v1"].desired) == (1, 3)
            await platform.set_weights({"v1": 80, "v2": 20})  # already there: nothing to do
            assert writes(k) == []
            await platform.set_weights({"v1": 50, "v2": 50})  # past the pause: promote
            base = f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/rollouts/checkout"
            assert writes(k) == [("PATCH", f"{base}/status", MERGE, {"status": {"pauseConditions": None}})]
            await platform.set_weights({"v1": 100, "v2": 0})  # rollback: abort
            await platform.set_weights({"v1": 50, "v2": 50})  # aborted, asked forward again: retry
            await platform.close()
            assert writes(k)[1:] == [
                ("PATCH", f"{base}/status", MERGE, {"status": {"abort": True}}),
                ("PATCH", f"{base}/status", MERGE, {"status": {"abort": False}}),
            ]

    asyncio.run(scenario())


def test_missing_crd_is_one_clear_line(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with kmock_cluster(tmp_path) as (k, kubeconfig):
            seed_release(k)
            platform = platform_for(make_spec(kubeconfig, "argo", rollout="checkout"))
            snap = await platform.snapshot(["v1", "v2"], 1.0)
            with pytest.raises(PlatformError) as err:
                await platform.set_weights({"v1": 0, "v2": 100})
            await platform.close()
            assert snap.error is not None and "\n" not in snap.error
            assert "Rollout (argoproj.io/v1alpha1) is not served by" in snap.error
            assert "is its CRD installed?" in snap.error
            assert str(err.value) == snap.error

    asyncio.run(scenario())


def test_unreachable_api_server_is_a_snapshot_error(tmp_path: Path) -> None:
    from k8s_harness import write_kubeconfig

    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:9")
    platform = platform_for(make_spec(kubeconfig, "replicas"))

    async def scenario() -> None:
        snap = await platform.snapshot(["v1", "v2"], 5.0)
        with pytest.raises(PlatformError) as err:
            await platform.scale("v2", 1)
        await platform.close()
        assert snap.error == (f"kubernetes: cannot list pods in namespace {NS} on http://127.0.0.1:9: "
                              "API server unreachable (connection refused)")
        assert "\n" not in str(err.value)

    asyncio.run(scenario())


def test_bad_kubeconfig_context_is_one_line(tmp_path: Path) -> None:
    from k8s_harness import write_kubeconfig

    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:9")
    spec = make_spec(kubeconfig, "replicas", context="nope")
    snap = asyncio.run(platform_for(spec).snapshot(["v1"], 1.0))
    assert snap.error is not None and "\n" not in snap.error
    assert snap.error.startswith(f"kubernetes: cannot load kubeconfig {kubeconfig} context 'nope':")


def test_in_cluster_outside_a_pod_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    spec = make_spec(tmp_path / "unused", "replicas", in_cluster=True)
    snap = asyncio.run(platform_for(spec).snapshot(["v1"], 1.0))
    assert snap.error is not None and "\n" not in snap.error
    assert snap.error.startswith("kubernetes: cannot load in-cluster service account:")


def test_fleet_discovers_argo_rollouts_in_a_namespace(tmp_path: Path) -> None:
    """`fleet --discover kubernetes=shop@test`: each Rollout a row in Argo's own words."""
    async def scenario() -> None:
        async with kmock_cluster(tmp_path) as (k, kubeconfig):
            seed(k, ROLLOUTS, fixture("rollout"))
            aborted = fixture("rollout")  # a fresh copy from the file
            aborted["metadata"]["name"] = "search"
            aborted["status"]["abort"] = True
            seed(k, ROLLOUTS, aborted)
            rows = await discover_kubernetes({"kubeconfig": str(kubeconfig), "context": "test",
                                        "namespace": NS})
            by_name = {r.release: r for r in rows}
            assert set(by_name) == {"checkout", "search"}
            checkout = by_name["checkout"]
            assert (checkout.phase, checkout.step, checkout.desired_weight, checkout.strategy) == \
                (Phase.PAUSED, "2/6", 20, "canary")
            assert (checkout.driver, checkout.driven_by, checkout.environment) == \
                (Driver.DISCOVERED, "argo-rollouts", NS)
            assert by_name["search"].phase is Phase.ABORTED

    asyncio.run(scenario())
