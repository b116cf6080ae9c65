"""`LocalStack`: the whole embedded demo on one machine, started and stopped as one thing.

    async with LocalStack(spec, rate=50) as stack:
        driver = Driver(spec, engine, stack.platform, stack.router, source)
        ...
        await stack.inject_fault(error_ratio=0.3)   # the candidate by default

On entry: baseline and candidate at `spec.platform.replicas` instances each, all ready (bounded
wait), the router in front (baseline 100 / candidate 0, backends synced) and the load generator
sending to the router. While running, a background task keeps the router's backends in step with
the platform every `sync_interval` (so restarts and scale changes reach the router without the
driver knowing about it), unless `sync_interval` is None: a run whose driver syncs the router
itself each tick (releasedeck's own runs do) keeps that one sync. On exit, everything is
stopped, also on errors and cancellation.

A flag release (`[router] kind = "flagd"`) runs the one workload that holds both code paths,
behind the same router at 100 %; the demo service there reads the flag file, the load carries
stable user ids (the flag's targetingKey), `lever` is the flagd lever the driver moves, and a
fault hits only the candidate's (flagged) code path.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from types import TracebackType

from collectors.flags.flagd import FlagdLever
from collectors.local.loadgen import LoadGenerator
from collectors.local.net import PIN_HEADER
from collectors.local.platform import LocalPlatform, LocalPlatformError
from collectors.local.router import LocalRouter, LocalRouterError
from strategies.ports import TrafficRouter
from strategies.spec import ReleaseSpec
from strategies.spec.adapters import run_problems

FLAG_USERS = 5000
PREVIEW_SHARE = 0.2  # blue-green preview traffic: this share of the load rate ...
PREVIEW_MIN_RATE = 5.0  # ... and at least this many requests/s
"""Distinct user ids the load carries in a flag release: each comes back many times a minute."""
DEMO_USERS = 500
DEMO_GROUPS = {"staff": 0.05}  # X-User-Group: staff for the first 25 users


class LocalStackError(RuntimeError):
    """The local stack could not start; the message says which part and why, in one line."""


class LocalStack:
    """Platform + router + load generator for a spec with `[platform] kind = "local"`."""

    def __init__(self, spec: ReleaseSpec, *, rate: float = 50.0, load_duration: float | None = 3600.0,
                 ready_timeout: float | None = None, sync_interval: float | None = 0.5, load: bool = True):
        if spec.platform.kind != "local":
            raise LocalStackError(f"{spec.path}: platform.kind is {spec.platform.kind!r}; "
                                  "the local stack needs kind = \"local\"")
        for where, what in run_problems(spec.platform, spec.router):  # as `check` says it
            raise LocalStackError(f"{spec.path}: {where}: {what}")
        self.spec = spec
        self.rate = rate
        self.load_duration = load_duration
        self.ready_timeout = ready_timeout
        self.sync_interval = sync_interval
        self.with_load = load
        self._platform: LocalPlatform | None = None
        self._router: LocalRouter | None = None
        self._load: LoadGenerator | None = None
        self._preview: LoadGenerator | None = None  # blue-green preview traffic
        self._flag: FlagdLever | None = FlagdLever.from_spec(spec) if spec.router.kind == "flagd" else None
        self._sync_task: asyncio.Task[None] | None = None
        self.sync_error: str | None = None  # the last backend-sync failure, None once it works again

    # ----------------------------------------------------------------- parts

    @property
    def platform(self) -> LocalPlatform:
        if self._platform is None:
            raise LocalStackError("local stack is not started")
        return self._platform

    @property
    def router(self) -> LocalRouter:
        if self._router is None:
            raise LocalStackError("local stack is not started")
        return self._router

    @property
    def lever(self) -> TrafficRouter:
        """What the driver moves: the router's weights, or in a flag release the flag's share."""
        return self._flag if self._flag is not None else self.router

    @property
    def load(self) -> LoadGenerator | None:
        """The load generator (None when started with load=False)."""
        return self._load

    @property
    def url(self) -> str:
        """Where the service answers through the router."""
        return self.router.url

    # ----------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> LocalStack:
        await self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def start(self) -> None:
        """Start everything, or nothing: a failure stops what was started and raises LocalStackError."""
        try:
            await self._start()
        except BaseException as exc:
            await self.close()
            if isinstance(exc, LocalPlatformError | LocalRouterError):
                raise LocalStackError(f"local stack did not start: {exc}") from exc
            raise

    async def _start(self) -> None:
        spec = self.spec
        if self._flag is not None:
            await self._flag.ensure()  # the services read it from their first request on
        self._platform = LocalPlatform.from_spec(spec)
        for version in spec.workloads:
            await self._platform.scale(version, spec.platform.replicas)
        await self._platform.wait_ready(self.ready_timeout)
        self._router = LocalRouter.from_spec(spec)
        await self._router.start()
        await self.sync()
        if self._flag is not None:
            await self._router.set_weights({spec.strategy.workload: 100})
        else:
            await self._router.set_weights({spec.release.baseline: 100, spec.release.candidate: 0})
        if self.sync_interval is not None:
            self._sync_task = asyncio.create_task(self._sync_forever(self.sync_interval),
                                                  name="releasedeck-local-sync")
        if self.with_load:
            # Users with ids (and a staff group): what flags, rings, A/B and sticky shares route by.
            self._load = LoadGenerator(self._router.url, rate=self.rate, duration=self.load_duration,
                                       users=FLAG_USERS if self._flag is not None else DEMO_USERS,
                                       groups=DEMO_GROUPS)
            self._load.start()
            if spec.strategy.kind == "blue-green" and spec.strategy.preview_analysis:
                # Preview traffic, pinned to the candidate past the weights (what a preview
                # Service gets in Argo Rollouts), so the gates can judge the preview.
                self._preview = LoadGenerator(
                    self._router.url, rate=max(PREVIEW_MIN_RATE, self.rate * PREVIEW_SHARE),
                    duration=self.load_duration, headers={PIN_HEADER: spec.release.candidate})
                self._preview.start()

    async def close(self) -> None:
        """Stop load, sync, router and platform, in that order; finishes even if cancelled."""
        teardown = asyncio.ensure_future(self._teardown())
        cancelled = False
        while not teardown.done():
            try:
                await asyncio.shield(teardown)
            except asyncio.CancelledError:
                cancelled = True
        if cancelled:
            raise asyncio.CancelledError

    async def _teardown(self) -> None:
        for load in (self._load, self._preview):
            if load is not None:
                with contextlib.suppress(Exception):
                    await load.stop()
        if self._sync_task is not None:
            # Python 3.11's wait_for can swallow a cancel that lands as the sync finishes; the
            # task then sleeps on. Cancel again until it is done (found as a hang at exit).
            for _ in range(50):
                if self._sync_task.done():
                    break
                self._sync_task.cancel()
                await asyncio.wait({self._sync_task}, timeout=0.2)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                if self._sync_task.done():
                    self._sync_task.result()
        if self._router is not None:
            with contextlib.suppress(Exception):
                await self._router.close()
        if self._platform is not None:
            with contextlib.suppress(Exception):
                await self._platform.close()

    # ----------------------------------------------------------------- levers

    async def inject_fault(self, version: str | None = None, *, error_ratio: float | None = None,
                           latency_ms: float | None = None) -> int:
        """Make `version` (default: the candidate) fail or slow down; returns instances changed."""
        target = version or self.spec.release.candidate
        if self._flag is not None and target == self.spec.release.candidate:
            return await self.platform.inject_fault(self.spec.strategy.workload, error_ratio=error_ratio,
                                                    latency_ms=latency_ms, code_path="flagged")
        return await self.platform.inject_fault(target, error_ratio=error_ratio, latency_ms=latency_ms)

    async def sync(self) -> dict[str, list[str]]:
        """One backend sync: platform snapshot → router backends (ready instances only)."""
        snapshot = await self.platform.snapshot(self.spec.workloads, time.time())
        return await self.router.sync_backends(snapshot)

    async def _sync_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.wait_for(self.sync(), timeout=max(5.0, interval * 4))
                self.sync_error = None
            except Exception as exc:  # keep syncing: the next round may work, the app must not die
                self.sync_error = f"router backend sync failed: {str(exc) or type(exc).__name__}"
