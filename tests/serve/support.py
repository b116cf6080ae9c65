"""A real Driver and its real StateServer ticking in their own event-loop thread, so that blocking
test code (a Prometheus fixture, subprocess followers, plain HTTP) can talk to it meanwhile.

The engine, driver and server are the real ones; the platform, router and metric source are the
in-memory doubles (tests/doubles.py), whose ScriptedSource counts every metric query it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from strategies.engine import Engine
from strategies.journal import MemoryJournal
from strategies.model import Command, State
from strategies.spec import ReleaseSpec, parse_spec
from tests.doubles import MemoryPlatform, MemoryRouter, ScriptedSource
from tui.driver import Driver
from tui.serve.server import StateServer


def quick_spec(*, interval: str = "200ms", hold: str = "1s", steps: tuple[int, ...] = (20, 50, 100)) -> ReleaseSpec:
    return parse_spec({
        "release": {"service": "checkout", "baseline": "v1", "candidate": "v2"},
        "platform": {"kind": "local", "replicas": 1},
        "metrics": {"interval": interval, "window": "2s", "stale_after": "3s"},
        "strategy": {"kind": "canary", "steps": list(steps), "hold": hold, "scale_down_delay": "0s"},
        "gate": [{"name": "errors", "metric": "error_rate", "max": 0.05, "severity": "critical",
                  "min_requests": 10}],
    }, "quick.toml")


class ServedDriver:
    """Driver + StateServer in a thread; `ticking` False means ticks only on `tick()`."""

    def __init__(self, spec: ReleaseSpec | None = None, *, token: str | None = None,
                 ticking: bool = True, listeners: tuple[Any, ...] = ()):
        self.spec = spec or quick_spec()
        self.source = ScriptedSource()
        self.router = MemoryRouter()
        self.driver = Driver(self.spec, Engine(self.spec, journal=MemoryJournal()), MemoryPlatform(),
                             self.router, self.source)
        self.server = StateServer(self.spec.release.service, token=token)
        self.driver.add_listener(self.server)
        for listener in listeners:
            self.driver.add_listener(listener)
        self.ticking = ticking
        self.loop = asyncio.new_event_loop()
        self.url = ""
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._ready = threading.Event()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        self.url = await self.server.start("127.0.0.1", 0)
        self.server.on_state(self.driver.state)
        self._ready.set()
        interval = self.spec.metrics.interval
        while not self._stop.is_set():
            if self.ticking:
                await self.driver.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=interval)
        await self.server.close(0)

    def __enter__(self) -> ServedDriver:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("state server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` (a coroutine function) in the driver's loop; wait for its result."""
        future: Future[Any] = asyncio.run_coroutine_threadsafe(fn(), self.loop)
        return future.result(timeout=30)

    def start_ticking(self) -> None:
        self.ticking = True

    def tick(self) -> State:
        return self.call(self.driver.tick)

    def command(self, command: Command) -> Any:
        return self.call(lambda: self.driver.command(command))
