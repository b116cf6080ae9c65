"""Whole ring and dark-launch releases through the Driver on the real control plane.

The httproute lever writes header-matched cohort rules and a RequestMirror filter; the real
kube-apiserver validates them with the Gateway API CRD. No gateway runs here, so the test's data
plane (`GatewayTraffic`) does what a conformant one does with the stored route: a request goes to
the rule whose matches fit it, the rule with the most header matches first (Gateway API's
precedence), then by that rule's weights; a rule's RequestMirror copies exactly `percent` of
every 100 of its requests to the mirror's Service and throws the answer away.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from collectors.kubernetes import KubernetesPlatform
from strategies.model import Phase
from tests.collectors.kubernetes.real_cluster import manifest, spec_for, wait_pods
from tests.collectors.kubernetes.test_k8s_real_releases import (
    GATES,
    METRICS,
    Recorder,
    assert_rolled_back_by_the_gate,
    drive,
    fault_at,
)
from tests.support.kube_traffic import MAX_RUN, ClusterTraffic, _selected, _url

pytestmark = pytest.mark.timeout(600)

BACKENDS = {"v1": "checkout-v1", "v2": "checkout-v2"}
DEPLOYMENTS = {"v1": "checkout-v1", "v2": "checkout-v2"}
GROUP = "X-User-Group"


def _fits(match: Mapping[str, Any], headers: Mapping[str, str]) -> bool:
    """One HTTPRouteMatch against a request (path "/" prefix: every request; Exact headers)."""
    return all(h.get("type", "Exact") == "Exact" and headers.get(h["name"]) == h["value"]
               for h in match.get("headers") or [])


def pick_rule(rules: list[Mapping[str, Any]], headers: Mapping[str, str]) -> Mapping[str, Any] | None:
    """The rule a conformant gateway picks: of the fitting matches, most header matches, then
    list order."""
    best: tuple[int, int] | None = None
    chosen = None
    for i, rule in enumerate(rules):
        for match in rule.get("matches") or [{}]:
            if _fits(match, headers):
                key = (-len(match.get("headers") or []), i)
                if best is None or key < best:
                    best, chosen = key, rule
    return chosen


class GatewayTraffic(ClusterTraffic):
    """Users in two groups (every 4th request from staff) through the HTTPRoute as stored."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.served: Counter[tuple[str, str]] = Counter()  # (group, version) of client answers
        self.shadow: Counter[str] = Counter()  # mirrored copies sent, by version that answered
        self.phases: list[str] = []  # what each route read said, repeats dropped (see `_phase`)
        self._credit: dict[str, float] = {}
        self._route: list[Mapping[str, Any]] = []
        self._pods: list[Mapping[str, Any]] = []
        self._services: dict[str, Mapping[str, str]] = {}

    def routes(self) -> list[tuple[float, list[str]]]:
        """Refresh the route, pods and Service selectors (the parent's loop calls this every 10)."""
        self._pods = json.loads(self.core.list_namespaced_pod(self.namespace, _preload_content=False).data)["items"]
        route = self.custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", self.namespace,
                                                         "httproutes", self.httproute)
        self._route = route["spec"]["rules"]
        phase = _phase(self._route, BACKENDS["v2"])
        if not self.phases or self.phases[-1] != phase:
            self.phases.append(phase)
        for name in BACKENDS.values():
            svc = json.loads(self.core.read_namespaced_service(name, self.namespace, _preload_content=False).data)
            self._services[name] = svc["spec"].get("selector") or {}
        return [(1.0, ["route"])]  # a marker: _pick below reads the route itself

    def _endpoints_of(self, service: str) -> list[str]:
        return [_url(p) for p in _selected(self._pods, self._services.get(service, {}))]

    def _loop(self) -> None:
        deadline = time.monotonic() + MAX_RUN
        sent = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            if sent % 10 == 0:
                try:
                    self.routes()
                except Exception as exc:  # the route is being changed or the server is busy
                    self.errors.append(" ".join(str(exc).split())[:160])
            if self._route:
                self._request(sent)
            sent += 1
            self._stop.wait(1.0 / self.rate)

    def _request(self, turn: int) -> None:
        group = "staff" if turn % 4 == 0 else "user"
        rule = pick_rule(self._route, {GROUP: group})
        if rule is None:
            self.codes[404] += 1
            return
        for f in rule.get("filters") or []:
            if f.get("type") == "RequestMirror":
                target = f["requestMirror"]["backendRef"]["name"]
                self._credit[target] = self._credit.get(target, 0.0) + float(f["requestMirror"].get("percent", 100))
                if self._credit[target] >= 100.0:
                    self._credit[target] -= 100.0
                    shadows = self._endpoints_of(target)
                    if shadows:
                        self.shadow[self._ask(shadows[turn % len(shadows)], group)[1]] += 1
        live = [(float(r.get("weight", 1)), r["name"]) for r in rule["backendRefs"] if r.get("weight", 1) > 0]
        name = _by_weight(live, turn)
        endpoints = self._endpoints_of(name) if name else []
        if not endpoints:
            self.codes[503] += 1
            return
        code, version = self._ask(endpoints[turn % len(endpoints)], group)
        self.codes[code] += 1
        self.versions[version] += 1
        self.served[(group, version)] += 1

    def _ask(self, url: str, group: str) -> tuple[int, str]:
        request = urllib.request.Request(url, headers={GROUP: group})
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return int(response.status), response.headers.get("x-releasedeck-version", "?")
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.headers.get("x-releasedeck-version", "?")
        except OSError:
            return 0, "-"  # connection refused: a pod that just went away


