"""Whole releases on a real control plane, through the Driver, as in production.

collect -> tick -> act, every tick: the Kubernetes adapter reads pods and Deployments from the
real API server and pulls its lever; the Deployment and ReplicaSet controllers do the rest; the
test kubelet runs each pod's container (a real demo service on the pod's IP) and reports it
ready; the test's data plane sends requests the way the Service or HTTPRoute routes them; the
scrape metric source reads each ready pod's /metrics. A fault injected into the candidate's
containers mid-release must be caught by the gate and rolled back in the cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from collectors.kubernetes import KubernetesPlatform
from collectors.kubernetes.api import HTTPROUTE
from collectors.scrape_source import ScrapeSource
from strategies.engine import Engine
from strategies.journal import MemoryJournal
from strategies.model import Event, Phase, State
from tests.collectors.kubernetes.real_cluster import manifest, pods_by_version, run, spec_for, wait_pods
from tests.support.kube_traffic import ClusterTraffic
from tests.support.reconciles import reapplied
from tui.driver import Driver

pytestmark = pytest.mark.timeout(600)  # the first test also waits for the control plane to start

METRICS = {"source": "scrape", "interval": "300ms", "window": "3s", "stale_after": "5s", "timeout": "2s"}
GATES = [{"name": "errors", "metric": "error_rate", "max": 0.05, "min_requests": 5, "severity": "critical"}]
CANARY = {"kind": "canary", "steps": [25, 50, 100], "hold": "2s", "scale_down_delay": "1s"}
RUN_TIMEOUT = 150.0


class Recorder:
    """Listener: every state and event; `hook` runs on each state (fault injection)."""

    def __init__(self, hook: Any = None):
        self.states: list[State] = []
        self.events: list[Event] = []
        self.hook = hook

    def on_event(self, event: Event) -> None:
        self.events.append(event)

    def on_state(self, state: State) -> None:
        self.states.append(state)
        if self.hook is not None:
            self.hook(state)

    def names(self) -> list[str]:
        return [e.event for e in self.events]

    def weights(self) -> list[int]:
        """The plan's candidate weight per state, consecutive repeats dropped."""
        out: list[int] = []
        for state in self.states:
            if not out or out[-1] != state.rollout.weight:
                out.append(state.rollout.weight)
        return out


def fault_at(kubelet, weight: int):
    """A hook: once the candidate holds `weight` with traffic, every v2 request fails."""
    done: list[int] = []

    def hook(state: State) -> None:
        view = next((v for v in state.versions if v.version == "v2"), None)
        if done or state.rollout.phase is not Phase.PROGRESSING or state.rollout.weight != weight \
                or view is None or not view.ready:
            return
        kubelet.behaviour("v2").update({"error_ratio": 1.0})
        done.append(weight)

    hook.done = done  # type: ignore[attr-defined]
    return hook


@pytest.fixture
def cluster_release(kube_namespace) -> Iterator:
    """build(lever, manifests, strategy, replicas, httproute=None, **options): objects applied,
    the kubelet serving pods in the background, v1 ready; returns (spec, platform, traffic)."""
    ns = kube_namespace
    kubelet = ns.kubelet(serve=True)
    made: list[Any] = []

    def build(lever: str, files: list[str], strategy: dict[str, Any], *, replicas: int, start: dict[str, int],
              httproute: str | None = None, preview: dict[str, str] | None = None, **options: Any):
        docs = [d for name in files for d in manifest(name)]
        for doc in docs:
            if doc["kind"] in ("Deployment",) and doc["metadata"]["name"] != "checkout-v2":
                doc["spec"]["replicas"] = replicas
        ns.create(docs)
        kubelet.start()
        wait_pods(ns, start, kubelet=kubelet)
        spec = spec_for(ns, lever, strategy=strategy, replicas=replicas, metrics=METRICS, gates=GATES, **options)
        platform = KubernetesPlatform(spec)
        traffic = ClusterTraffic(ns.api, ns.name, httproute=httproute, preview=preview)
        made.append(traffic)
        return spec, platform, traffic

    yield ns, kubelet, build
    kubelet.stop()


def drive(spec, platform, traffic, recorder: Recorder, journal: MemoryJournal | None = None) -> State:
    """The release driven to its end under the traffic; its decisions into `journal` if given."""
    source = ScrapeSource.for_release(spec)
    driver = Driver(spec, Engine(spec, journal=journal), platform, platform, source,
                    listeners=[recorder])

    async def scenario() -> State:
        try:
            return await driver.run(timeout=RUN_TIMEOUT)
        finally:
            await driver.close()

    with traffic:
        return run(scenario())


def assert_rolled_back_by_the_gate(recorder: Recorder, final: State, hook) -> None:
    assert hook.done, f"the candidate never held {hook}: {recorder.weights()}"
    assert final.rollout.phase is Phase.ROLLED_BACK, recorder.names()
    names = recorder.names()
    assert names.index("rolling_back") < names.index("rolled_back")
    rolling = recorder.events[names.index("rolling_back")]
    assert rolling.details["actor"] == "gate:errors" and rolling.details["weight"] == 0


