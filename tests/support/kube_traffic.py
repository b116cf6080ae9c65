"""Client traffic through a cluster that has no data plane: the test's kube-proxy and gateway.

With no nodes there is no kube-proxy and no Gateway controller, so this sends requests the way
they would route, reading the same objects they read: a Service's selector picks ready pods
(round robin), an HTTPRoute's backendRef weights pick the Service first. Requests go to the pods'
real demo services (tests/support/kubelet.py, `serve=True`), whose /metrics the scrape source
reads. The route is re-read every few requests, so a lever's change is followed promptly.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Mapping
from typing import Any

from kubernetes import client

from collectors.kubernetes.discovery import pod_ready

MAX_RUN = 600.0  # seconds: a forgotten generator still stops


def _selected(pods: list[Mapping[str, Any]], selector: Mapping[str, str]) -> list[Mapping[str, Any]]:
    out = []
    for pod in pods:
        labels = pod["metadata"].get("labels") or {}
        if pod_ready(pod) and not pod["metadata"].get("deletionTimestamp") and (pod.get("status") or {}).get("podIP") \
                and all(labels.get(k) == v for k, v in selector.items()):
            out.append(pod)
    return out


def _url(pod: Mapping[str, Any]) -> str:
    port = next(p["containerPort"] for c in pod["spec"]["containers"] for p in c.get("ports") or [])
    return f"http://{pod['status']['podIP']}:{port}/work"


class ClusterTraffic:
    """Requests at `rate` per second to `service`, or through HTTPRoute `httproute` if given."""

    def __init__(self, api: client.ApiClient, namespace: str, *, service: str = "checkout",
                 httproute: str | None = None, rate: float = 40.0, preview: Mapping[str, str] | None = None):
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.namespace = namespace
        self.service = service
        self.httproute = httproute
        self.rate = rate
        self.preview = dict(preview or {})  # a preview Service's selector: smoke traffic to green
        self.codes: Counter[int] = Counter()
        self.versions: Counter[str] = Counter()
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._turn = itertools.count()

    def _endpoints(self, service: str, pods: list[Mapping[str, Any]]) -> list[str]:
        svc = json.loads(self.core.read_namespaced_service(service, self.namespace, _preload_content=False).data)
        return [_url(p) for p in _selected(pods, svc["spec"].get("selector") or {})]

    def routes(self) -> list[tuple[float, list[str]]]:
        """(weight, endpoint URLs) per backend, as the data plane would program them now."""
        pods = json.loads(self.core.list_namespaced_pod(self.namespace, _preload_content=False).data)["items"]
        if not self.httproute:
            return [(1.0, self._endpoints(self.service, pods))]
        route = self.custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", self.namespace,
                                                         "httproutes", self.httproute)
        refs = route["spec"]["rules"][0]["backendRefs"]
        return [(float(r.get("weight", 1)), self._endpoints(r["name"], pods)) for r in refs]

    def previews(self) -> list[str]:
        if not self.preview:
            return []
        pods = json.loads(self.core.list_namespaced_pod(self.namespace, _preload_content=False).data)["items"]
        return [_url(p) for p in _selected(pods, self.preview)]

    def _pick(self, routes: list[tuple[float, list[str]]]) -> str | None:
        live = [(w, eps) for w, eps in routes if w > 0]
        if not live:
            return None
        _, endpoints = random.choices(live, weights=[w for w, _ in live])[0]
        return endpoints[next(self._turn) % len(endpoints)] if endpoints else None

    def _loop(self) -> None:
        deadline = time.monotonic() + MAX_RUN
        routes: list[tuple[float, list[str]]] = []
        previews: list[str] = []
        sent = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            if sent % 10 == 0:
                try:
                    routes = self.routes()
                    previews = self.previews()
                except Exception as exc:  # the route is being changed or the server is busy
                    self.errors.append(" ".join(str(exc).split())[:160])
            sent += 1
            url = self._pick(routes)
            if url is None:
                self.codes[503] += 1  # no endpoint: what a client would get from the proxy
            else:
                self._one(url)
            if previews:  # what a preview Service in front of the green side would carry
                self._one(previews[sent % len(previews)])
            self._stop.wait(1.0 / self.rate)

    def _one(self, url: str) -> None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                self.codes[int(response.status)] += 1
                self.versions[response.headers.get("x-releasedeck-version", "?")] += 1
        except urllib.error.HTTPError as exc:
            self.codes[int(exc.code)] += 1
            self.versions[exc.headers.get("x-releasedeck-version", "?")] += 1
        except OSError:
            self.codes[0] += 1  # connection refused: a pod that just went away

    def __enter__(self) -> ClusterTraffic:
        self._thread = threading.Thread(target=self._loop, name="cluster-traffic", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
