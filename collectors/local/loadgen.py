"""A bounded load generator: steady GETs at a fixed rate for a fixed time, then it stops.

Open loop on purpose: requests start on a clock, not when the previous one returns, so a slow
version gets the same offered load as a fast one (as real users would send). If too many are
in flight (`concurrency`), a tick is skipped and counted in `skipped` rather than queued.

With `users=N` every request comes from one of N users (`X-User-Id: u0007`, picked by a seeded
random sequence) and `groups={"staff": 0.05}` puts the first 5% of them in a group
(`X-User-Group: staff`): what cohort rules and sticky assignment need to be seen at work.

As a task: `async with LoadGenerator(url, rate=50, duration=60) as load: ...; load.stats`.
As a process: `python -m collectors.local.loadgen --url http://127.0.0.1:8080 --rate 50
--duration 30` prints its final counts as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
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
from collectors.local.net import GROUP_HEADER, ROUTED_HEADER, USER_HEADER


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
    by_group: Counter[tuple[str, str]] = field(default_factory=Counter)  # (group or "", version)
    versions_by_user: dict[str, set[str]] = field(default_factory=dict)  # who was served by what

    @property
    def done(self) -> int:
        return self.ok + self.errors + self.failed

    def to_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "ok": self.ok, "errors": self.errors, "failed": self.failed,
                "skipped": self.skipped, "by_version": dict(self.by_version),
                "errors_by_version": dict(self.errors_by_version),
                "by_group": {f"{g or '-'}:{v}": n for (g, v), n in sorted(self.by_group.items())},
                "users_on_two_versions": sum(1 for v in self.versions_by_user.values() if len(v) > 1)}


def user_groups(users: int, groups: Mapping[str, float]) -> dict[str, str]:
    """User id -> group: the groups take the first users in order, each its share (rounded up)."""
    out: dict[str, str] = {}
    start = 0
    for group, share in groups.items():
        if not 0 <= share <= 1:
            raise ValueError(f"share of group {group!r} must be 0..1, got {share:g}")
        count = math.ceil(share * users)
        for index in range(start, min(users, start + count)):
            out[user_id(index)] = group
        start += count
    return out


def user_id(index: int) -> str:
    return f"u{index:04d}"


class LoadGenerator:
    """Sends GET `path` to `url` at `rate` req/s for `duration` seconds (None: until stopped)."""

    def __init__(self, url: str, *, rate: float = 50.0, duration: float | None = 600.0,
                 path: str = "/", timeout: float = 5.0, concurrency: int = 64,
                 headers: Mapping[str, str] | None = None, users: int = 0,
                 groups: Mapping[str, float] | None = None, seed: int = 0,
                 total: int | None = None):
        if rate <= 0:
            raise ValueError(f"load rate must be above 0 req/s, got {rate:g}")
        self.url = url.rstrip("/")
        self.rate = float(rate)
        self.duration = duration
        self.path = path
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.stats = LoadStats()
        if users < 0:
            raise ValueError(f"users must be 0 or more, got {users}")
        self.users = users
        self.total = total  # stop after launching this many requests (None: only the duration)
        self.groups = user_groups(users, groups or {})
        self._pick_user = random.Random(seed)
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
            launched = 0
            try:
                while (end is None or next_at < end) and (self.total is None or launched < self.total):
                    delay = next_at - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if self._slots.locked():
                        self.stats.skipped += 1
                    else:
                        launched += 1
                        task = asyncio.create_task(self._one(client, self._next_user()))
                        self._inflight.add(task)
                        task.add_done_callback(self._inflight.discard)
                    next_at = max(next_at + 1.0 / self.rate, time.monotonic() - 1.0)  # no burst after a stall
            finally:
                if self._inflight:
                    await asyncio.wait(list(self._inflight), timeout=self.timeout + 1)
                for task in list(self._inflight):
                    task.cancel()
        return self.stats

    def _next_user(self) -> str | None:
        return user_id(self._pick_user.randrange(self.users)) if self.users else None

    def _user_headers(self, user: str | None) -> dict[str, str]:
        if user is None:
            return {}
        group = self.groups.get(user)
        return {USER_HEADER: user, GROUP_HEADER: group} if group else {USER_HEADER: user}

    async def _one(self, client: aiohttp.ClientSession, user: str | None = None) -> None:
        async with self._slots:
            self.stats.sent += 1
            try:
                async with client.get(self.url + self.path, allow_redirects=False,
                                      headers=self._user_headers(user)) as answer:
                    await answer.read()
                    status = answer.status
                    version = answer.headers.get(ROUTED_HEADER, "")
            except (aiohttp.ClientError, TimeoutError):
                self.stats.failed += 1
                return
            if version:
                self.stats.by_version[version] += 1
            if user is not None:
                self.stats.by_group[(self.groups.get(user, ""), version)] += 1
                self.stats.versions_by_user.setdefault(user, set()).add(version)
            if status >= 500:
                self.stats.errors += 1
                if version:
                    self.stats.errors_by_version[version] += 1
            else:
                self.stats.ok += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m collectors.local.loadgen",
                                     description="Steady, bounded HTTP load; prints counts as JSON.")
    parser.add_argument("--url", required=True, help="e.g. http://127.0.0.1:8080 (the local router)")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second (default 50)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds (default 30)")
    parser.add_argument("--path", default="/")
    parser.add_argument("--users", type=int, default=0,
                        help="send as this many users (X-User-Id), 0: anonymous (default)")
    parser.add_argument("--group", action="append", default=[], metavar="NAME=SHARE",
                        help="put a share of the users in a group (X-User-Group), e.g. staff=0.05")
    parser.add_argument("--seed", type=int, default=0, help="seed of the user sequence")
    args = parser.parse_args(argv)
    die_with_parent()
    try:
        groups = {}
        for item in args.group:
            name, _, share = item.partition("=")
            try:
                groups[name] = float(share)
            except ValueError:
                parser.error(f"--group {item!r}: give NAME=SHARE, e.g. staff=0.05")
        load = LoadGenerator(args.url, rate=args.rate, duration=args.duration, path=args.path,
                             users=args.users, groups=groups, seed=args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    stats = asyncio.run(load.run())
    print(json.dumps(stats.to_dict()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
