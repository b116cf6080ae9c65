"""Every lever against a real kube-apiserver, with the real Deployment and ReplicaSet controllers.

The adapter talks to the API server through the official client and a real kubeconfig, exactly
as it does in a cluster; the test kubelet plays the node. What kmock cannot show is checked
here: strategic-merge patches, resourceVersion conflicts (409), JSON patch on a Deployment,
ReplicaSets grown and shrunk by the controller, rollout history, CRD schema validation.
"""

from __future__ import annotations

import json

import pytest

from collectors.kubernetes import KubernetesPlatform
from collectors.kubernetes.api import HTTPROUTE, ROLLOUT
from strategies.ports import PlatformError
from tests.collectors.kubernetes.real_cluster import closing, manifest, pods_by_version, run, spec_for, wait_pods

REVISION = "deployment.kubernetes.io/revision"


def test_replicas_lever_moves_the_controller_and_the_pods(kube_namespace) -> None:
    ns = kube_namespace
    ns.create(manifest("deployments.yaml") + manifest("service.yaml"))
    kubelet = ns.kubelet()
    wait_pods(ns, {"v1": 4}, kubelet=kubelet)
    platform = KubernetesPlatform(spec_for(ns, "replicas"))

    async def weigh(weight: int):
        await platform.set_weights({"v1": 100 - weight, "v2": weight})

    run(weigh(25))
    assert (ns.deployment("checkout-v1")["spec"]["replicas"], ns.deployment("checkout-v2")["spec"]["replicas"]) \
        == (3, 1)
    wait_pods(ns, {"v1": 3, "v2": 1}, kubelet=kubelet)
    # the Deployment controller made one ReplicaSet per Deployment and sized it
    sets = {rs["metadata"]["labels"]["version"]: rs["spec"]["replicas"] for rs in ns.replicasets()}
    assert sets == {"v1": 3, "v2": 1}
    ns.wait("deployment status", lambda: ns.deployment("checkout-v2").get("status", {}).get("readyReplicas") == 1)
    snap = run(platform.snapshot(["v1", "v2"], 10.0))
    assert snap.error is None, snap.error
    assert dict(snap.weights) == {"v1": 75.0, "v2": 25.0}
    assert (snap.versions["v1"].ready, snap.versions["v2"].ready) == (3, 1)
    assert snap.versions["v2"].image == "ghcr.io/stefanprodan/podinfo:6.7.1"

    run(weigh(0))  # rollback: the candidate's pods go, through a graceful delete finished by the kubelet
    wait_pods(ns, {"v1": 4}, kubelet=kubelet)
    # one v1 pod went at 25 %, the one v2 pod at 0 %: each delete finished by the kubelet
    assert sorted(n.rsplit("-", 2)[0] for n in kubelet.deleted) == ["checkout-v1", "checkout-v2"]
    run(closing(platform, weigh(100)))
    wait_pods(ns, {"v2": 4}, kubelet=kubelet)
    assert {rs["metadata"]["labels"]["version"]: rs["spec"]["replicas"] for rs in ns.replicasets()} == \
        {"v1": 0, "v2": 4}


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


def test_rolling_lever_pauses_batches_and_undoes_like_kubectl(kube_namespace) -> None:
    ns = kube_namespace
    ns.create(manifest("rolling.yaml"))
    kubelet = ns.kubelet()
    wait_pods(ns, {"v1": 4}, kubelet=kubelet)
    spec = spec_for(ns, "rolling", strategy={"kind": "rolling", "max_surge": 1, "max_unavailable": 0},
                    images={"v2": "ghcr.io/stefanprodan/podinfo:6.7.1"})
    platform = KubernetesPlatform(spec)

    async def step(weight: int) -> None:
        await platform.set_weights({"v1": 100 - weight, "v2": weight})

    def snapshot():
        snap = run(platform.snapshot(["v1", "v2"], 1.0))
        assert snap.error is None, snap.error
        return snap

    run(step(25))
    # the lever pauses the Deployment once the batch (1 of 4) is updated; the snapshot is its loop
    ns.wait("the first batch held", lambda: bool(snapshot() and ns.deployment("checkout")["spec"].get("paused")),
            between=kubelet.sync)
    for _ in range(10):  # paused: the controller makes no further progress however long we wait
        kubelet.sync()
    dep = ns.deployment("checkout")
    updated = dep["status"].get("updatedReplicas", 0)
    assert 1 <= updated <= 2, dep["status"]  # at most one controller batch of overshoot
    assert dep["spec"]["template"]["metadata"]["labels"] == {"app": "checkout", "version": "v2"}
    assert dep["metadata"]["annotations"][REVISION] == "2"
    snap = snapshot()
    assert snap.status.startswith('deployment "checkout" paused: ')
    assert pods_by_version(ns)["v2"] == updated

    run(step(0))  # undo: back to revision 1's template, which becomes revision 3, as kubectl does
    wait_pods(ns, {"v1": 4}, kubelet=kubelet)
    dep = ns.deployment("checkout")
    assert dep["metadata"]["annotations"][REVISION] == "3"
    assert not dep["spec"].get("paused")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/stefanprodan/podinfo:6.7.0"
    revisions = {rs["metadata"]["labels"]["version"]: rs["metadata"]["annotations"][REVISION]
                 for rs in ns.replicasets()}
    assert revisions == {"v1": "3", "v2": "2"}  # the old ReplicaSet came back, no third one was made
    run(closing(platform, step(100)))
    wait_pods(ns, {"v2": 4}, kubelet=kubelet)
    assert ns.deployment("checkout")["metadata"]["annotations"][REVISION] == "4"


def test_rolling_undo_without_history_is_one_line(kube_namespace) -> None:
    ns = kube_namespace
    ns.create(manifest("rolling.yaml"))
    kubelet = ns.kubelet()
    wait_pods(ns, {"v1": 4}, kubelet=kubelet)
    spec = spec_for(ns, "rolling", strategy={"kind": "rolling"}, images={"v2": "ghcr.io/stefanprodan/podinfo:6.7.1"})
    platform = KubernetesPlatform(spec)

    async def scenario() -> None:
        lever = await platform.lever()
        with pytest.raises(PlatformError, match='no rollout history found for deployment "checkout"'):
            await lever.undo()

    run(closing(platform, scenario()))


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
