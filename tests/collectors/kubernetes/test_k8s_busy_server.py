"""A busy API server (429 or 503 with Retry-After, as API Priority and Fairness answers) is said
as itself in one line: the client does not retry it silently, and the status is not lost in
urllib3's "too many 429 error responses". The next tick is the retry."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from collectors.kubernetes.api import Kube, connect
from collectors.kubernetes.errors import KubeError


class _Busy(http.server.BaseHTTPRequestHandler):
    status = 429
    seen: list[str] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        body = (b'{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"TooManyRequests",'
                b'"message":"too many requests, please try again later","code":%d}' % self.status)
        self.send_response(self.status)
        self.send_header("Retry-After", "1")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def busy_kubeconfig(tmp_path: Path) -> Iterator[Path]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Busy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    path = tmp_path / "kubeconfig"
    path.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "http://127.0.0.1:{server.server_port}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u, namespace: shop}}}}]
current-context: x
""")
    _Busy.seen = []
    try:
        yield path
    finally:
        server.shutdown()
        server.server_close()


def test_a_throttled_call_is_one_line_that_says_so_and_is_asked_once(busy_kubeconfig: Path) -> None:
    api, namespace, _ = connect({"kubeconfig": str(busy_kubeconfig)})
    kube = Kube(api, namespace, timeout=5.0)
    with pytest.raises(KubeError) as caught:
        asyncio.run(kube.list_deployments("app=checkout"))
    line = str(caught.value)
    assert "\n" not in line and "throttled by the API server" in line, line
    assert len(_Busy.seen) == 1  # no silent retry: the next tick is the retry
