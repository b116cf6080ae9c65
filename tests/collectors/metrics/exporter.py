"""A tiny deterministic exporter for metric-source tests: real HTTP, scripted traffic.

Request number i of an exporter fails when `i % error_every == 0` and takes
`latencies[i % len(latencies)]` seconds, so the true error ratio and latency distribution are
known exactly. A background thread "serves" requests at `rate` per second of wall clock (only
counters move; nothing sleeps per request). `restart()` replaces the registry: the counters
drop to zero exactly as when the process restarts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Exporter:
    """One fake instance of `service`/`version` on 127.0.0.1 with an ephemeral port."""

    def __init__(self, service: str, version: str, *, rate: float, error_every: int,
                 latencies: Sequence[float]):
        self.service = service
        self.version = version
        self.rate = rate
        self.error_every = error_every
        self.latencies = tuple(latencies)
        self.served = 0  # requests since the last (re)start
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._new_registry()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with exporter._lock:
                    body = generate_latest(exporter.registry)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_port}"
        self.metrics_url = f"http://{self.address}/metrics"
        self._threads = [threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True),
                         threading.Thread(target=self._traffic, daemon=True)]

    def _new_registry(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("http_requests_total", "Requests served", ["service", "version", "code"],
                                registry=self.registry)
        self.duration = Histogram("http_request_duration_seconds", "Request latency", ["service", "version"],
                                  buckets=BUCKETS, registry=self.registry)
        for code in ("200", "500"):  # both series exist from the start, as in most services
            self.requests.labels(self.service, self.version, code)
        self.duration.labels(self.service, self.version)
        self.served = 0
        self._started = time.monotonic()

    def _serve_one(self) -> None:
        i = self.served
        code = "500" if i % self.error_every == 0 else "200"
        self.requests.labels(self.service, self.version, code).inc()
        self.duration.labels(self.service, self.version).observe(self.latencies[i % len(self.latencies)])
        self.served += 1

    def _traffic(self) -> None:
        while not self._stop.wait(0.01):
            with self._lock:
                due = int((time.monotonic() - self._started) * self.rate) - self.served
                for _ in range(max(0, min(due, 10_000))):
                    self._serve_one()

    def start(self) -> Exporter:
        for thread in self._threads:
            thread.start()
        return self

    def restart(self) -> None:
        """Counters back to zero, as a restarted process would show them."""
        with self._lock:
            self._new_registry()

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
