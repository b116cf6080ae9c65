"""A real HTTP receiver on 127.0.0.1 that records every POST (ok / failing / slow), and a URL
where nothing listens: the webhook, Slack and alert tests of every surface share them.

Use from a conftest: `from tests.support.receiver import dead_url, receiver  # noqa: F401`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.ports import free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 that records every POST. Tests set status/slow."""

    url: str
    requests: list[Received] = field(default_factory=list)
    status: int = 200
    slow: threading.Event | None = None  # when set: each request waits until released (≤ 10 s)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[Any]:
        with self.lock:
            return [r.json() for r in self.requests]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.02)
        with self.lock:
            raise AssertionError(f"expected {count} requests, got {len(self.requests)}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            rec = state["r"]
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if rec.slow is not None:
                rec.slow.wait(10.0)
            with rec.lock:
                rec.requests.append(Received(self.path, dict(self.headers.items()), body))
            self.send_response(rec.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state["r"] = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield state["r"]
    finally:
        if state["r"].slow is not None:
            state["r"].slow.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def dead_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}/hook"