def test_canary_by_replicas_promotes(cluster_release) -> None:
    ns, kubelet, build = cluster_release
    spec, platform, traffic = build("replicas", ["deployments.yaml", "service.yaml"], CANARY, replicas=4,
                                    start={"v1": 4})
    recorder = Recorder()
    final = drive(spec, platform, traffic, recorder)
    assert final.rollout.phase is Phase.SUCCEEDED, recorder.names()
    assert [w for w in recorder.weights() if w] == [25, 50, 100]
    wait_pods(ns, {"v2": 4}, kubelet=kubelet)
    assert (ns.deployment("checkout-v1")["spec"]["replicas"], ns.deployment("checkout-v2")["spec"]["replicas"]) \
        == (0, 4)
    assert traffic.versions["v1"] > 0 and traffic.versions["v2"] > 0, traffic.versions
    assert traffic.codes[500] == 0, traffic.codes


def test_canary_by_replicas_fault_is_rolled_back(cluster_release) -> None:
    ns, kubelet, build = cluster_release
    spec, platform, traffic = build("replicas", ["deployments.yaml", "service.yaml"], CANARY, replicas=4,
                                    start={"v1": 4})
    hook = fault_at(kubelet, 25)
    recorder = Recorder(hook)
    final = drive(spec, platform, traffic, recorder)
    assert_rolled_back_by_the_gate(recorder, final, hook)
    assert max(recorder.weights()) == 25
    wait_pods(ns, {"v1": 4}, kubelet=kubelet)
    assert ns.deployment("checkout-v2")["spec"]["replicas"] == 0
    assert traffic.codes[500] > 0  # the fault was real and seen by clients before the rollback


def test_blue_green_by_service_switch_fault_is_switched_back(cluster_release) -> None:
    ns, kubelet, build = cluster_release
    spec, platform, traffic = build("service", ["deployments.yaml", "service-bluegreen.yaml"],
                                    {"kind": "blue-green", "preview_hold": "1s", "hold": "3s",
                                     "scale_down_delay": "1s"}, replicas=2, start={"v1": 2},
                                    preview={"app": "checkout", "version": "v2"})
    hook = fault_at(kubelet, 100)
    recorder = Recorder(hook)
    final = drive(spec, platform, traffic, recorder)
    assert_rolled_back_by_the_gate(recorder, final, hook)
    assert recorder.weights() == [0, 100, 0]  # a switch and a switch back, nothing in between
    svc = ns.core.read_namespaced_service("checkout", ns.name)
    assert svc.spec.selector == {"app": "checkout", "version": "v1"}
    wait_pods(ns, {"v1": 2}, kubelet=kubelet)
    assert traffic.versions["v2"] > 0  # green really served before it was switched back


def test_blue_green_by_service_switch_promotes(cluster_release) -> None:
    ns, kubelet, build = cluster_release
    spec, platform, traffic = build("service", ["deployments.yaml", "service-bluegreen.yaml"],
                                    {"kind": "blue-green", "preview_hold": "1s", "hold": "2s",
                                     "scale_down_delay": "1s"}, replicas=2, start={"v1": 2},
                                    preview={"app": "checkout", "version": "v2"})
    recorder = Recorder()
    final = drive(spec, platform, traffic, recorder)
    assert final.rollout.phase is Phase.SUCCEEDED, recorder.names()
    assert recorder.weights() == [0, 100]
    svc = ns.core.read_namespaced_service("checkout", ns.name)
    assert svc.spec.selector == {"app": "checkout", "version": "v2"}
    wait_pods(ns, {"v2": 2}, kubelet=kubelet)


def test_rolling_update_fault_is_undone(cluster_release) -> None:
    ns, kubelet, build = cluster_release
    spec, platform, traffic = build("rolling", ["rolling.yaml", "service.yaml"],
                                    {"kind": "rolling", "max_surge": 1, "max_unavailable": 0, "hold": "3s"},
                                    replicas=2, start={"v1": 2}, images={"v2": "ghcr.io/stefanprodan/podinfo:6.7.1"})
    hook = fault_at(kubelet, 50)
    recorder = Recorder(hook)
    final = drive(spec, platform, traffic, recorder)
    assert_rolled_back_by_the_gate(recorder, final, hook)
    wait_pods(ns, {"v1": 2}, kubelet=kubelet)
    dep = ns.deployment("checkout")
    assert dep["spec"]["template"]["metadata"]["labels"]["version"] == "v1"
    assert dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"  # undo, as kubectl does
    assert not dep["spec"].get("paused")


def test_rolling_update_promotes_batch_by_batch(cluster_release) -> None:
    ns, kubelet, build = cluster_release
    spec, platform, traffic = build("rolling", ["rolling.yaml", "service.yaml"],
                                    {"kind": "rolling", "max_surge": 1, "max_unavailable": 0, "hold": "2s"},
                                    replicas=2, start={"v1": 2}, images={"v2": "ghcr.io/stefanprodan/podinfo:6.7.1"})
    recorder = Recorder()
    final = drive(spec, platform, traffic, recorder)
    assert final.rollout.phase is Phase.SUCCEEDED, recorder.names()
    assert [w for w in recorder.weights() if w] == [50, 100]
    wait_pods(ns, {"v2": 2}, kubelet=kubelet)
    # maxUnavailable 0: ready pods never fell below 2 while the release ran
    ready = [sum(v.ready for v in s.versions) for s in recorder.states]
    assert min(ready) >= 2, ready


