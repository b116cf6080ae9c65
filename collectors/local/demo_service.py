"""A small real HTTP service to release: one process per instance, Prometheus metrics built in.

    python -m collectors.local.demo_service --service checkout --version v1 --port 8101 \
        [--latency-ms 20 --error-ratio 0.0 --ready-delay-ms 0]

Any GET path does "work" (sleeps the base latency plus a little jitter, fails with 500 at the
error ratio) and is counted in `http_requests_total{service,version,code}` and
`http_request_duration_seconds{service,version}`. GET /metrics, GET /healthz (200 once ready)
and GET/POST /control (JSON {"latency_ms": .., "error_ratio": ..}, fault injection at run time)
are not counted. It binds 127.0.0.1 only and dies with its parent.

Business metrics for A/B experiments: every answered request is a checkout visit
(`checkout_visits_total{service,version}`) and turns into an order
(`checkout_orders_total{service,version}`) with probability `conversion`.

With `--flag KEY --flag-file PATH --flag-variants off,on` it is one deployment holding two code
paths: each request evaluates the flag through the OpenFeature SDK with the flagd provider in
file mode (targetingKey = the `X-User-Id` header, `net.USER_HEADER`), runs the new path for the candidate
variant, and labels its metrics `variant="off"|"on"` as well. The new path has its own behaviour
(GET/POST /control/flagged), so a fault can hit it alone.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from collectors.local.lifeline import die_with_parent
from collectors.local.net import USER_HEADER

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0)
"""Latency buckets in seconds: fine where healthy services live, coarse up to 5 s."""

JITTER = 0.25
"""Each request sleeps base × uniform(1 − JITTER/2, 1 + JITTER), so p99 sits above p50."""


@dataclass
class Behaviour:
    """What the service does per request; changed live through /control."""

    latency_ms: float = 20.0
    error_ratio: float = 0.0
    conversion: float = 0.1  # share of successful visits that become an order

    def to_dict(self) -> dict[str, float]:
        return {"latency_ms": self.latency_ms, "error_ratio": self.error_ratio,
                "conversion": self.conversion}

    def update(self, data: Mapping[str, Any]) -> None:
        """Apply a /control body; raises ValueError naming the bad field."""
        unknown = set(data) - {"latency_ms", "error_ratio", "conversion"}
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
        latency, ratio, conversion = self.latency_ms, self.error_ratio, self.conversion
        if "latency_ms" in data:
            latency = _number(data["latency_ms"], "latency_ms")
            if not 0 <= latency <= 60_000:
                raise ValueError("latency_ms must be between 0 and 60000")
        if "error_ratio" in data:
            ratio = _number(data["error_ratio"], "error_ratio")
            if not 0 <= ratio <= 1:
                raise ValueError("error_ratio must be between 0 and 1")
        if "conversion" in data:
            conversion = _number(data["conversion"], "conversion")
            if not 0 <= conversion <= 1:
                raise ValueError("conversion must be between 0 and 1")
        self.latency_ms, self.error_ratio, self.conversion = latency, ratio, conversion


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


disable_created_metrics()  # *_created series only confuse simple scrapers


class FlagGate:
    """Which code path a request takes: the flag evaluated through OpenFeature (flagd, file mode).

    The provider re-reads the file when it changes, so the share releasedeck sets reaches every
    instance within the provider's poll interval, with no server in between.
    """

    def __init__(self, flag: str, path: str, baseline: str, candidate: str, poll_ms: int = 200):
        from openfeature import api
        from openfeature.contrib.provider.flagd import FlagdProvider
        from openfeature.contrib.provider.flagd.config import ResolverType

        self.flag = flag
        self.baseline = baseline
        self.candidate = candidate
        api.set_provider_and_wait(FlagdProvider(resolver_type=ResolverType.FILE,
                                                offline_flag_source_path=path,
                                                deadline_ms=poll_ms))
        self.client = api.get_client("releasedeck-demo")

    def variant(self, user: str) -> tuple[str, bool]:
        """(variant name for the metrics, whether the new path runs) for one user."""
        from openfeature.evaluation_context import EvaluationContext

        details = self.client.get_boolean_details(self.flag, False, EvaluationContext(targeting_key=user))
        on = bool(details.value)
        return details.variant or (self.candidate if on else self.baseline), on


class DemoService:
    """State shared by the handler threads: identity, behaviour, metrics, readiness."""

    def __init__(self, service: str, version: str, behaviour: Behaviour, ready_at: float,
                 gate: FlagGate | None = None):
        self.service = service
        self.version = version
        self.behaviour = behaviour
        self.flagged = Behaviour(**behaviour.to_dict())  # the new code path (flag mode)
        self.gate = gate
        self.ready_at = ready_at
        self.lock = threading.Lock()
        self.registry = CollectorRegistry()
        labels = ["service", "version"] + (["variant"] if gate else [])
        self.requests = Counter("http_requests_total", "HTTP requests handled, by status code.",
                                [*labels, "code"], registry=self.registry)
        self.duration = Histogram("http_request_duration_seconds", "Time to handle one request.",
                                  labels, buckets=BUCKETS, registry=self.registry)
        # Both outcomes exist from the start at 0: Prometheus cannot rate a series' first
        # sample, so an error series born with the first failure would hide that failure.
        for variant in (gate.baseline, gate.candidate) if gate else (None,):
            for code in ("200", "500"):
                self.requests.labels(*self._labels(variant), code)
            self.duration.labels(*self._labels(variant))
        self.visits = Counter("checkout_visits_total", "Checkout visits (answered requests).",
                              ["service", "version"], registry=self.registry)
        self.orders = Counter("checkout_orders_total", "Visits that became an order.",
                              ["service", "version"], registry=self.registry)
        self.visits.labels(self.service, self.version)
        self.orders.labels(self.service, self.version)
        self.rng = random.Random()

    def _labels(self, variant: str | None) -> tuple[str, ...]:
        return (self.service, self.version) if variant is None else (self.service, self.version, variant)

    @property
    def ready(self) -> bool:
        return time.monotonic() >= self.ready_at

    def work(self, user: str = "") -> int:
        """Do one request's work; returns the status code and records the metrics."""
        start = time.perf_counter()
        variant, new_path = self.gate.variant(user) if self.gate else (None, False)
        with self.lock:
            behaviour = self.flagged if new_path else self.behaviour
            latency = behaviour.latency_ms / 1000.0
            ratio = behaviour.error_ratio
            factor = self.rng.uniform(1 - JITTER / 2, 1 + JITTER)
            fail = self.rng.random() < ratio
            order = not fail and self.rng.random() < behaviour.conversion
        if latency > 0:
            time.sleep(latency * factor)
        code = 500 if fail else 200
        self.requests.labels(*self._labels(variant), str(code)).inc()
        self.duration.labels(*self._labels(variant)).observe(time.perf_counter() - start)
        if not fail:
            self.visits.labels(self.service, self.version).inc()
            if order:
                self.orders.labels(self.service, self.version).inc()
        return code


