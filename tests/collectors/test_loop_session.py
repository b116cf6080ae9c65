"""LoopSession, the tick's HTTP client, on a real HTTP/1.1 server: it keeps one connection
for many requests, does not follow redirects, decodes by the answer's charset, and works in a
second event loop. Counts only, never timings."""

from __future__ import annotations

import asyncio
import errno
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from collectors.loop_session import LoopSession
from tests.support.ports import LOOPBACK, PortTaken, free_port, retry_on_taken_port


class Server:
    """Answers GET /text (latin-1 body), /odd (a charset nobody knows), /moved (301), and
    counts the connections it accepted."""

    def __init__(self) -> None:
        self.connections = 0
        counter = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                counter.connections += 1

            def do_GET(self) -> None:
                if self.path == "/moved":
                    self._send(301, b"", "text/plain", [("Location", "/text")])
                elif self.path == "/odd":
                    self._send(200, "caf\u00e9".encode(), "text/plain; charset=no-such-charset")
                else:
                    self._send(200, "caf\u00e9".encode("latin-1"), "text/plain; charset=iso-8859-1")

            def _send(self, code: int, body: bytes, kind: str,
                      extra: list[tuple[str, str]] | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for name, value in extra or []:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        def bind() -> ThreadingHTTPServer:
            try:
                return ThreadingHTTPServer((LOOPBACK, free_port()), Handler)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise PortTaken(str(exc)) from exc
                raise

        self.server = retry_on_taken_port(bind)
        self.server.daemon_threads = True
        self.url = f"http://{LOOPBACK}:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    try:
        yield running
    finally:
        running.stop()


def test_many_requests_share_one_kept_connection(server: Server) -> None:
    session = LoopSession(5.0)

    async def run() -> list[int]:
        try:
            return [(await session.get(f"{server.url}/text")).status for _ in range(10)]
        finally:
            await session.close()

    assert asyncio.run(run()) == [200] * 10
    assert server.connections == 1


def test_redirect_is_an_answer_and_charset_decodes(server: Server) -> None:
    session = LoopSession(5.0)

    async def run() -> tuple[int, str, str]:
        try:
            moved = await session.get(f"{server.url}/moved")
            text = await session.get(f"{server.url}/text")
            odd = await session.get(f"{server.url}/odd")
            return moved.status, text.text, odd.text
        finally:
            await session.close()

    assert asyncio.run(run()) == (301, "caf\u00e9", "caf\u00e9")


def test_one_session_serves_a_second_event_loop(server: Server) -> None:
    """Adapters are built before any loop, and a caller may run two loops one after another
    (each closing what it used): the second loop gets a session of its own."""
    session = LoopSession(5.0)

    async def one() -> int:
        try:
            return (await session.get(f"{server.url}/text")).status
        finally:
            await session.close()

    assert asyncio.run(one()) == 200
    assert asyncio.run(one()) == 200
    assert server.connections == 2
