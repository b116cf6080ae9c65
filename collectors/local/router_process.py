"""The built-in local router: a real HTTP reverse proxy process splitting traffic by weight.

    python -m collectors.local.router_process --port 0 [--weights '{"v1": 100}']
        [--backends '{"v1": ["127.0.0.1:8101"]}']

Prints `listening on 127.0.0.1:PORT` once it accepts connections, then proxies every request
to one version, round-robin over that version's backends. The version is, in this order:
pinned by the `X-Releasedeck-Version` request header; the version of the first cohort rule the
request is in (`X-User-Group: staff`, see `strategies.cohorts`); the sticky bucket of the
request's user key (same user, same version, while the share grows); else smooth weighted round
robin. Versions without backends are skipped, so `effective` weights (GET /-/weights) say what
is really routed. A mirror copies a share of the requests served by other versions to the
mirror version and throws its answers away: clients are only ever answered by the version
chosen above (dark launch).

Admin API (JSON): GET/PUT /-/weights {"v1": 90, "v2": 10}; GET/PUT /-/backends
{"v1": ["127.0.0.1:8101"]}; GET/PUT /-/route {"cohorts": [...], "sticky": {"header":
"X-User-Id"}, "salt": "...", "mirror": {"version": "v2", "percent": 10}}; GET /-/metrics
(Prometheus); GET /-/healthz. A change applies to the next request; in-flight requests finish
where they started. It binds 127.0.0.1 only and dies with its parent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import signal
import sys
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)

from collectors.local.lifeline import die_with_parent
from collectors.local.net import COHORT_HEADER, MIRROR_HEADER, PIN_HEADER, ROUTED_HEADER
from collectors.local.weighted import SmoothWeighted, percents
from strategies.cohorts import CohortError, MirrorPicker, Route, bucket, first_match, sticky_version

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "host", "content-length",
})
MAX_BODY = 8 * 1024 * 1024
MAX_MIRRORS_IN_FLIGHT = 128
"""Shadow copies in flight at most; beyond it a copy is dropped (and counted), never queued."""
EVERYONE = "everyone"
disable_created_metrics()


def parse_weights(data: Any) -> dict[str, float]:
    """Validate a weights body; raises ValueError with a one-line reason."""
    if not isinstance(data, dict):
        raise ValueError('weights must be a JSON object like {"v1": 90, "v2": 10}')
    out: dict[str, float] = {}
    for version, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"weight of {version!r} must be a non-negative number, got {value!r}")
        out[str(version)] = float(value)
    return out


def parse_backends(data: Any) -> dict[str, list[str]]:
    """Validate a backends body ({"v1": ["127.0.0.1:8101", ...]}); raises ValueError."""
    if not isinstance(data, dict):
        raise ValueError('backends must be a JSON object like {"v1": ["127.0.0.1:8101"]}')
    out: dict[str, list[str]] = {}
    for version, addresses in data.items():
        if not isinstance(addresses, list):
            raise ValueError(f"backends of {version!r} must be a list of host:port")
        for address in addresses:
            host, _, port = str(address).rpartition(":")
            if not isinstance(address, str) or not host or not port.isdigit():
                raise ValueError(f"backend {address!r} of {version!r} is not host:port")
        out[str(version)] = list(addresses)
    return out


class Router:
    """The routing table and the proxy handlers; all state lives on one event loop."""

    def __init__(self, weights: Mapping[str, float], backends: Mapping[str, list[str]]):
        self.weights: dict[str, float] = dict(weights)
        self.backends: dict[str, list[str]] = {k: list(v) for k, v in backends.items()}
        self.picker = SmoothWeighted()
        self.turn: dict[str, int] = {}
        self.session: aiohttp.ClientSession | None = None
        self.registry = CollectorRegistry()
        self.route = Route()
        self.mirror_picker = MirrorPicker()
        self.mirrors: set[asyncio.Task[None]] = set()
        self.requests = Counter("releasedeck_router_requests_total",
                                "Requests proxied, by version routed to, status code and cohort.",
                                ["version", "code", "cohort"], registry=self.registry)
        self.mirrored = Counter("releasedeck_router_mirrored_total",
                                "Shadow copies sent to the mirror version (answers discarded), "
                                "by version and status code ('dropped': too many in flight).",
                                ["version", "code"], registry=self.registry)
        self.failures = Counter("releasedeck_router_upstream_errors_total",
                                "Attempts that could not reach a backend, by version.",
                                ["version"], registry=self.registry)
        self.weight_gauge = Gauge("releasedeck_router_weight_percent",
                                  "Traffic percent each version receives now (effective).",
                                  ["version"], registry=self.registry)
        self.backend_gauge = Gauge("releasedeck_router_backends", "Backends per version.",
                                   ["version"], registry=self.registry)
        self._rebuild()

    # ------------------------------------------------------------ routing table

    def effective(self) -> dict[str, float]:
        """Percent of traffic each version gets: weights of versions that have backends."""
        live = {v: w for v, w in self.weights.items() if self.backends.get(v)}
        shares = percents(live)
        return {v: shares.get(v, 0.0) for v in sorted(set(self.weights) | set(self.backends))}

    def _rebuild(self) -> None:
        live = {v: w for v, w in self.weights.items() if self.backends.get(v)}
        self.picker.set(live)
        self.weight_gauge.clear()  # forget versions no longer known
        self.backend_gauge.clear()
        for version, share in self.effective().items():
            self.weight_gauge.labels(version).set(share)
            self.backend_gauge.labels(version).set(len(self.backends.get(version, [])))

    def choose(self, pinned: str | None, headers: Mapping[str, str] | None = None,
               cookies: Mapping[str, str] | None = None) -> tuple[str | None, str]:
        """(version, cohort) for one request; cohort is the rule's name, 'pinned' or 'everyone'."""
        if pinned:
            return (pinned if self.backends.get(pinned) else None), "pinned"
        headers, cookies = headers or {}, cookies or {}
        rule = first_match(self.route.cohorts, headers, cookies)
        if rule is not None and self.backends.get(rule.version):
            return rule.version, rule.name
        if self.route.sticky is not None:
            key = self.route.sticky.of(headers, cookies)
            if key:
                live = {v: w for v, w in self.weights.items() if self.backends.get(v)}
                return sticky_version(bucket(key, self.route.salt), live), EVERYONE
        return self.picker.pick(), EVERYONE

    def backends_in_turn(self, version: str) -> list[str]:
        """This version's backends, starting at the next in round robin (the rest are fallbacks)."""
        group = self.backends.get(version, [])
        if not group:
            return []
        turn = self.turn.get(version, 0) % len(group)
        self.turn[version] = turn + 1
        return group[turn:] + group[:turn]

    # ------------------------------------------------------------ handlers

    async def proxy(self, request: web.Request) -> web.StreamResponse:
        pinned = request.headers.get(PIN_HEADER, "").strip() or None
        version, cohort = self.choose(pinned, request.headers, request.cookies)
        if version is None:
            why = f"no backend for pinned version {pinned!r}" if pinned else "no version has weight and backends"
            self.requests.labels("none", "503", cohort).inc()
            return web.json_response({"error": why}, status=503)
        body = await request.read() if request.can_read_body else None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        peer = request.remote or ""
        headers["X-Forwarded-For"] = ", ".join(x for x in (request.headers.get("X-Forwarded-For"), peer) if x)
        self._maybe_mirror(version, request.method, str(request.rel_url), headers, body)
        idempotent = request.method in ("GET", "HEAD", "OPTIONS")
        last_error = ""
        assert self.session is not None
        for backend in self.backends_in_turn(version):
            try:
                async with self.session.request(
                        request.method, f"http://{backend}{request.rel_url}", headers=headers,
                        data=body, allow_redirects=False) as upstream:
                    payload = await upstream.read()
                    out = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
                    out[ROUTED_HEADER] = version
                    out[COHORT_HEADER] = cohort
                    self.requests.labels(version, str(upstream.status), cohort).inc()
                    return web.Response(status=upstream.status, body=payload, headers=out)
            except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError) as exc:
                # not connected: safe to try the next backend; disconnected: only if idempotent
                self.failures.labels(version).inc()
                last_error = f"{backend}: {type(exc).__name__}"
                if isinstance(exc, aiohttp.ServerDisconnectedError) and not idempotent:
                    break
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.failures.labels(version).inc()
                last_error = f"{backend}: {type(exc).__name__}"
                break
        self.requests.labels(version, "502", cohort).inc()
        return web.json_response({"error": f"no backend of {version} answered ({last_error})"},
                                 status=502, headers={ROUTED_HEADER: version, COHORT_HEADER: cohort})

    # ------------------------------------------------------------ mirroring

    def _maybe_mirror(self, served_by: str, method: str, path: str, headers: dict[str, str],
                      body: bytes | None) -> None:
        """Send a shadow copy to the mirror version if this request is in the mirrored share."""
        mirror = self.route.mirror
        if mirror is None or mirror.version == served_by or not self.backends.get(mirror.version):
            return
        if not self.mirror_picker.pick():
            return
        if len(self.mirrors) >= MAX_MIRRORS_IN_FLIGHT:
            self.mirrored.labels(mirror.version, "dropped").inc()
            return
        task = asyncio.get_running_loop().create_task(
            self._shadow(mirror.version, method, path, {**headers, MIRROR_HEADER: "1"}, body))
        self.mirrors.add(task)
        task.add_done_callback(self.mirrors.discard)

    async def _shadow(self, version: str, method: str, path: str, headers: dict[str, str],
                      body: bytes | None) -> None:
        assert self.session is not None
        backends = self.backends_in_turn(version)
        if not backends:
            return
        try:
            async with self.session.request(method, f"http://{backends[0]}{path}", headers=headers,
                                            data=body, allow_redirects=False) as upstream:
                await upstream.read()  # read and drop: nobody ever sees a shadow answer
                self.mirrored.labels(version, str(upstream.status)).inc()
        except (aiohttp.ClientError, TimeoutError):
            self.mirrored.labels(version, "error").inc()

    async def get_weights(self, _: web.Request) -> web.Response:
        return web.json_response({"weights": self.weights, "effective": self.effective(),
                                  "backends": self.backends})

    async def put_weights(self, request: web.Request) -> web.Response:
        try:
            self.weights = parse_weights(await request.json())
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        self._rebuild()
        return await self.get_weights(request)

    async def get_route(self, _: web.Request) -> web.Response:
        return web.json_response(self.route.to_dict())

    async def put_route(self, request: web.Request) -> web.Response:
        try:
            route = Route.from_dict(await request.json())
        except (CohortError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        old = self.route.mirror
        self.route = route
        if route.mirror != old:
            self.mirror_picker.set(route.mirror.percent if route.mirror else 0.0)
        return await self.get_route(request)

    async def get_backends(self, _: web.Request) -> web.Response:
        return web.json_response(self.backends)

    async def put_backends(self, request: web.Request) -> web.Response:
        try:
            backends = parse_backends(await request.json())
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        changed = backends != self.backends
        self.backends = backends
        self.turn = {v: t for v, t in self.turn.items() if v in backends}
        if changed:
            self._rebuild()
        return await self.get_weights(request)

    async def metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_get("/-/weights", self.get_weights)
        app.router.add_put("/-/weights", self.put_weights)
        app.router.add_get("/-/backends", self.get_backends)
        app.router.add_put("/-/backends", self.put_backends)
        app.router.add_get("/-/route", self.get_route)
        app.router.add_put("/-/route", self.put_route)
        app.router.add_get("/-/metrics", self.metrics)
        app.router.add_get("/-/healthz", self.healthz)
        app.router.add_route("*", "/{tail:.*}", self.proxy)
        app.on_startup.append(self._open)
        app.on_cleanup.append(self._close)
        return app

    async def _open(self, _: web.Application) -> None:
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=15, use_dns_cache=False)
        self.session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, trust_env=False,
            timeout=aiohttp.ClientTimeout(total=30, sock_connect=2))

    async def _close(self, _: web.Application) -> None:
        for task in list(self.mirrors):
            task.cancel()
        if self.session is not None:
            await self.session.close()


