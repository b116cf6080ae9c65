"""The driver's state server: read-only HTTP that followers, browsers and Prometheus read.

Read-only by construction: the application has GET routes only, and nothing it holds can reach
the engine, the journal or a lever; it is a listener that keeps the last published State and
fans each change out. Routes:

- `GET /state`   the current State as JSON (strategies.state_json, schema-versioned)
- `GET /events`  Server-Sent Events: `hello` (who drives), `state` (the full State, at connect),
                 then `delta` on every change (the State with only the history samples and
                 events that are new since the previous one: a full State carries minutes of
                 history and is ~100× larger), `event` (each event as the JSON line headless
                 prints), `end` ({"code": N}, the driver's exit code) when the driver stops
- `GET /metrics` Prometheus exposition (tui.serve.exposition)
- `GET /healthz` "ok"

Loopback and a free port by default. A non-loopback address needs a token (checked by the CLI
before anything starts); with a token every route asks for `Authorization: Bearer TOKEN` (or
`?token=TOKEN` for clients that cannot set headers) and answers 401 with no data otherwise.

A State is encoded once per change however many followers there are (a delta, small); a follower that cannot
keep up (its queue full) is dropped and reconnects to a fresh State, so a slow screen never
slows the driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

from aiohttp import web

from collectors.lease import Holder
from strategies.model import Event, Snapshot, State, frozen_map
from strategies.state_json import SCHEMA, state_to_json
from tui.serve.exposition import ReleaseMetrics

log = logging.getLogger("releasedeck.serve")

QUEUE_LIMIT = 64  # messages a follower may lag behind before it is dropped
KEEPALIVE = 15.0


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_address(text: str) -> tuple[str, int]:
    """HOST:PORT, :PORT or PORT (loopback); PORT 0 picks a free port. ValueError says why not."""
    value = text.strip()
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", value
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--serve {text!r}: expected HOST:PORT (port 0-65535)")
    return host, int(port)


def delta(previous: State | None, state: State) -> State:
    """`state` with only what is new since `previous`: history samples later than its newest,
    events after its last (the driver hands the same Event objects on, so identity finds it)."""
    if previous is None:
        return state
    history = {}
    for version, series in state.history.items():
        old = previous.history.get(version, ())
        newest = old[-1].at if old else float("-inf")
        history[version] = tuple(s for s in series if s.at > newest)
    events = state.events
    if previous.events:
        last = previous.events[-1]
        for index in range(len(events) - 1, -1, -1):
            if events[index] is last:
                events = events[index + 1:]
                break
    return replace(state, history=frozen_map(history), events=events)


def sse(kind: str, data: str) -> bytes:
    return f"event: {kind}\ndata: {data}\n\n".encode()


class StateServer:
    """Listener of one Driver; serves its published State while it runs."""

    def __init__(self, release: str, *, token: str | None = None,
                 clock: Callable[[], float] | None = None):
        self.release = release
        self.token = token or None
        self.holder: Holder | None = None
        self.metrics = ReleaseMetrics(release, followers=lambda: len(self._queues),
                                      **({"clock": clock} if clock else {}))
        self.state: State | None = None
        self._state_json = ""
        self._state_for: State | None = None
        self._queues: set[asyncio.Queue[bytes | None]] = set()
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.served_states = 0  # full States encoded (at most once per change, for new followers)
        self.served_deltas = 0  # deltas encoded (once per change while anyone follows)
        self.history_seconds = 300.0

    # ------------------------------------------------------------------ listener

    def on_state(self, state: State) -> None:
        previous, self.state = self.state, state
        self.metrics.on_state(state)
        if self._queues:
            self._broadcast(sse("delta", state_to_json(delta(previous, state))))
            self.served_deltas += 1

    def on_event(self, event: Event) -> None:
        self.metrics.on_event(event)
        if self._queues:
            self._broadcast(sse("event", event.to_json()))

    def on_snapshot(self, snapshot: Snapshot, raw: object = ()) -> None:
        self.metrics.on_snapshot(snapshot, raw)

    def on_tick(self, seconds: float) -> None:
        self.metrics.on_tick(seconds)

    def _encoded(self) -> str:
        state = self.state
        if state is not None and state is not self._state_for:
            self._state_json = state_to_json(state)
            self._state_for = state
            self.served_states += 1
        return self._state_json

    def _broadcast(self, message: bytes | None) -> None:
        for queue in list(self._queues):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:  # too slow: drop it; it reconnects to a fresh State
                self._queues.discard(queue)
                with contextlib.suppress(asyncio.QueueFull):
                    queue.get_nowait()
                    queue.put_nowait(None)

    @property
    def followers(self) -> int:
        return len(self._queues)

    # ------------------------------------------------------------------ HTTP

    def _hello(self) -> str:
        return json.dumps({"schema": SCHEMA, "release": self.release,
                           "holder": asdict(self.holder) if self.holder else None,
                           "history_seconds": self.history_seconds},
                          separators=(",", ":"))

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.token is not None:
            given = request.headers.get("Authorization", "")
            given = given[7:] if given.startswith("Bearer ") else request.query.get("token", "")
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return web.Response(status=401, text="unauthorized\n",
                                    headers={"WWW-Authenticate": 'Bearer realm="releasedeck"'})
        return await handler(request)

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/", self._index)
        app.router.add_get("/state", self._get_state)
        app.router.add_get("/events", self._events)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._health)
        return app

    async def _index(self, request: web.Request) -> web.Response:
        return web.json_response({"release": self.release, "routes": ["/state", "/events", "/metrics",
                                                                       "/healthz"]})

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _get_state(self, request: web.Request) -> web.Response:
        if self.state is None:
            return web.json_response({"error": "no state published yet"}, status=503)
        return web.Response(text=self._encoded(), content_type="application/json")

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.exposition(),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        await response.prepare(request)
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=QUEUE_LIMIT)
        await response.write(sse("hello", self._hello()))
        if self.state is not None:
            await response.write(sse("state", self._encoded()))
        self._queues.add(queue)
        try:
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), timeout=KEEPALIVE)
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                if message is None:
                    break
                await response.write(message)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._queues.discard(queue)
        return response

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen; returns the URL followers use."""
        self._runner = web.AppRunner(self.application(), access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        sockets = site._server.sockets if site._server is not None else ()  # type: ignore[union-attr]
        bound_port = sockets[0].getsockname()[1] if sockets else port
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{bound_port}"
        return self.url

    async def close(self, code: int | None = None) -> None:
        """Tell followers how it ended (`end`), then stop listening."""
        if code is not None:
            self._broadcast(sse("end", json.dumps({"code": code})))
        self._broadcast(None)
        await asyncio.sleep(0)  # let the streams write what they have
        if self._runner is not None:
            runner, self._runner = self._runner, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(runner.cleanup(), timeout=5.0)
