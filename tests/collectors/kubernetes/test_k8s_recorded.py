"""Where kmock falls short: real status codes and bodies from a recorded-shape API server.

Covers RBAC refusals (403), conflicts (409, re-read and retried), an API that is not served
(plain-text 404, the CRD missing), `kubectl rollout undo`'s JSON patch, and Argo Rollouts
without a status subresource (v0.9), each through the official client over HTTP.
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path

import pytest
from k8s_harness import NS, RecordedAPI, fixture, make_spec, platform_for, write_kubeconfig

from strategies.ports import PlatformError

APPS = f"/apis/apps/v1/namespaces/{NS}"
ROUTE = f"/apis/gateway.networking.k8s.io/v1/namespaces/{NS}/httproutes/checkout"
ROLLOUT = f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/rollouts/checkout"


def spec_for(recorded: RecordedAPI, tmp_path: Path, lever: str, **options):
    return make_spec(write_kubeconfig(tmp_path / "kubeconfig", recorded.url), lever, **options)


def test_rbac_refusal_is_one_line(recorded: RecordedAPI, tmp_path: Path) -> None:
    recorded.on("GET", f"{APPS}/deployments/checkout-v2", (200, fixture("deployment-v2")))
    recorded.on("PATCH", f"{APPS}/deployments/checkout-v2", (403, fixture("status-403")))
    platform = platform_for(spec_for(recorded, tmp_path, "replicas",
                                     deployments={"v1": "checkout-v1", "v2": "checkout-v2"}))
    with pytest.raises(PlatformError) as err:
        asyncio.run(platform.scale("v2", 0))
    assert str(err.value) == (
        f"kubernetes: cannot patch deployments/checkout-v2 in namespace {NS} on {recorded.url}: forbidden by RBAC "
        '(deployments.apps "checkout-v2" is forbidden: User "system:serviceaccount:shop:releasedeck" cannot '
        'patch resource "deployments" in API group "apps" in the namespace "shop")')
    assert err.value.code == 403
    # the client sent the bearer token from the kubeconfig
    assert recorded.calls("PATCH")[0].body == {"spec": {"replicas": 0}}


def test_rbac_refusal_on_read_becomes_snapshot_error(recorded: RecordedAPI, tmp_path: Path) -> None:
    denied = copy.deepcopy(fixture("status-403"))
    denied["message"] = ('pods is forbidden: User "system:serviceaccount:shop:releasedeck" cannot list '
                         'resource "pods" in API group "" in the namespace "shop"')
    denied["details"] = {"kind": "pods"}
    recorded.on("GET", f"/api/v1/namespaces/{NS}/pods", (403, denied))
    snap = asyncio.run(platform_for(spec_for(recorded, tmp_path, "replicas")).snapshot(["v1", "v2"], 3.0))
    assert snap.versions == {}
    assert snap.error == (f"kubernetes: cannot list pods in namespace {NS} on {recorded.url}: forbidden by RBAC "
                          f"({denied['message']})")


def _route(version: str, weights: tuple[int, int] | None = None) -> dict:
    route = copy.deepcopy(fixture("httproute"))
    route["metadata"]["resourceVersion"] = version
    if weights:
        route["spec"]["rules"][0]["backendRefs"] = [
            {"group": "", "kind": "Service", "name": "checkout-v1", "port": 80, "weight": weights[0]},
            {"group": "", "kind": "Service", "name": "checkout-v2", "port": 80, "weight": weights[1]}]
    return route


def test_httproute_conflict_rereads_and_retries(recorded: RecordedAPI, tmp_path: Path) -> None:
    # Someone else writes the route between our read and our write, twice.
    recorded.on("GET", ROUTE, (200, _route("48520")), (200, _route("48533", (95, 5))), (200, _route("48540", (95, 5))))
    recorded.on("PATCH", ROUTE, (409, fixture("status-409")), (409, fixture("status-409")), (200, _route("48541")))
    platform = platform_for(spec_for(recorded, tmp_path, "httproute", httproute="checkout"))
    asyncio.run(platform.set_weights({"v1": 75, "v2": 25}))
    patches = recorded.calls("PATCH")
    assert [p.body["metadata"]["resourceVersion"] for p in patches] == ["48520", "48533", "48540"]
    assert all(p.content_type == "application/merge-patch+json" for p in patches)
    assert patches[-1].body["spec"]["rules"][0]["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "checkout-v1", "port": 80, "weight": 75},
        {"group": "", "kind": "Service", "name": "checkout-v2", "port": 80, "weight": 25}]
    assert [c.method for c in recorded.seen] == ["GET", "PATCH"] * 3


def test_httproute_conflict_gives_up_after_three(recorded: RecordedAPI, tmp_path: Path) -> None:
    recorded.on("GET", ROUTE, (200, _route("1")))
    recorded.on("PATCH", ROUTE, (409, fixture("status-409")))
    platform = platform_for(spec_for(recorded, tmp_path, "httproute", httproute="checkout"))
    with pytest.raises(PlatformError) as err:
        asyncio.run(platform.set_weights({"v1": 50, "v2": 50}))
    assert str(err.value) == ("kubernetes: gave up updating HTTPRoute checkout after 3 conflicts "
                              "(another writer keeps changing it)")
    assert len(recorded.calls("PATCH")) == 3


def test_missing_crd_plain_404(recorded: RecordedAPI, tmp_path: Path) -> None:
    # No route registered: the server answers "404 page not found" as text, for the object and for discovery.
    recorded.on("GET", "/api/v1/namespaces/shop/pods", (200, fixture("pods")))
    platform = platform_for(spec_for(recorded, tmp_path, "httproute", httproute="checkout"))
    snap = asyncio.run(platform.snapshot(["v1", "v2"], 1.0))
    assert snap.error == (f"kubernetes: HTTPRoute (gateway.networking.k8s.io/v1) is not served by {recorded.url}: "
                          "is its CRD installed?")
    assert recorded.seen[-1].path == "/apis/gateway.networking.k8s.io/v1"


def test_missing_object_is_not_mistaken_for_missing_crd(recorded: RecordedAPI, tmp_path: Path) -> None:
    recorded.on("GET", "/api/v1/namespaces/shop/pods", (200, {"kind": "PodList", "apiVersion": "v1",
                                                              "metadata": {}, "items": []}))
    recorded.on("GET", ROLLOUT, (404, fixture("status-404")))
    recorded.on("GET", "/apis/argoproj.io/v1alpha1", (200, {"kind": "APIResourceList", "apiVersion": "v1",
                                                            "groupVersion": "argoproj.io/v1alpha1", "resources": []}))
    snap = asyncio.run(platform_for(spec_for(recorded, tmp_path, "argo", rollout="checkout")).snapshot(["v1"], 1.0))
    assert snap.error == (f"kubernetes: cannot read rollouts.argoproj.io/checkout in namespace {NS} on "
                          f'{recorded.url}: not found (rollouts.argoproj.io "checkout" not found)')


def test_rolling_undo_sends_kubectls_patch(recorded: RecordedAPI, tmp_path: Path) -> None:
    dep = fixture("deployment-rolling")
    dep["spec"]["paused"] = True  # held between batches: undo resumes first, as kubectl would require
    resumed = copy.deepcopy(dep)
    del resumed["spec"]["paused"]
    recorded.on("GET", f"{APPS}/deployments/checkout", (200, dep), (200, resumed))
    recorded.on("PATCH", f"{APPS}/deployments/checkout", (200, resumed), (200, resumed))
    recorded.on("GET", f"{APPS}/replicasets", (200, fixture("replicasets")))
    platform = platform_for(spec_for(recorded, tmp_path, "rolling", deployment="checkout",
                                     images={"v2": "ghcr.io/acme/checkout:1.5.0"},
                                     strategy={"kind": "rolling", "max_surge": 1}))
    asyncio.run(platform.set_weights({"v1": 100, "v2": 0}))
    resume, undo = recorded.calls("PATCH")
    assert resume.body == {"spec": {"paused": None}}
    assert resume.content_type == "application/strategic-merge-patch+json"
    assert recorded.calls("GET")[-1].query == {"labelSelector": ["app=checkout"]}
    assert undo.content_type == "application/json-patch+json"
    old_template = copy.deepcopy(fixture("replicasets")["items"][1]["spec"]["template"])
    del old_template["metadata"]["labels"]["pod-template-hash"]
    assert undo.body == [
        {"op": "replace", "path": "/spec/template", "value": old_template},
        {"op": "replace", "path": "/metadata/annotations", "value": {
            "deployment.kubernetes.io/revision": "2",
            "kubectl.kubernetes.io/last-applied-configuration": dep["metadata"]["annotations"][
                "kubectl.kubernetes.io/last-applied-configuration"],
            "kubernetes.io/change-cause": "release 1.4.2",
        }},
    ]
    assert old_template["spec"]["containers"][0]["image"] == "ghcr.io/acme/checkout:1.4.2"


def test_rolling_undo_without_history(recorded: RecordedAPI, tmp_path: Path) -> None:
    recorded.on("GET", f"{APPS}/deployments/checkout", (200, fixture("deployment-rolling")))
    only = fixture("replicasets")
    only["items"] = only["items"][:1]
    recorded.on("GET", f"{APPS}/replicasets", (200, only))
    platform = platform_for(spec_for(recorded, tmp_path, "rolling", deployment="checkout",
                                     images={"v2": "ghcr.io/acme/checkout:1.5.0"},
                                     strategy={"kind": "rolling", "max_surge": 1}))
    with pytest.raises(PlatformError) as err:
        asyncio.run(platform.set_weights({"v1": 100, "v2": 0}))
    assert str(err.value) == 'kubernetes: no rollout history found for deployment "checkout" (nothing to undo to)'
    assert recorded.calls("PATCH") == []


def test_argo_without_status_subresource_uses_unified_patch(recorded: RecordedAPI, tmp_path: Path) -> None:
    ro = fixture("rollout")
    ro["spec"]["paused"] = True
    recorded.on("GET", ROLLOUT, (200, ro))
    recorded.on("PATCH", f"{ROLLOUT}/status", (404, "404 page not found\n"))
    recorded.on("PATCH", ROLLOUT, (200, ro))
    platform = platform_for(spec_for(recorded, tmp_path, "argo", rollout="checkout"))

    async def scenario() -> None:
        lever = await platform.lever()
        await lever.promote()
        await lever.abort()

    asyncio.run(scenario())
    sent = [(c.path, c.body) for c in recorded.calls("PATCH")]
    assert sent == [
        (f"{ROLLOUT}/status", {"status": {"pauseConditions": None}}),
        (ROLLOUT, {"spec": {"paused": False}, "status": {"pauseConditions": None}}),
        (f"{ROLLOUT}/status", {"status": {"abort": True}}),
        (ROLLOUT, {"status": {"abort": True}}),
    ]
    assert all(c.content_type == "application/merge-patch+json" for c in recorded.calls("PATCH"))


def test_argo_promote_mid_analysis_steps_forward(recorded: RecordedAPI, tmp_path: Path) -> None:
    ro = fixture("rollout")
    ro["status"].update(pauseConditions=None, currentStepIndex=2, phase="Progressing", message="")
    ro["status"]["canary"] = {"currentStepAnalysisRunStatus": {"name": "checkout-7c9f6d4b8-5-2", "status": "Running"}}
    recorded.on("GET", ROLLOUT, (200, ro))
    recorded.on("PATCH", f"{ROLLOUT}/status", (200, ro))
    platform = platform_for(spec_for(recorded, tmp_path, "argo", rollout="checkout"))

    async def scenario() -> None:
        lever = await platform.lever()
        await lever.promote()
        await lever.promote(full=True)

    asyncio.run(scenario())
    assert [c.body for c in recorded.calls("PATCH")] == [
        {"status": {"pauseConditions": None, "currentStepIndex": 3}},
        {"status": {"promoteFull": True}},
    ]
    recorded.on("GET", "/api/v1/namespaces/shop/pods", (200, fixture("pods")))
    snap = asyncio.run(platform.snapshot(["v1", "v2"], 1.0))
    assert snap.status == ("Rollout checkout: Progressing, step 2/6, setWeight 50, "
                           "analysis checkout-7c9f6d4b8-5-2 Running")
    assert dict(snap.weights) == {"v1": 50.0, "v2": 50.0}
    assert snap.versions["v2"].instances[0].state == "CrashLoopBackOff"


def test_slow_api_server_times_out_with_one_line(recorded: RecordedAPI, tmp_path: Path) -> None:
    recorded.on("GET", f"/api/v1/namespaces/{NS}/pods", (200, fixture("pods")))
    recorded.delay = 5.0  # far beyond request_timeout; released when the test ends
    platform = platform_for(spec_for(recorded, tmp_path, "service", request_timeout=0.3,
                                     strategy={"kind": "blue-green"}))
    snap = asyncio.run(platform.snapshot(["v1", "v2"], 1.0))
    assert snap.error == (f"kubernetes: cannot list pods in namespace {NS} on {recorded.url}: "
                          "API server did not answer in time")
    assert [c.path for c in recorded.seen].count(f"/api/v1/namespaces/{NS}/pods") == 1  # not retried
