"""A misbehaving stand-in for Prometheus' HTTP API: slow, or answering garbage.

Real HTTP on 127.0.0.1, so the source's client, timeouts and parsing are all exercised. A slow
answer waits on an event that `stop()` sets, so teardown never waits for the sleep to end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class FakePrometheus:
    def __init__(self, body: bytes = b"", status: int = 200, delay: float = 0.0,
                 content_type: str = "application/json", answer: Callable[[str], bytes] | None = None):
        self.body = body
        self.answer = answer  # query -> body, when answers must differ by query
        self.status = status
        self.delay = delay
        self.queries: list[str] = []
        self._release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.queries.append(self.path)
                if fake.delay:
                    fake._release.wait(fake.delay)
                query = parse_qs(urlparse(self.path).query).get("query", [""])[0]
                body = fake.answer(query) if fake.answer else fake.body
                try:
                    self.send_response(fake.status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up first: that is the point of a slow server

            def log_message(self, *args: object) -> None:
                pass

        # A backlog for every concurrent query of a collection: with the default of 5, a busy
        # machine drops SYNs and a "slow" server reads as "cannot connect".
        server_class = type("Server", (ThreadingHTTPServer,), {"request_queue_size": 64})
        self.server = server_class(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> FakePrometheus:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