async def run(router: Router, port: int, host: str = "127.0.0.1") -> None:
    runner = web.AppRunner(router.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=512, reuse_address=True)
    try:
        await site.start()
    except BaseException:
        # Clean up before the error is reported: an unclosed client session otherwise prints a
        # warning after it, and that warning became the last line of the log people were shown.
        await runner.cleanup()
        raise
    server = getattr(site, "_server", None)
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    print(f"listening on {host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def listen_error(exc: OSError) -> str:
    """One line for a port the proxy cannot listen on, with what to do about it."""
    if exc.errno == errno.EADDRINUSE:
        return ("address already in use (another process listens on that port: stop it or "
                "choose another [router] port)")
    return f"cannot listen: {exc.strerror or exc}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m collectors.local.router_process",
                                     description="Weighted HTTP reverse proxy between versions.")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument("--weights", default="{}", help='JSON, e.g. {"v1": 100, "v2": 0}')
    parser.add_argument("--backends", default="{}", help='JSON, e.g. {"v1": ["127.0.0.1:8101"]}')
    args = parser.parse_args(argv)
    try:
        router = Router(parse_weights(json.loads(args.weights)), parse_backends(json.loads(args.backends)))
    except ValueError as exc:
        parser.error(str(exc))
    die_with_parent()
    try:
        asyncio.run(run(router, args.port))
    except OSError as exc:
        print(f"router: {listen_error(exc)}", file=sys.stderr, flush=True)
        return 1
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
