"""Test harness: a kubeconfig, release specs, kmock over real HTTP, and a recorded-API server.

No API server can run here. Two stand-ins, both reached over real HTTP on 127.0.0.1 through the
official client and a real kubeconfig file:
- kmock's KubernetesEmulator: stateful (objects are stored and patched), but no
  resourceVersion, no conflicts, no JSON patch, and subresource patches land on the object;
- `RecordedAPI`: a small server that answers each request with a recorded-shape response
  (real status codes, real `Status` bodies, plain-text 404 for an unserved API) and keeps
  every request for field-by-field assertions.
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kmock
import pytest

from collectors.kubernetes import KubernetesPlatform
from strategies.spec import ReleaseSpec, parse_spec

FIXTURES = Path(__file__).parent / "fixtures"
NS = "shop"

DEPLOYMENTS = kmock.resource("apps", "v1", "deployments")
REPLICASETS = kmock.resource("apps", "v1", "replicasets")
PODS = kmock.resource("", "v1", "pods")
SERVICES = kmock.resource("", "v1", "services")
HTTPROUTES = kmock.resource("gateway.networking.k8s.io", "v1", "httproutes")
ROLLOUTS = kmock.resource("argoproj.io", "v1alpha1", "rollouts")


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def write_kubeconfig(path: Path, server: str, namespace: str = NS) -> Path:
    """A kubeconfig with two contexts; the test one is not current, so `context` must be honoured."""
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "elsewhere",
        "clusters": [{"name": "test", "cluster": {"server": server}},
                     {"name": "other", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "tester", "user": {"token": "test-token"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "tester", "namespace": namespace}},
                     {"name": "elsewhere", "context": {"cluster": "other", "user": "tester"}}],
    }))
    return path


def make_spec(kubeconfig: Path, lever: str, *, strategy: dict | None = None, replicas: int = 4,
              **options: Any) -> ReleaseSpec:
    """A spec as a user would write it, validated by the real spec loader."""
    return parse_spec({
        "release": {"service": "checkout", "baseline": "v1", "candidate": "v2"},
        "platform": {"kind": "kubernetes", "selector": "app=checkout", "version_label": "version",
                     "replicas": replicas, "kubeconfig": str(kubeconfig), "context": "test", "lever": lever,
                     **options},
        "metrics": {"source": "prometheus", "url": "http://127.0.0.1:9090", "timeout": "2s"},
        "strategy": strategy or {"kind": "canary", "steps": [25, 50, 100]},
    }, "test.toml")


# --------------------------------------------------------------------------- kmock


def seed(emulator: kmock.KubernetesEmulator, resource: kmock.resource, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    emulator.objects[resource, meta.get("namespace", NS), meta["name"]] = copy.deepcopy(obj)


def stored(emulator: kmock.KubernetesEmulator, resource: kmock.resource, name: str) -> dict[str, Any]:
    return copy.deepcopy(emulator.objects[resource, NS, name].raw)


def writes(emulator: kmock.KubernetesEmulator) -> list[tuple[str, str, str, Any]]:
    """Every write the adapter sent: (method, path, content type, body)."""
    return [(r.method.value, r.url.path, r.headers.get("Content-Type", ""), r.data)
            for r in list(emulator) if r.method.value in ("PATCH", "PUT", "POST", "DELETE")]


@contextlib.asynccontextmanager
async def kmock_cluster(tmp_path: Path) -> AsyncIterator[tuple[kmock.KubernetesEmulator, Path]]:
    async with kmock.KubernetesEmulator() as emulator, kmock.Server(emulator) as server:
        for res in (DEPLOYMENTS, REPLICASETS, PODS, SERVICES):
            emulator.resources[res] = {}
        yield emulator, write_kubeconfig(tmp_path / "kubeconfig", str(server.url).rstrip("/"))


def seed_release(emulator: kmock.KubernetesEmulator) -> None:
    seed(emulator, DEPLOYMENTS, fixture("deployment-v1"))
    seed(emulator, DEPLOYMENTS, fixture("deployment-v2"))
    for pod in fixture("pods")["items"]:
        seed(emulator, PODS, {"apiVersion": "v1", "kind": "Pod", **pod})


# --------------------------------------------------------------------------- recorded API


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str
    body: Any


@dataclass
class RecordedAPI:
    """Answers (METHOD, path) with queued recorded responses; the last one repeats."""

    routes: dict[tuple[str, str], list[tuple[int, Any]]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    delay: float = 0.0  # seconds to wait before answering (a slow API server)
    released: threading.Event = field(default_factory=threading.Event)

    def on(self, method: str, path: str, *responses: tuple[int, Any]) -> None:
        self.routes[(method, path)] = list(responses)

    def answer(self, method: str, path: str) -> tuple[int, Any]:
        queue = self.routes.get((method, path))
        if not queue:
            return 404, "404 page not found\n"
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def calls(self, method: str | None = None) -> list[Seen]:
        return [s for s in self.seen if method is None or s.method == method]


@pytest.fixture
def recorded() -> Iterator[RecordedAPI]:
    api = RecordedAPI()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            api.seen.append(Seen(self.command, parts.path, parse_qs(parts.query),
                                 self.headers.get("Content-Type", ""), json.loads(raw) if raw else None))
            if api.delay:
                api.released.wait(api.delay)
            code, body = api.answer(self.command, parts.path)
            if isinstance(body, str):  # the API server's plain-text answer for paths it does not serve
                data, kind = body.encode(), "text/plain; charset=utf-8"
            else:
                data, kind = json.dumps(body).encode(), "application/json"
            try:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                # the client gave up first (a timeout test delays answers on purpose): nobody is
                # left to answer, which is what such a test wants, not a traceback in its log
                self.close_connection = True

        do_GET = do_PATCH = do_PUT = do_POST = do_DELETE = _serve

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield api
    finally:
        api.released.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def platform_for(spec: ReleaseSpec) -> KubernetesPlatform:
    return KubernetesPlatform(spec)
