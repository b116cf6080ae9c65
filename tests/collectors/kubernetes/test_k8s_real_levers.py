"""The service, httproute and argo levers against a real kube-apiserver with the real CRDs.

The adapter talks to the API server through the official client and a real kubeconfig, exactly
as it does in a cluster. What kmock cannot show is checked here: strategic-merge patches,
resourceVersion conflicts (409) from a concurrent writer, CRD schema validation, the status
subresource. The levers that need the Deployment controller are in test_k8s_real_controllers.py.
"""

from __future__ import annotations

import json

import pytest

from collectors.kubernetes import KubernetesPlatform
from collectors.kubernetes.api import HTTPROUTE, ROLLOUT
from strategies.ports import PlatformError
from tests.collectors.kubernetes.real_cluster import closing, manifest, run, spec_for

pytestmark = pytest.mark.timeout(600)  # the first test also waits for the control plane to start

def test_service_lever_switches_the_selector_and_back(kube_namespace) -> None:
    ns = kube_namespace
    ns.create(manifest("deployments.yaml") + manifest("service-bluegreen.yaml"))
    platform = KubernetesPlatform(spec_for(ns, "service", strategy={"kind": "blue-green"}))

    def selector() -> dict[str, str]:
        return json.loads(ns.core.read_namespaced_service("checkout", ns.name, _preload_content=False).data)[
            "spec"]["selector"]

    async def scenario() -> list[dict[str, str]]:
        seen = []
        for weight in (100, 0, 100):
            await platform.set_weights({"v1": 100 - weight, "v2": weight})
            seen.append(selector())
        with pytest.raises(PlatformError, match="switches all traffic at once"):
            await platform.set_weights({"v1": 50, "v2": 50})
        snap = await platform.snapshot(["v1", "v2"], 1.0)
        assert snap.error is None, snap.error
        assert dict(snap.weights) == {"v1": 0.0, "v2": 100.0}
        assert snap.status == "service checkout selects version=v2"
        return seen

    seen = run(closing(platform, scenario()))
    # a strategic-merge patch of one key: `app` stays as the user wrote it
    assert seen == [{"app": "checkout", "version": "v2"}, {"app": "checkout", "version": "v1"},
                    {"app": "checkout", "version": "v2"}]


def test_httproute_lever_sets_weights_the_crd_accepts(kube_namespace) -> None:
    ns = kube_namespace
    ns.create(manifest("deployments.yaml") + manifest("httproute.yaml"))
    spec = spec_for(ns, "httproute", httproute="checkout", backends={"v1": "checkout-v1", "v2": "checkout-v2"},
                    deployments={"v1": "checkout-v1", "v2": "checkout-v2"})
    platform = KubernetesPlatform(spec)

    async def scenario():
        await platform.set_weights({"v1": 75, "v2": 25})
        return await platform.snapshot(["v1", "v2"], 1.0)

    snap = run(closing(platform, scenario()))
    assert snap.error is None, snap.error
    assert dict(snap.weights) == {"v1": 75.0, "v2": 25.0}
    assert snap.status == "HTTPRoute checkout: no gateway has accepted it yet"
    route = ns.read(f"{HTTPROUTE.group}/{HTTPROUTE.version}", "HTTPRoute", "checkout")
    rule = route["spec"]["rules"][0]
    assert [(r["name"], r["weight"]) for r in rule["backendRefs"]] == [("checkout-v1", 75), ("checkout-v2", 25)]
    # everything else the user wrote is untouched (and the CRD's defaults are kept)
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert route["spec"]["hostnames"] == ["checkout.example.com"]
    assert route["metadata"]["generation"] == 2


def test_httproute_conflict_from_a_concurrent_writer_is_retried(kube_namespace) -> None:
    """Someone else writes the route between our read and our patch: the real server answers
    409 on the stale resourceVersion; the lever re-reads and keeps their change."""
    ns = kube_namespace
    ns.create(manifest("deployments.yaml") + manifest("httproute.yaml"))
    spec = spec_for(ns, "httproute", backends={"v1": "checkout-v1", "v2": "checkout-v2"},
                    deployments={"v1": "checkout-v1", "v2": "checkout-v2"})
    platform = KubernetesPlatform(spec)
    interfered: list[str] = []

    async def scenario() -> None:
        lever = await platform.lever()
        read = lever.kube.get_custom
        patch = lever.kube.patch_custom
        answers: list[str] = []

        async def read_then_interfere(crd, name):
            obj = await read(crd, name)
            if len(interfered) < 2:  # two concurrent writes: the first two attempts both conflict
                ns.custom.patch_namespaced_custom_object(
                    HTTPROUTE.group, HTTPROUTE.version, ns.name, HTTPROUTE.plural, "checkout",
                    {"spec": {"hostnames": ["checkout.example.com", f"other-{len(interfered)}.example.com"]}})
                interfered.append(obj["metadata"]["resourceVersion"])
            return obj

        async def patch_and_note(*args, **kwargs):
            try:
                result = await patch(*args, **kwargs)
            except PlatformError as exc:
                answers.append(str(getattr(exc, "code", "")))
                raise
            answers.append("ok")
            return result

        lever.kube.get_custom = read_then_interfere
        lever.kube.patch_custom = patch_and_note
        await platform.set_weights({"v1": 50, "v2": 50})
        assert answers == ["409", "409", "ok"]

    run(closing(platform, scenario()))
    route = ns.read(f"{HTTPROUTE.group}/{HTTPROUTE.version}", "HTTPRoute", "checkout")
    assert [r["weight"] for r in route["spec"]["rules"][0]["backendRefs"]] == [50, 50]
    assert route["spec"]["hostnames"] == ["checkout.example.com", "other-1.example.com"]


