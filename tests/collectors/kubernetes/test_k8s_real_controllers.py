"""The replicas and rolling levers on a real control plane: the controllers do the rest.

kube-controller-manager's Deployment and ReplicaSet controllers grow and shrink ReplicaSets and
pods from what the lever writes; the test kubelet binds pods, reports them ready and finishes
their graceful deletes. Checked: strategic-merge patches of spec.replicas and of the pod
template, real `spec.paused` holding a batch, rollout history, and the JSON patch of
`kubectl rollout undo` bringing the previous ReplicaSet back.
"""

from __future__ import annotations

import pytest

from collectors.kubernetes import KubernetesPlatform
from strategies.ports import PlatformError
from tests.collectors.kubernetes.real_cluster import closing, manifest, pods_by_version, run, spec_for, wait_pods

pytestmark = pytest.mark.timeout(600)  # the first test also waits for the control plane to start
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
    # the lever reads weights from both Deployments' status.readyReplicas, which the Deployment
    # controller updates after the pods: wait for both (v1's 4 → 3 can lag v2's 0 → 1)
    ns.wait("deployment status", lambda: all(
        ns.deployment(f"checkout-{version}").get("status", {}).get("readyReplicas") == ready
        for version, ready in (("v1", 3), ("v2", 1))))
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

    def settled() -> bool:
        """The controllers have caught up: the Deployment's status counts the pods that exist.
        (Its status is written after the ReplicaSet's, which lags the pods: read too early, a
        CI run saw updatedReplicas 1 beside 2 v2 pods, `assert 2 == 1`.)"""
        dep = ns.deployment("checkout")
        status = dep["status"]
        wanted = sum(rs["spec"].get("replicas", 0) for rs in ns.replicasets()
                     if rs["metadata"]["labels"].get("version") == "v2")
        return (status.get("observedGeneration") == dep["metadata"]["generation"]
                and status.get("updatedReplicas", 0) == wanted == pods_by_version(ns).get("v2", 0))

    ns.wait("the paused Deployment's status to count its pods", settled, between=kubelet.sync,
            timeout=120)
    dep = ns.deployment("checkout")
    updated = dep["status"].get("updatedReplicas", 0)
    assert 1 <= updated <= 2, dep["status"]  # at most one controller batch of overshoot
    assert dep["spec"]["template"]["metadata"]["labels"] == {"app": "checkout", "version": "v2"}
    assert dep["metadata"]["annotations"][REVISION] == "2"
    snap = snapshot()
    assert snap.status.startswith('deployment "checkout" paused: ')
    assert pods_by_version(ns)["v2"] == updated  # still: paused, nothing moved since settled

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
