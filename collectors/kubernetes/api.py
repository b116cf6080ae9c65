"""A thin async face on the official `kubernetes` client: the calls the levers need, as dicts.

The client is blocking, so each call runs in a thread with its own `_request_timeout`. Objects
stay plain JSON dicts (`_preload_content=False`): they are what the API server sent, which keeps
field-by-field reasoning (and tests) close to the real wire format. Every failure leaves here as
a `KubeError` with a one-line message.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config
from urllib3.util.retry import Retry

from collectors.kubernetes.errors import KubeError, describe

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@dataclass(frozen=True)
class Crd:
    """A custom resource's coordinates, and its human name for messages."""

    group: str
    version: str
    plural: str
    kind: str


HTTPROUTE = Crd("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute")
ROLLOUT = Crd("argoproj.io", "v1alpha1", "rollouts", "Rollout")
POD_METRICS = Crd("metrics.k8s.io", "v1beta1", "pods", "PodMetrics")  # served by metrics-server


def connect(options: Mapping[str, Any]) -> tuple[client.ApiClient, str, str]:
    """Build an ApiClient from the spec's options: (client, namespace, server address).

    In-cluster service account when `in_cluster = true` (or when no kubeconfig exists and the
    pod environment is there); otherwise the kubeconfig file and context. The namespace comes
    from the spec, else the context, else the service account, else "default".
    """
    kubeconfig = options.get("kubeconfig") or None
    context = options.get("context") or None
    namespace = options.get("namespace") or ""
    in_cluster = bool(options.get("in_cluster"))
    default_path = Path(os.environ.get("KUBECONFIG", "~/.kube/config").split(os.pathsep)[0]).expanduser()
    if not in_cluster and not kubeconfig and not default_path.exists() \
            and os.environ.get("KUBERNETES_SERVICE_HOST"):
        in_cluster = True
    try:
        cfg = client.Configuration()
        if in_cluster:
            config.load_incluster_config(client_configuration=cfg)
            if not namespace and SERVICE_ACCOUNT_NAMESPACE.exists():
                namespace = SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
        else:
            config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg)
            if not namespace:
                namespace = _context_namespace(kubeconfig, context)
        # No silent read retries: each call is bounded by its own timeout and the next tick is
        # the retry (urllib3 would retry a GET three times, quadrupling the wait). A failed
        # connect, which sent nothing, may be tried once more. A busy API server's 429/503 with
        # Retry-After comes back as itself (urllib3 would otherwise retry it and, with no
        # retries left, raise "too many 429 error responses", losing the status).
        cfg.retries = Retry(total=1, connect=1, read=0, redirect=0, status=0, other=0,
                            respect_retry_after_header=False)
        api = client.ApiClient(cfg)
    except (config.ConfigException, OSError, ValueError, TypeError) as exc:
        source = "in-cluster service account" if in_cluster else f"kubeconfig {kubeconfig or default_path}"
        where = f" context {context!r}" if context and not in_cluster else ""
        raise KubeError(f"kubernetes: cannot load {source}{where}: {' '.join(str(exc).split())[:200]}") \
            from None
    return api, namespace or "default", str(api.configuration.host)


def _context_namespace(kubeconfig: str | None, context: str | None) -> str:
    contexts, current = config.list_kube_config_contexts(config_file=kubeconfig)
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else current
    return str(((chosen or {}).get("context") or {}).get("namespace") or "")


