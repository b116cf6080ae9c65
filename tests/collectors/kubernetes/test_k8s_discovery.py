"""Pure reading of API objects: kubectl's words for pods and rollouts, label selectors."""

from __future__ import annotations

import copy

import pytest
from k8s_harness import fixture

from collectors.kubernetes.discovery import (
    deployments_by_version,
    group_pods,
    percents,
    pod_state,
    pod_usage,
    rollout_status,
    selector_matches,
    version_statuses,
)
from collectors.kubernetes.levers.argo import describe, promote_patches, set_weight
from collectors.kubernetes.levers.httproute import reweigh


@pytest.mark.parametrize(("selector", "expected"), [
    ("app=checkout", True), ("app==checkout", True), ("app=payments", False), ("app!=checkout", False),
    ("app=checkout,version=v2", False), ("version", True), ("!version", False), ("tier", False),
    ("app in (checkout,payments)", True), ("", True),
])
def test_selector_matches(selector: str, expected: bool) -> None:
    assert selector_matches({"app": "checkout", "version": "v1"}, selector) is expected


def test_pod_state_uses_kubectl_words() -> None:
    pods = fixture("pods")["items"]
    assert pod_state(pods[0]) == "Running"
    assert pod_state(pods[3]) == "CrashLoopBackOff"
    gone = copy.deepcopy(pods[0])
    gone["metadata"]["deletionTimestamp"] = "2026-11-23T12:00:00Z"
    assert pod_state(gone) == "Terminating"
    pending = {"metadata": {"name": "p"}, "status": {"phase": "Pending", "containerStatuses": [
        {"name": "app", "state": {"waiting": {"reason": "ContainerCreating"}}, "restartCount": 0}]}}
    assert pod_state(pending) == "ContainerCreating"


def test_group_and_version_statuses() -> None:
    pods = group_pods(fixture("pods")["items"], "version", "app=checkout")
    assert {v: len(items) for v, items in pods.items()} == {"v1": 3, "v2": 1}
    workloads = deployments_by_version([fixture("deployment-v1"), fixture("deployment-v2")], "version")
    statuses = version_statuses(["v1", "v2", "v3"], pods, workloads)
    assert list(statuses) == ["v1", "v2", "v3"]
    assert statuses["v3"].total == 0 and statuses["v3"].desired is None
    assert statuses["v2"].image == "ghcr.io/acme/checkout:1.5.0"


@pytest.mark.parametrize(("patch", "done", "message"), [
    ({}, True, 'deployment "checkout-v1" successfully rolled out'),
    ({"metadata": {"generation": 4}}, False, "Waiting for deployment spec update to be observed..."),
    ({"status": {"updatedReplicas": 1}}, False,
     'Waiting for deployment "checkout-v1" rollout to finish: 1 out of 3 new replicas have been updated...'),
    ({"status": {"replicas": 4}}, False,
     'Waiting for deployment "checkout-v1" rollout to finish: 1 old replicas are pending termination...'),
    ({"status": {"availableReplicas": 2}}, False,
     'Waiting for deployment "checkout-v1" rollout to finish: 2 of 3 updated replicas are available...'),
    ({"status": {"conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}},
     False, 'deployment "checkout-v1" exceeded its progress deadline'),
])
def test_rollout_status_like_kubectl(patch: dict, done: bool, message: str) -> None:
    dep = fixture("deployment-v1")
    for key, values in patch.items():
        dep[key].update(values)
    assert rollout_status(dep) == (done, message)


def test_percents() -> None:
    assert percents({"v1": 3, "v2": 1}) == {"v1": 75.0, "v2": 25.0}
    assert percents({"v1": 0, "v2": 0}) == {}


def test_reweigh_keeps_other_rules_and_backends() -> None:
    rules = [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
         "backendRefs": [{"name": "admin", "port": 80}]},
        {"backendRefs": [{"name": "checkout-v1", "port": 80, "weight": 3}, {"name": "checkout-v2", "port": 80}]},
    ]
    out = reweigh(rules, {"v1": "checkout-v1", "v2": "checkout-v2"}, {"v1": 60, "v2": 40})
    assert out is not None
    assert out[0] == rules[0]
    assert out[1]["backendRefs"] == [{"name": "checkout-v1", "port": 80, "weight": 60},
                                     {"name": "checkout-v2", "port": 80, "weight": 40}]
    assert rules[1]["backendRefs"][1] == {"name": "checkout-v2", "port": 80}  # input untouched
    assert reweigh(rules[:1], {"v1": "checkout-v1", "v2": "checkout-v2"}, {"v1": 60, "v2": 40}) is None


def test_argo_set_weight_and_patches() -> None:
    ro = fixture("rollout")
    assert set_weight(ro) == 20
    ro["status"]["currentStepIndex"] = 3
    assert set_weight(ro) == 50
    ro["status"]["currentStepIndex"] = 6
    assert set_weight(ro) == 100
    ro["status"]["abort"] = True
    assert set_weight(ro) == 0
    ro["status"]["canary"] = {"weights": {"canary": {"weight": 35, "podTemplateHash": "7c9f6d4b8"},
                                          "stable": {"weight": 65, "podTemplateHash": "6f7d8b9c5"}}}
    assert set_weight(ro) == 35
    # promote of a paused canary clears its pause condition, nothing else
    assert promote_patches(fixture("rollout")) == (
        None, {"status": {"pauseConditions": None}}, {"spec": {"paused": False}, "status": {"pauseConditions": None}})
    # --full on a fully promoted rollout: nothing to patch
    done = fixture("rollout")
    done["status"]["currentPodHash"] = done["status"]["stableRS"]
    assert promote_patches(done, full=True) == (None, None, None)
    assert describe(fixture("rollout")) == "Rollout checkout: Paused, step 1/6, setWeight 20, CanaryPauseStep"


@pytest.mark.parametrize(("size", "weight", "expected"), [
    (4, 0, {"v1": 4, "v2": 0}), (4, 5, {"v1": 3, "v2": 1}), (4, 50, {"v1": 2, "v2": 2}),
    (4, 90, {"v1": 1, "v2": 3}), (4, 100, {"v1": 0, "v2": 4}),
    (1, 10, {"v1": 1, "v2": 1}),  # one replica each while both are in play: ≈50%, never 100% early
    (10, 25, {"v1": 8, "v2": 2}),
])
def test_replica_split(size: int, weight: int, expected: dict) -> None:
    from collectors.kubernetes.levers.replicas import ReplicaRatio
    from strategies.spec import parse_spec

    spec = parse_spec({"release": {"service": "checkout", "baseline": "v1", "candidate": "v2"},
                       "platform": {"kind": "kubernetes", "replicas": size, "lever": "replicas"},
                       "strategy": {"kind": "canary", "steps": [weight or 1]}})
    assert ReplicaRatio(None, spec).split(weight) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 10])