def _phase(rules: list[Mapping[str, Any]], candidate: str) -> str:
    """"dark" (a mirror, the candidate serves nobody), "served" (the candidate has weight, no
    mirror), "both" (between the two writes that leave the dark step), or "plain"."""
    mirror = any(f.get("type") == "RequestMirror" for r in rules for f in r.get("filters") or [])
    serving = any(ref["name"] == candidate and ref.get("weight", 1) > 0
                  for r in rules if not str(r.get("name") or "").startswith("releasedeck-")
                  for ref in r["backendRefs"])
    return {(True, False): "dark", (False, True): "served", (True, True): "both"}.get((mirror, serving), "plain")


def _by_weight(live: list[tuple[float, str]], turn: int) -> str | None:
    """A deterministic spread of requests over weighted backends (turn 0..99 cycles the shares)."""
    total = sum(w for w, _ in live)
    if total <= 0:
        return None
    slot = (turn * 37) % 100 * total / 100
    for weight, name in live:
        if slot < weight:
            return name
        slot -= weight
    return live[-1][1]


RING = {"kind": "ring", "hold": "3s", "scale_down_delay": "1s",
        "rings": [{"name": "staff", "match": {"header": GROUP, "values": ["staff"]}},
                  {"name": "half", "weight": 50}, {"name": "everyone", "weight": 100}]}
DARK = {"kind": "canary", "steps": [{"dark": 50, "name": "dark", "hold": "4s"}, 25, 100], "hold": "3s",
        "scale_down_delay": "1s"}


@pytest.fixture
def gateway_release(kube_namespace) -> Iterator:
    """build(strategy): the httproute example applied, v1 ready with 2 pods, the kubelet serving;
    returns (ns, kubelet, spec, platform, traffic through the route)."""
    ns = kube_namespace
    kubelet = ns.kubelet(serve=True)

    def build(strategy: dict[str, Any]):
        docs = manifest("deployments.yaml") + manifest("httproute.yaml")
        for doc in docs:
            if doc["kind"] == "Deployment" and doc["metadata"]["name"] != "checkout-v2":
                doc["spec"]["replicas"] = 2
        ns.create(docs)
        kubelet.start()
        wait_pods(ns, {"v1": 2}, kubelet=kubelet)
        spec = spec_for(ns, "httproute", strategy=strategy, replicas=2, metrics=METRICS, gates=GATES,
                        httproute="checkout", backends=BACKENDS, deployments=DEPLOYMENTS)
        return ns, kubelet, spec, KubernetesPlatform(spec), GatewayTraffic(ns.api, ns.name, httproute="checkout")

    yield build
    kubelet.stop()


