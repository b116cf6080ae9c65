"""A bounded load generator: steady GETs at a fixed rate for a fixed time, then it stops.

Open loop on purpose: requests start on a clock, not when the previous one returns, so a slow
version gets the same offered load as a fast one (as real users would send). If too many are
in flight (`concurrency`), a tick is skipped and counted in `skipped` rather than queued.
With `users=N`, each request carries one of N stable user ids (`USER_HEADER`, drawn at random),
as a flag's targetingKey: the same user comes back many times, so stickiness can be seen.

As a task: `async with LoadGenerator(url, rate=50, duration=60) as load: ...; load.stats`.
As a process: `python -m collectors.local.loadgen --url http://127.0.0.1:8080 --rate 50
--duration 30` prints its final counts as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import aiohttp

from collectors.local.lifeline import die_with_parent
from collectors.local.net import ROUTED_HEADER, USER_HEADER


@dataclass
class LoadStats:
    """Counts so far. `errors` are HTTP 5xx answers; `failed` got no answer at all."""

    sent: int = 0
    ok: int = 0
    errors: int = 0
    failed: int = 0
    skipped: int = 0
    by_version: Counter[str] = field(default_factory=Counter)
    errors_by_version: Counter[str] = field(default_factory=Counter)

    @property
    def done(self) -> int:
        return self.ok + self.errors + self.failed

    def to_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "ok": self.ok, "errors": self.errors, "failed": self.failed,
                "skipped": self.skipped, "by_version": dict(self.by_version),
                "errors_by_version": dict(self.errors_by_version)}


class LoadGenerator:
    """Sends GET `path` to `url` at `rate` req/s for `duration` seconds (None: until stopped)."""

    def __init__(self, url: str, *, rate: float = 50.0, duration: float | None = 600.0,
                 path: str = "/", timeout: float = 5.0, concurrency: int = 64,
                 headers: Mapping[str, str] | None = None, users: int = 0, seed: int | None = None):
        if rate <= 0:
            raise ValueError(f"load rate must be above 0 req/s, got {rate:g}")
        self.url = url.rstrip("/")
        self.rate = float(rate)
        self.duration = duration
        self.path = path
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.users = users
        self._pick = random.Random(seed)
        self.stats = LoadStats()
        self._slots = asyncio.Semaphore(concurrency)
        self._task: asyncio.Task[LoadStats] | None = None
        self._inflight: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def set_rate(self, rate: float) -> None:
        """Change the rate from the next request on."""
        if rate <= 0:
            raise ValueError(f"load rate must be above 0 req/s, got {rate:g}")
        self.rate = float(rate)

    def start(self) -> asyncio.Task[LoadStats]:
        """Run in the background on the current loop; returns the task (it ends by itself)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="releasedeck-loadgen")
        return self._task

    async def stop(self) -> LoadStats:
        """Stop sending and wait for requests in flight (each bounded by `timeout`)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.stats

    async def wait(self) -> LoadStats:
        """Wait until the duration is over."""
        if self._task is None:
            return self.stats
        return await self._task

    async def __aenter__(self) -> LoadGenerator:
        self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def run(self) -> LoadStats:
        """Send until the duration is over (or cancelled); returns the final counts."""
        # aiohttp, not httpx: about a sixth of the CPU per request, and this runs in the app's loop
        connector = aiohttp.TCPConnector(limit=0, use_dns_cache=False)
        async with aiohttp.ClientSession(connector=connector, headers=self.headers, trust_env=False,
                                         timeout=aiohttp.ClientTimeout(total=self.timeout)) as client:
            start = time.monotonic()
            end = None if self.duration is None else start + self.duration
            next_at = start
            try:
                while end is None or next_at < end:
                    delay = next_at - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if self._slots.locked():
                        self.stats.skipped += 1
                    else:
                        task = asyncio.create_task(self._one(client))
                        self._inflight.add(task)
                        task.add_done_callback(self._inflight.discard)
                    next_at = max(next_at + 1.0 / self.rate, time.monotonic() - 1.0)  # no burst after a stall
            finally:
                if self._inflight:
                    await asyncio.wait(list(self._inflight), timeout=self.timeout + 1)
                for task in list(self._inflight):
                    task.cancel()
        return self.stats

    async def _one(self, client: aiohttp.ClientSession) -> None:
        async with self._slots:
            self.stats.sent += 1
            try:
                async with client.get(self.url + self.path, allow_redirects=False,
                                      headers=self._user()) as answer:
                    await answer.read()
                    status = answer.status
                    version = answer.headers.get(ROUTED_HEADER, "")
            except (aiohttp.ClientError, TimeoutError):
                self.stats.failed += 1
                return
            if version:
                self.stats.by_version[version] += 1
            if status >= 500:
                self.stats.errors += 1
                if version:
                    self.stats.errors_by_version[version] += 1
            else:
                self.stats.ok += 1


    def _user(self) -> dict[str, str] | None:
        if self.users <= 0:
            return None
        return {USER_HEADER: f"user-{self._pick.randrange(self.users)}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m collectors.local.loadgen",
                                     description="Steady, bounded HTTP load; prints counts as JSON.")
    parser.add_argument("--url", required=True, help="e.g. http://127.0.0.1:8080 (the local router)")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second (default 50)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds (default 30)")
    parser.add_argument("--path", default="/")
    args = parser.parse_args(argv)
    die_with_parent()
    try:
        load = LoadGenerator(args.url, rate=args.rate, duration=args.duration, path=args.path)
    except ValueError as exc:
        parser.error(str(exc))
    stats = asyncio.run(load.run())
    print(json.dumps(stats.to_dict()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
