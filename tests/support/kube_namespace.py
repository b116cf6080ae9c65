"""One test's namespace on the shared control plane, and what tests do in it.

Every test gets its own namespace (the control plane lives for the whole session), a
kubeconfig whose context points there, objects created from manifests (core, apps, RBAC and
CRD kinds alike, through the dynamic client), a ServiceAccount token for RBAC tests, and the
test kubelet for that namespace.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.dynamic import DynamicClient

from tests.support.kube_cluster import ControlPlane
from tests.support.kubelet import TestKubelet

_serial = itertools.count(1)


class KubeNamespace:
    """A fresh namespace with the default ServiceAccount in place (pods can be admitted)."""

    def __init__(self, plane: ControlPlane, slug: str):
        self.plane = plane
        self.name = f"t{next(_serial)}-{slug}"[:63].rstrip("-")
        self.api = plane.api_client()
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.dynamic = DynamicClient(self.api)
        ensure_namespace(self, self.name)
        self.kubeconfig = self._admin_kubeconfig()
        self.kubelets: list[TestKubelet] = []

    def _admin_kubeconfig(self) -> Path:
        """The admin kubeconfig with this namespace as the context's namespace."""
        data = json.loads(self.plane.admin_kubeconfig.read_text())
        data["contexts"][0]["context"]["namespace"] = self.name
        path = self.plane.workdir / f"admin-{self.name}.kubeconfig"
        path.write_text(json.dumps(data))
        path.chmod(0o600)
        return path

    # ------------------------------------------------------------------ objects

    def create(self, docs: Iterable[Mapping[str, Any]], *, namespace: str | None = None,
               dry_run: bool = False) -> list[dict[str, Any]]:
        """Create each object (namespace forced to ours unless given); returns what the server stored."""
        out = []
        for doc in docs:
            body = json.loads(json.dumps(doc))
            resource = self.dynamic.resources.get(api_version=body["apiVersion"], kind=body["kind"])
            ns = None
            if resource.namespaced:
                ns = namespace or self.name
                body.setdefault("metadata", {})["namespace"] = ns
            kwargs = {"dry_run": "All"} if dry_run else {}
            out.append(resource.create(body=body, namespace=ns, **kwargs).to_dict())
        return out

    def read(self, api_version: str, kind: str, name: str) -> dict[str, Any]:
        resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
        return resource.get(name=name, namespace=self.name if resource.namespaced else None).to_dict()

    def deployment(self, name: str) -> dict[str, Any]:
        return json.loads(self.apps.read_namespaced_deployment(name, self.name, _preload_content=False).data)

    def replicasets(self) -> list[dict[str, Any]]:
        return json.loads(self.apps.list_namespaced_replica_set(self.name, _preload_content=False).data)["items"]

    def pods(self) -> list[dict[str, Any]]:
        return json.loads(self.core.list_namespaced_pod(self.name, _preload_content=False).data)["items"]

    # ------------------------------------------------------------------ identities

    def service_account_token(self, account: str, seconds: int = 3600) -> str:
        """A bound token for a ServiceAccount of this namespace, through the TokenRequest API."""
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                   "spec": {"expirationSeconds": seconds}}
        answer = self.core.create_namespaced_service_account_token(account, self.name, request,
                                                                  _preload_content=False)
        return str(json.loads(answer.data)["status"]["token"])

    def kubeconfig_for(self, account: str) -> Path:
        """A kubeconfig that is this namespace's ServiceAccount `account`, nothing more."""
        return self.plane.kubeconfig_for_token(f"sa-{self.name}-{account}", self.service_account_token(account),
                                               self.name)

    # ------------------------------------------------------------------ the node

    def kubelet(self, *, serve: bool = False) -> TestKubelet:
        kubelet = TestKubelet(self.plane.api_client(), self.name, serve=serve)
        self.kubelets.append(kubelet)
        return kubelet

    def wait(self, what: str, check: Callable[[], bool], *, timeout: float = 60.0,
             between: Callable[[], None] | None = None) -> None:
        """Poll `check` (running `between` first each round) until true; fail after `timeout` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if between is not None:
                between()
            if check():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} in namespace {self.name}")

    def close(self) -> None:
        for kubelet in self.kubelets:
            kubelet.stop()
        self.api.close()


def ensure_namespace(ns: KubeNamespace, name: str) -> None:
    """Create the namespace if needed, and its default ServiceAccount (which the
    ServiceAccount admission plugin wants before it admits a pod) if the controller has not yet."""
    for create, body in ((lambda b: ns.core.create_namespace(b, _preload_content=False),
                          {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
                         (lambda b: ns.core.create_namespaced_service_account(name, b, _preload_content=False),
                          {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}})):
        try:
            create(body)
        except client.ApiException as exc:
            if exc.status != 409:  # 409: it exists already
                raise