def _rules(ns) -> list[dict[str, Any]]:
    return ns.custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", ns.name, "httproutes",
                                                  "checkout")["spec"]["rules"]


def test_ring_fault_is_caught_in_the_staff_ring(gateway_release) -> None:
    ns, kubelet, spec, platform, traffic = gateway_release(RING)
    hook = fault_at(kubelet, 0)
    recorder = Recorder(hook)
    final = drive(spec, platform, traffic, recorder)
    assert_rolled_back_by_the_gate(recorder, final, hook)
    assert max(recorder.weights()) == 0  # never left the staff ring
    assert traffic.served[("staff", "v2")] > 0, traffic.served  # staff really met the candidate
    assert traffic.served[("user", "v2")] == 0, traffic.served  # nobody outside the ring did
    rules = _rules(ns)
    assert [r.get("name") for r in rules] == [None]  # rollback closed the ring
    assert [(r["name"], r["weight"]) for r in rules[0]["backendRefs"]] == [("checkout-v1", 100),
                                                                           ("checkout-v2", 0)]
    wait_pods(ns, {"v1": 2}, kubelet=kubelet)


def test_ring_release_promotes_staff_first(gateway_release) -> None:
    ns, kubelet, spec, platform, traffic = gateway_release(RING)
    recorder = Recorder()
    final = drive(spec, platform, traffic, recorder)
    assert final.rollout.phase is Phase.SUCCEEDED, recorder.names()
    assert [w for w in recorder.weights() if w] == [50, 100]
    assert traffic.served[("staff", "v2")] > 0 and traffic.served[("user", "v2")] > 0, traffic.served
    rules = _rules(ns)
    assert [(r["name"], r["weight"]) for r in rules[-1]["backendRefs"]] == [("checkout-v1", 0),
                                                                            ("checkout-v2", 100)]
    wait_pods(ns, {"v2": 2}, kubelet=kubelet)


def test_dark_fault_is_rolled_back_before_any_user_meets_the_candidate(gateway_release) -> None:
    ns, kubelet, spec, platform, traffic = gateway_release(DARK)
    hook = fault_at(kubelet, 0)
    recorder = Recorder(hook)
    final = drive(spec, platform, traffic, recorder)
    assert_rolled_back_by_the_gate(recorder, final, hook)
    assert max(recorder.weights()) == 0
    assert traffic.shadow["v2"] > 0, traffic.shadow  # the candidate saw (and failed) shadow copies
    assert set(v for (_, v) in traffic.served) <= {"v1", "-"}, traffic.served  # every user answer from v1
    rules = _rules(ns)
    assert "filters" not in rules[0]  # the mirror is gone
    wait_pods(ns, {"v1": 2}, kubelet=kubelet)


def test_dark_then_canary_then_full(gateway_release) -> None:
    ns, kubelet, spec, platform, traffic = gateway_release(DARK)
    recorder = Recorder()
    final = drive(spec, platform, traffic, recorder)
    assert final.rollout.phase is Phase.SUCCEEDED, recorder.names()
    assert [w for w in recorder.weights() if w] == [25, 100]
    assert traffic.shadow["v2"] > 0, traffic.shadow
    # the route was dark before any user could be served by v2, and never dark again after
    phases = traffic.phases
    assert "dark" in phases and "served" in phases, phases
    last_dark = max(i for i, p in enumerate(phases) if p == "dark")
    assert phases.index("served") > last_dark, phases
    assert all(p in ("dark", "both", "plain") for p in phases[:phases.index("served")]), phases
    assert traffic.served[("user", "v2")] > 0, traffic.served  # served once the dark phase ended
    rules = _rules(ns)
    assert "filters" not in rules[0]  # leaving dark removed the mirror
    assert [(r["name"], r["weight"]) for r in rules[0]["backendRefs"]] == [("checkout-v1", 0),
                                                                           ("checkout-v2", 100)]
    wait_pods(ns, {"v2": 2}, kubelet=kubelet)