def test_httproute_canary_fault_is_rolled_back(cluster_release) -> None:
    ns, kubelet, build = cluster_release
    spec, platform, traffic = build(
        "httproute", ["deployments.yaml", "httproute.yaml"], CANARY, replicas=2, start={"v1": 2},
        httproute="checkout", backends={"v1": "checkout-v1", "v2": "checkout-v2"},
        deployments={"v1": "checkout-v1", "v2": "checkout-v2"})
    hook = fault_at(kubelet, 25)
    recorder = Recorder(hook)
    final = drive(spec, platform, traffic, recorder)
    assert_rolled_back_by_the_gate(recorder, final, hook)
    route = ns.custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", ns.name, "httproutes",
                                                   "checkout")
    assert [(r["name"], r["weight"]) for r in route["spec"]["rules"][0]["backendRefs"]] == \
        [("checkout-v1", 100), ("checkout-v2", 0)]
    wait_pods(ns, {"v1": 2}, kubelet=kubelet)
    assert ns.deployment("checkout-v2")["spec"]["replicas"] == 0


def test_httproute_canary_promotes_with_exact_weights(cluster_release) -> None:
    ns, kubelet, build = cluster_release
    spec, platform, traffic = build(
        "httproute", ["deployments.yaml", "httproute.yaml"], CANARY, replicas=2, start={"v1": 2},
        httproute="checkout", backends={"v1": "checkout-v1", "v2": "checkout-v2"},
        deployments={"v1": "checkout-v1", "v2": "checkout-v2"})
    recorder = Recorder()
    final = drive(spec, platform, traffic, recorder)
    assert final.rollout.phase is Phase.SUCCEEDED, recorder.names()
    actual = []
    for state in recorder.states:
        view = next(v for v in state.versions if v.version == "v2")
        if view.actual_weight is not None and (not actual or actual[-1] != view.actual_weight):
            actual.append(view.actual_weight)
    assert [w for w in actual if w] == [25.0, 50.0, 100.0], actual  # exact, read back from the route
    wait_pods(ns, {"v2": 2}, kubelet=kubelet)
    assert pods_by_version(ns) == {"v2": 2}


def test_hand_edits_to_the_route_and_the_candidate_deployment_are_put_back(cluster_release) -> None:
    """Mid-canary, someone else (another field manager, as `kubectl edit` is) sets the
    HTTPRoute back to v1 100 / v2 0 and scales the candidate's Deployment to 0. The next ticks
    read both back, put them back as `reconcile` records (never new decisions), and the release
    promotes with nothing decided twice."""
    ns, _kubelet, build = cluster_release
    spec, platform, traffic = build(
        "httproute", ["deployments.yaml", "httproute.yaml"], {**CANARY, "hold": "8s"}, replicas=2,
        start={"v1": 2}, httproute="checkout", backends={"v1": "checkout-v1", "v2": "checkout-v2"},
        deployments={"v1": "checkout-v1", "v2": "checkout-v2"})
    edited: list[float] = []

    def edit_by_hand(state: State) -> None:
        view = next((v for v in state.versions if v.version == "v2"), None)
        if edited or view is None or view.actual_weight != 50.0 or view.ready < 2:
            return
        where = (HTTPROUTE.group, HTTPROUTE.version, ns.name, HTTPROUTE.plural, "checkout")
        route = ns.custom.get_namespaced_custom_object(*where)
        refs = route["spec"]["rules"][0]["backendRefs"]
        for ref in refs:
            ref["weight"] = 100 if ref["name"] == "checkout-v1" else 0
        ns.custom.patch_namespaced_custom_object(
            *where, {"spec": {"rules": route["spec"]["rules"]}}, field_manager="kubectl-edit")
        ns.apps.patch_namespaced_deployment_scale(
            "checkout-v2", ns.name, {"spec": {"replicas": 0}}, field_manager="kubectl-scale")
        edited.append(state.at)

    recorder = Recorder(edit_by_hand)
    journal = MemoryJournal()
    final = drive(spec, platform, traffic, recorder, journal)
    assert edited, f"the candidate never held 50 % with both pods ready: {recorder.weights()}"
    assert final.rollout.phase is Phase.SUCCEEDED, recorder.names()
    # what the corrections re-applied: the step's weight and the journal's replicas, nothing else
    fixes = reapplied(journal.records)
    assert fixes == {("set_weight", "", 50), ("scale", "v2", 2)}, fixes
    steps = [r["step"] for r in journal.records if r["kind"] == "step"]
    assert len(steps) == len(set(steps)), steps
    assert "rolling_back" not in recorder.names()