CONTROL = ("/control", "/control/flagged")
"""Behaviour endpoints: the whole service's (the default path) and the new, flagged path's."""


class Handler(BaseHTTPRequestHandler):
    """Routes the few paths; HTTP/1.1 keep-alive so a proxy can reuse connections."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stall
    server_version = "releasedeck-demo/1"
    demo: DemoService  # set on the subclass built in `serve`

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would drown the parent's log

    def _send(self, code: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Releasedeck-Version", self.demo.version)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code: int, data: Mapping[str, Any]) -> None:
        self._send(code, json.dumps(data).encode())

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        demo = self.demo
        if path == "/metrics":
            self._send(200, generate_latest(demo.registry), CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            if demo.ready:
                self._json(200, {"status": "ok", "version": demo.version})
            else:
                self._json(503, {"status": "starting", "version": demo.version})
        elif path in CONTROL:
            with demo.lock:
                self._json(200, self._behaviour(path).to_dict())
        else:
            code = demo.work(self.headers.get(USER_HEADER, ""))
            self._json(code, {"service": demo.service, "version": demo.version,
                              "ok": code < 500, "pid": os.getpid()})

    do_HEAD = do_GET

    def _behaviour(self, path: str) -> Behaviour:
        return self.demo.flagged if path == "/control/flagged" else self.demo.behaviour

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path not in CONTROL:
            self._json(404, {"error": "POST only on /control or /control/flagged"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            data = json.loads(raw or b"{}")
            if not isinstance(data, dict):
                raise ValueError("body must be a JSON object")
            with self.demo.lock:
                behaviour = self._behaviour(path)
                behaviour.update(data)
                now = behaviour.to_dict()
        except ValueError as exc:  # JSONDecodeError is a ValueError
            self._json(400, {"error": str(exc)})
            return
        self._json(200, now)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def serve(service: str, version: str, port: int, behaviour: Behaviour, ready_delay: float = 0.0,
          host: str = "127.0.0.1", gate: FlagGate | None = None) -> Server:
    """Bind and return the server (not yet serving); port 0 picks a free one."""
    demo = DemoService(service, version, behaviour, time.monotonic() + ready_delay, gate)
    handler = type("DemoHandler", (Handler,), {"demo": demo})
    return Server((host, port), handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m collectors.local.demo_service",
                                     description="A small HTTP service with Prometheus metrics.")
    parser.add_argument("--service", default="checkout")
    parser.add_argument("--version", required=True, help="version label, e.g. v1")
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--error-ratio", type=float, default=0.0)
    parser.add_argument("--conversion", type=float, default=0.1,
                        help="share of visits that become an order (checkout_orders_total)")
    parser.add_argument("--ready-delay-ms", type=float, default=0.0,
                        help="answer /healthz 503 for this long after start (a slow boot)")
    parser.add_argument("--flag", default="", help="feature flag deciding the code path per request")
    parser.add_argument("--flag-file", default="", help="flagd flag-definition file holding --flag")
    parser.add_argument("--flag-variants", default="off,on",
                        help="BASELINE,CANDIDATE variant names (the candidate runs the new path)")
    args = parser.parse_args(argv)
    variants = args.flag_variants.split(",")
    if args.flag and (not args.flag_file or len(variants) != 2 or not all(variants)):
        parser.error("--flag needs --flag-file and --flag-variants BASELINE,CANDIDATE")
    behaviour = Behaviour()
    try:
        behaviour.update({"latency_ms": args.latency_ms, "error_ratio": args.error_ratio,
                          "conversion": args.conversion})
    except ValueError as exc:
        parser.error(str(exc))
    die_with_parent()
    gate = FlagGate(args.flag, args.flag_file, variants[0], variants[1]) if args.flag else None
    try:
        server = serve(args.service, args.version, args.port, behaviour, args.ready_delay_ms / 1000,
                       gate=gate)
    except OSError as exc:
        print(f"demo_service: cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