@pytest.mark.parametrize(("surge", "unavailable"), [(1, 0), (2, 0), (1, 1), (0, 1)])
def test_rolling_batches_hold_where_the_plan_expects(size: int, surge: int, unavailable: int) -> None:
    from collectors.kubernetes.levers.rolling import batch_target
    from strategies.plans import build_plan
    from strategies.spec import parse_spec

    spec = parse_spec({"release": {"service": "c", "baseline": "v1", "candidate": "v2"},
                       "platform": {"kind": "kubernetes", "lever": "rolling", "replicas": size, "images": {"v2": "x"}},
                       "strategy": {"kind": "rolling", "max_surge": surge, "max_unavailable": unavailable}})
    steps = build_plan(spec).steps
    targets = [batch_target(size, s.weight) for s in steps]
    assert targets[-1] is None  # the last batch runs to the end
    assert targets[:-1] == [s.replicas["v2"] for s in steps[:-1]]


def test_pod_metrics_and_image_digest_reach_the_instances() -> None:
    """metrics.k8s.io PodMetrics (as metrics-server serves them) summed per pod, with the digest."""
    metrics = [
        {"metadata": {"name": "checkout-v2-abc"}, "timestamp": "2026-11-27T12:00:00Z", "window": "15s",
         "containers": [{"name": "app", "usage": {"cpu": "250m", "memory": "64Mi"}},
                        {"name": "sidecar", "usage": {"cpu": "1500000n", "memory": "2048Ki"}}]},
        {"metadata": {"name": "odd"}, "containers": [{"name": "x", "usage": {"cpu": "lots"}}]},
    ]
    usage = pod_usage(metrics)
    assert set(usage) == {"checkout-v2-abc"}  # an unparsable quantity leaves its pod unmeasured
    assert usage["checkout-v2-abc"].cpu == 0.2515
    assert usage["checkout-v2-abc"].memory == 64 * 1024 ** 2 + 2048 * 1024
    pod = {"metadata": {"name": "checkout-v2-abc", "labels": {"app": "checkout", "version": "v2"}},
           "spec": {"containers": [{"image": "shop/checkout:v2"}]},
           "status": {"podIP": "10.0.0.7", "containerStatuses": [
               {"restartCount": 1, "imageID": "docker-pullable://shop/checkout@sha256:feed"}]}}
    instance = group_pods([pod], "version", usage=usage)["v2"][0]
    assert (instance.cpu, instance.digest, instance.restarts) == (0.2515, "sha256:feed", 1)