def test_httproute_gives_up_after_bounded_conflicts(kube_namespace) -> None:
    ns = kube_namespace
    ns.create(manifest("deployments.yaml") + manifest("httproute.yaml"))
    platform = KubernetesPlatform(spec_for(ns, "httproute"))

    async def scenario() -> None:
        lever = await platform.lever()
        read = lever.kube.get_custom
        counter = iter(range(100))

        async def always_interfere(crd, name):
            obj = await read(crd, name)
            ns.custom.patch_namespaced_custom_object(
                HTTPROUTE.group, HTTPROUTE.version, ns.name, HTTPROUTE.plural, "checkout",
                {"metadata": {"annotations": {"touched": str(next(counter))}}})
            return obj

        lever.kube.get_custom = always_interfere
        with pytest.raises(PlatformError, match="gave up updating HTTPRoute checkout after 3 conflicts"):
            await platform.set_weights({"v1": 90, "v2": 10})

    run(closing(platform, scenario()))
    route = ns.read(f"{HTTPROUTE.group}/{HTTPROUTE.version}", "HTTPRoute", "checkout")
    assert [r["weight"] for r in route["spec"]["rules"][0]["backendRefs"]] == [100, 0]
    assert route["metadata"]["annotations"]["touched"] == "2"


def _paused_rollout_status(ns, *, step: int) -> None:
    """What the Argo controller would write at a canary pause (no controller runs here)."""
    ns.custom.patch_namespaced_custom_object_status(
        ROLLOUT.group, ROLLOUT.version, ns.name, ROLLOUT.plural, "checkout",
        {"status": {"phase": "Paused", "currentStepIndex": step, "currentPodHash": "new", "stableRS": "old",
                    "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2026-01-01T00:00:00Z"}],
                    "canary": {}}})


def test_argo_patches_are_accepted_by_the_real_crd(kube_namespace) -> None:
    ns = kube_namespace
    ns.create(manifest("rollout.yaml"))
    _paused_rollout_status(ns, step=1)
    platform = KubernetesPlatform(spec_for(ns, "argo", rollout="checkout"))

    def rollout() -> dict:
        return ns.read(f"{ROLLOUT.group}/{ROLLOUT.version}", "Rollout", "checkout")

    async def scenario() -> list[dict]:
        seen = []
        snap = await platform.snapshot(["v1", "v2"], 1.0)
        assert snap.error is None, snap.error
        assert snap.status == "Rollout checkout: Paused, step 1/5, setWeight 25"
        await platform.set_weights({"v1": 50, "v2": 50})  # promote past the pause
        seen.append(rollout()["status"])
        await platform.set_weights({"v1": 100, "v2": 0})  # abort
        seen.append(rollout()["status"])
        await platform.set_weights({"v1": 75, "v2": 25})  # retry an aborted rollout
        seen.append(rollout()["status"])
        lever = await platform.lever()
        await lever.pause()
        seen.append({"paused": rollout()["spec"].get("paused")})
        await lever.resume()
        seen.append({"paused": rollout()["spec"].get("paused")})
        await platform.set_weights({"v1": 0, "v2": 100})  # promote --full
        seen.append(rollout()["status"])
        return seen

    promoted, aborted, retried, paused, resumed, full = run(closing(platform, scenario()))
    assert "pauseConditions" not in promoted and promoted["currentStepIndex"] == 1
    assert aborted["abort"] is True
    assert retried["abort"] is False
    assert (paused, resumed) == ({"paused": True}, {"paused": False})
    assert full["promoteFull"] is True


def test_argo_without_the_crd_names_the_missing_api(kube_namespace, tmp_path) -> None:
    """A Rollout lever pointed at a resource the server does not serve: one line, not a 404 dump."""
    ns = kube_namespace
    platform = KubernetesPlatform(spec_for(ns, "argo", rollout="nowhere"))
    snap = run(closing(platform, platform.snapshot(["v1", "v2"], 1.0)))
    assert snap.error is not None
    assert "\n" not in snap.error
    assert "rollouts.argoproj.io/nowhere" in snap.error and "not found" in snap.error
