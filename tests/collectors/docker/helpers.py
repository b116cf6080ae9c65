"""Helpers for the Docker/HAProxy tests: polling with a deadline, a real HAProxy, tiny backends."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx

from strategies.model import Instance, PlatformSnapshot, VersionStatus
from tests.support.ports import PortTaken

T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float = 60.0, interval: float = 0.05,
               what: str = "condition") -> T:
    """Poll `check` until truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except (httpx.HTTPError, OSError):
            value = None  # type: ignore[assignment]
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


async def async_wait_until(check: Callable[[], Any], timeout: float = 60.0,
                           interval: float = 0.05, what: str = "condition") -> Any:
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(interval)


CONFIG = """\
global
    stats socket {sock} mode 600 level admin
    stats timeout 10s
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    retries 3
    option redispatch 1
frontend web
    bind 127.0.0.1:{port}
    default_backend {backend}
frontend stats
    bind 127.0.0.1:{stats_port}
    http-request use-service prometheus-exporter if {{ path /metrics }}
backend {backend}
    balance roundrobin
{servers}
"""


class HAProxy:
    """One haproxy process in the foreground (-db) with a config written to `workdir`."""

    def __init__(self, workdir: Path, port: int, stats_port: int, backend: str,
                 servers: dict[str, tuple[str, int, int]], *, check: bool = True):
        self.workdir = workdir
        self.port = port
        self.stats_port = stats_port
        self.backend = backend
        self.servers = servers  # name -> (host, port, weight)
        self.check = check
        self.socket = str(workdir / "admin.sock")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stats_url(self) -> str:
        return f"http://127.0.0.1:{self.stats_port}/metrics"

    def config(self) -> str:
        check = " check inter 200ms fall 1 rise 1" if self.check else ""
        lines = "\n".join(f"    server {name} {host}:{port} weight {weight}{check}"
                          for name, (host, port, weight) in self.servers.items())
        return CONFIG.format(sock=self.socket, port=self.port, stats_port=self.stats_port,
                             backend=self.backend, servers=lines)

    def start(self) -> None:
        """Start and wait until the exporter answers on the stats port (the exporter's own text,
        so a stats port shared with some other listener is caught here, not in a test's assert).
        Raises `PortTaken` when HAProxy could not bind a port: the fixture retries on new ones."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "haproxy.cfg"
        cfg.write_text(self.config())
        log_path = self.workdir / "haproxy.log"
        log = open(log_path, "wb")  # noqa: SIM115 - the process owns it
        self.proc = subprocess.Popen(["haproxy", "-f", str(cfg), "-db"], stdout=log,
                                     stderr=subprocess.STDOUT)
        log.close()
        proc = self.proc

        def up() -> bool:
            if proc.poll() is not None:
                text = log_path.read_text(errors="replace")
                if "cannot bind" in text or "Address already in use" in text:
                    raise PortTaken(f"haproxy could not bind {self.port}/{self.stats_port}")
                raise AssertionError(f"haproxy exited {proc.returncode}: {text.strip()[-300:]}")
            if not Path(self.socket).exists():
                return False
            answer = httpx.get(self.stats_url, timeout=2.0)
            return answer.status_code == 200 and "haproxy_process_" in answer.text

        try:
            wait_until(up, timeout=30, what="haproxy's exporter on its stats port")
        except PortTaken:
            raise
        except AssertionError:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


class _Answer(BaseHTTPRequestHandler):
    version_name = "v?"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        code = 500 if self.path.startswith("/fail") else 200
        body = self.version_name.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def version_servers(names: list[str]) -> Iterator[dict[str, int]]:
    """In-process HTTP servers on 127.0.0.1 answering their version name (500 on /fail)."""
    servers = []
    try:
        for name in names:
            handler = type(f"Answer_{name}", (_Answer,), {"version_name": name})
            server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                             daemon=True).start()
            servers.append(server)
        yield {name: s.server_address[1] for name, s in zip(names, servers, strict=True)}
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


class Load:
    """Background traffic through a URL from a few threads, bounded in time; counts answers by
    code and by the version that served them. Several clients keep a steady rate even when one
    request is slow (a container starting, a retry through HAProxy)."""

    def __init__(self, url: str, *, workers: int = 8, pause: float = 0.004, limit: float = 60.0):
        self.url = url
        self.pause = pause
        self.limit = limit
        self._lock = threading.Lock()
        self.versions: dict[str, int] = {}  # by the X-Releasedeck-Version header
        self.codes: dict[int, int] = {}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(workers)]

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit
        with httpx.Client(timeout=2.0) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    answer = client.get(self.url)
                    code, version = answer.status_code, answer.headers.get(
                        "x-releasedeck-version", "?")
                except httpx.HTTPError:
                    code, version = 0, "?"
                with self._lock:
                    self.codes[code] = self.codes.get(code, 0) + 1
                    self.versions[version] = self.versions.get(version, 0) + 1
                self._stop.wait(self.pause)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)


class ServersPlatform:
    """Servers already running (the `version_servers`, demo services) as a platform reports
    them, one ready instance per address, for tests of a router through the Driver; scaling is
    not their business, so it is accepted and forgotten."""

    kind = "servers"

    def __init__(self, addresses: dict[str, list[str]]):
        self.addresses = addresses

    @classmethod
    def on_ports(cls, ports: dict[str, int]) -> ServersPlatform:
        return cls({v: [f"127.0.0.1:{port}"] for v, port in ports.items()})

    async def snapshot(self, versions: object, now: float) -> PlatformSnapshot:
        return PlatformSnapshot(at=now, versions={
            v: VersionStatus(v, tuple(Instance(f"{v}-{i}", v, True, address)
                                      for i, address in enumerate(addresses)))
            for v, addresses in self.addresses.items()})

    async def scale(self, version: str, replicas: int) -> None:
        return None

    async def close(self) -> None:
        return None