class Kube:
    """Namespaced reads and patches, each one awaited in a thread with a timeout."""

    def __init__(self, api: client.ApiClient, namespace: str, timeout: float = 5.0, server: str = ""):
        self.api = api
        self.namespace = namespace
        self.timeout = timeout
        self.server = server or str(api.configuration.host)
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.coordination = client.CoordinationV1Api(api)

    @property
    def where(self) -> str:
        return f"namespace {self.namespace} on {self.server}"

    async def _call(self, action: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            response = fn(*args, _preload_content=False, _request_timeout=self.timeout, **kwargs)
            return json.loads(response.data or b"{}")

        try:
            return await asyncio.to_thread(run)
        except Exception as exc:  # every failure becomes one line; nothing escapes as a traceback
            raise describe(exc, action, self.where) from None

    # ------------------------------------------------------------------ core and apps

    async def list_pods(self, selector: str) -> list[dict[str, Any]]:
        body = await self._call("list pods", self.core.list_namespaced_pod, self.namespace,
                                label_selector=selector or None)
        return list(body.get("items") or [])

    async def list_deployments(self, selector: str) -> list[dict[str, Any]]:
        body = await self._call("list deployments", self.apps.list_namespaced_deployment, self.namespace,
                                label_selector=selector or None)
        return list(body.get("items") or [])

    async def list_replicasets(self, selector: str) -> list[dict[str, Any]]:
        body = await self._call("list replicasets", self.apps.list_namespaced_replica_set, self.namespace,
                                label_selector=selector or None)
        return list(body.get("items") or [])

    async def get_deployment(self, name: str) -> dict[str, Any]:
        return await self._call(f"read deployments/{name}", self.apps.read_namespaced_deployment,
                                name, self.namespace)

    async def patch_deployment(self, name: str, body: Any, content_type: str = STRATEGIC) -> dict[str, Any]:
        return await self._call(f"patch deployments/{name}", self.apps.patch_namespaced_deployment,
                                name, self.namespace, body, _content_type=content_type)

    async def get_service(self, name: str) -> dict[str, Any]:
        return await self._call(f"read services/{name}", self.core.read_namespaced_service, name, self.namespace)

    async def patch_service(self, name: str, body: Any, content_type: str = STRATEGIC) -> dict[str, Any]:
        return await self._call(f"patch services/{name}", self.core.patch_namespaced_service,
                                name, self.namespace, body, _content_type=content_type)

    # ------------------------------------------------------------------ leases (coordination.k8s.io/v1)

    async def get_lease(self, name: str) -> dict[str, Any]:
        return await self._call(f"read leases/{name}", self.coordination.read_namespaced_lease, name,
                                self.namespace)

    async def create_lease(self, body: Any) -> dict[str, Any]:
        name = body["metadata"]["name"]
        return await self._call(f"create leases/{name}", self.coordination.create_namespaced_lease,
                                self.namespace, body)

    async def replace_lease(self, name: str, body: Any, action: str = "update") -> dict[str, Any]:
        """PUT the whole Lease. Its `metadata.resourceVersion` is the precondition: the API server
        answers 409 Conflict when someone wrote in between. The body is plain JSON (times already
        RFC 3339 with microseconds, as the API server's MicroTime wants them): the client's
        V1Lease model would format them without microseconds and get every write refused (400)."""
        return await self._call(f"{action} leases/{name}", self.coordination.replace_namespaced_lease,
                                name, self.namespace, body)

    # ------------------------------------------------------------------ custom resources

    async def list_pod_metrics(self, selector: str) -> list[dict[str, Any]]:
        """CPU and memory per pod from metrics.k8s.io (KubeError where metrics-server is absent)."""
        body = await self._call("list pods.metrics.k8s.io", self.custom.list_namespaced_custom_object,
                                POD_METRICS.group, POD_METRICS.version, self.namespace, POD_METRICS.plural,
                                label_selector=selector or None)
        return list(body.get("items") or [])

    async def list_custom(self, crd: Crd, selector: str = "") -> list[dict[str, Any]]:
        try:
            body = await self._call(f"list {crd.plural}.{crd.group}", self.custom.list_namespaced_custom_object,
                                    crd.group, crd.version, self.namespace, crd.plural,
                                    label_selector=selector or None)
        except KubeError as exc:
            raise await self._explain_404(crd, exc) from None
        return list(body.get("items") or [])

    async def get_custom(self, crd: Crd, name: str) -> dict[str, Any]:
        try:
            return await self._call(f"read {crd.plural}.{crd.group}/{name}", self.custom.get_namespaced_custom_object,
                                    crd.group, crd.version, self.namespace, crd.plural, name)
        except KubeError as exc:
            raise await self._explain_404(crd, exc) from None

    async def patch_custom(self, crd: Crd, name: str, body: Any, *, status: bool = False,
                           content_type: str = MERGE) -> dict[str, Any]:
        fn = self.custom.patch_namespaced_custom_object_status if status else self.custom.patch_namespaced_custom_object
        target = f"{crd.plural}.{crd.group}/{name}" + ("/status" if status else "")
        return await self._call(f"patch {target}", fn, crd.group, crd.version, self.namespace, crd.plural, name,
                                body, _content_type=content_type)

    async def _explain_404(self, crd: Crd, exc: KubeError) -> KubeError:
        """A 404 means either 'no such object' or 'no such API'; ask discovery which one."""
        if not exc.not_found:
            return exc

        def probe() -> int:
            request = self.api.param_serialize("GET", f"/apis/{crd.group}/{crd.version}",
                                               header_params={"Accept": "application/json"},
                                               auth_settings=["BearerToken"])
            response = self.api.call_api(*request, _request_timeout=self.timeout)
            response.read()
            return int(response.status)

        try:
            code = await asyncio.to_thread(probe)
        except Exception:  # the probe only refines the message; the original error stands
            return exc
        if code == 404:
            return KubeError(f"kubernetes: {crd.kind} ({crd.group}/{crd.version}) is not served by "
                             f"{self.server}: is its CRD installed?", 404, "NoSuchAPI")
        return exc

    def close(self) -> None:
        self.api.close()
