"""A test "kubelet": plays the one node of a control plane that has no nodes.

What a kubelet (with the scheduler) does to a pod, through the same API calls: bind it to the
node (`pods/binding`), report it Running with an IP and its Ready condition (`pods/status`),
and finish a graceful delete by deleting with grace period 0 once its "containers" stopped.
Readiness is the test's to decide (`ready_when`), so tests can hold pods unready.

With `serve=True` each pod's container is real: a demo service (collectors.local.demo_service)
listening on the pod's own loopback IP (127.1.x.y) at the pod's containerPort, labelled with
the pod's version, so a scrape metric source can read each pod's /metrics like Prometheus does
in a cluster. Behaviour (latency, error ratio) is shared per version: `behaviour("v2")`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from collectors.kubernetes.discovery import pod_ready
from collectors.local.demo_service import Behaviour, Server, serve

NODE = "releasedeck-test-node"
MAX_RUN = 900.0  # a background kubelet never outlives this many seconds
_POD_IPS = itertools.count(1)  # one sequence per test session: no two pods share an IP


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Container:
    """A pod's running container: a demo service thread on the pod's IP."""

    server: Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class TestKubelet:
    """Binds, starts, reports and finishes deleting the pods of one namespace."""

    __test__ = False  # not a test class, despite the name

    def __init__(self, api: client.ApiClient, namespace: str, *, serve: bool = False,
                 version_label: str = "version", service: str = "checkout"):
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.serve = serve
        self.version_label = version_label
        self.service = service
        self.ready_when: Callable[[Mapping[str, Any]], bool] = lambda pod: True
        self.ips: dict[str, str] = {}  # pod uid -> IP
        self.containers: dict[str, Container] = {}
        self.behaviours: dict[str, Behaviour] = {}
        self.deleted: list[str] = []  # pod names whose deletion this kubelet finished, in order
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []

    def behaviour(self, version: str) -> Behaviour:
        """The live behaviour of every container of a version (fault injection goes here)."""
        return self.behaviours.setdefault(version, Behaviour(latency_ms=2.0))

    # ------------------------------------------------------------------ one pass

    def pods(self) -> list[dict[str, Any]]:
        body = self.core.list_namespaced_pod(self.namespace, _preload_content=False, _request_timeout=10)
        return list(json.loads(body.data).get("items") or [])

    def sync(self) -> None:
        """One pass over every pod of the namespace, like a kubelet's sync loop."""
        seen = set()
        for pod in self.pods():
            meta = pod["metadata"]
            seen.add(meta["uid"])
            if meta.get("deletionTimestamp"):
                self._finish_delete(pod)
            elif not (pod.get("spec") or {}).get("nodeName"):
                self._bind(pod)
            else:
                self._report(pod)
        for uid in [u for u in self.containers if u not in seen]:  # deleted by someone else
            self.containers.pop(uid).stop()

    def settle(self, passes: int = 3) -> None:
        for _ in range(passes):
            self.sync()

    def _bind(self, pod: Mapping[str, Any]) -> None:
        name = pod["metadata"]["name"]
        body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                "target": {"apiVersion": "v1", "kind": "Node", "name": NODE}}
        with contextlib.suppress(ApiException):  # gone or already bound: the next pass sees it
            self.core.create_namespaced_binding(self.namespace, body, _preload_content=False)

    def _report(self, pod: Mapping[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        ip = self.ips.get(uid) or (pod.get("status") or {}).get("podIP")
        if not ip:
            n = next(_POD_IPS)
            ip = f"127.1.{n // 250}.{n % 250 + 1}"
        self.ips[uid] = ip
        serving = True
        if self.serve and uid not in self.containers:
            serving = self._start(pod, ip)
        ready = serving and bool(self.ready_when(pod))
        status = pod.get("status") or {}
        if status.get("phase") == "Running" and pod_ready(pod) == ready and status.get("podIP") == ip:
            return
        now = _now()
        flag = "True" if ready else "False"
        containers = (pod.get("spec") or {}).get("containers") or []
        body = {"status": {
            "phase": "Running", "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": ip, "podIPs": [{"ip": ip}], "startTime": status.get("startTime") or now,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
                {"type": "Ready", "status": flag, "lastTransitionTime": now},
            ],
            "containerStatuses": [{
                "name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": ready,
                "restartCount": 0, "started": True, "state": {"running": {"startedAt": now}},
            } for c in containers],
        }}
        with contextlib.suppress(ApiException):
            self.core.patch_namespaced_pod_status(pod["metadata"]["name"], self.namespace, body,
                                                  _preload_content=False)

    def _start(self, pod: Mapping[str, Any], ip: str) -> bool:
        containers = (pod.get("spec") or {}).get("containers") or []
        port = next((p.get("containerPort") for c in containers for p in c.get("ports") or []
                     if p.get("containerPort")), None)
        version = ((pod.get("metadata") or {}).get("labels") or {}).get(self.version_label, "")
        if not port or not version:
            return True  # nothing to serve: report it like any other pod
        try:
            server = serve(self.service, version, int(port), self.behaviour(version), host=ip)
        except OSError as exc:
            self.errors.append(f"{pod['metadata']['name']}: cannot listen on {ip}:{port}: {exc}")
            return False
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                  name=f"pod-{pod['metadata']['name']}", daemon=True)
        thread.start()
        self.containers[pod["metadata"]["uid"]] = Container(server, thread)
        return True

    def _finish_delete(self, pod: Mapping[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        if uid in self.containers:
            self.containers.pop(uid).stop()
        with contextlib.suppress(ApiException):
            self.core.delete_namespaced_pod(pod["metadata"]["name"], self.namespace, grace_period_seconds=0,
                                            body=client.V1DeleteOptions(
                                                grace_period_seconds=0, preconditions=client.V1Preconditions(uid=uid)),
                                            _preload_content=False)
            self.deleted.append(pod["metadata"]["name"])

    # ------------------------------------------------------------------ in the background

    def start(self, interval: float = 0.2) -> TestKubelet:
        """Sync in a thread every `interval` seconds until stop() (at most MAX_RUN seconds)."""
        def loop() -> None:
            deadline = time.monotonic() + MAX_RUN
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    self.sync()
                except Exception as exc:  # keep syncing; the test reads the errors
                    self.errors.append(" ".join(str(exc).split())[:200])
                self._stop.wait(interval)

        self._stop.clear()
        self._thread = threading.Thread(target=loop, name="test-kubelet", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
        for uid in list(self.containers):
            self.containers.pop(uid).stop()
