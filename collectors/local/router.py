"""`LocalRouter`: the TrafficRouter port over the built-in proxy process (`router_process`).

The proxy needs to know where each version's instances listen. Whoever owns the platform feeds
it: `await router.sync_backends(snapshot)` with a `PlatformSnapshot` sends the addresses of the
*ready* instances (only when they changed). `LocalStack` does this on its own every half second;
a hand-wired driver can call it after each `platform.snapshot(...)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from collectors.exposition import ExpositionError, families
from collectors.local import reaper
from collectors.local.net import PIN_HEADER, ROUTED_HEADER
from collectors.local.tempdirs import owned_tempdir
from collectors.loop_session import Answer, LoopSession
from strategies.cohorts import Route
from strategies.model import PlatformSnapshot
from strategies.reconcile import compare_routes
from strategies.spec import ReleaseSpec

__all__ = ["PIN_HEADER", "ROUTED_HEADER", "LocalRouter", "LocalRouterError"]


RESTART_TIMEOUT = 30.0  # a restart runs in the background: give a busy machine time
START_TRIES = 3  # a proxy killed while starting is started again, this many tries in all
START_WINDOW = 30.0  # … within this many seconds


class LocalRouterError(RuntimeError):
    """The local router could not start or did not take a change; one line for people."""


class LocalRouter:
    """`strategies.ports.TrafficRouter` and `CohortRouter` (kind "local") over the proxy's admin API."""

    kind = "local"

    def __init__(self, *, port: int = 0, weights: Mapping[str, int] | None = None,
                 start_timeout: float = 10.0, request_timeout: float = 2.0):
        self.port = port
        self.initial = dict(weights or {})
        self.start_timeout = start_timeout
        self.request_timeout = request_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._client: LoopSession | None = None
        self._logdir: Path | None = None
        self._sent_backends: dict[str, list[str]] | None = None
        self._closed = False
        self.restarts = 0  # times a dead proxy was started again (see `_revive`)
        self._started = False
        self._restart: asyncio.Future[None] | None = None
        self._said = 0  # pid of the last dead proxy `down` reported
        self._found = ""  # a death a restart found first, for `down` to report once

    @classmethod
    def from_spec(cls, spec: ReleaseSpec) -> LocalRouter:
        """`[router] port = 8080` or `listen = "127.0.0.1:8080"`; starts baseline 100, candidate 0."""
        options = spec.router.options
        port = options.get("port", 0)
        listen = options.get("listen")
        if isinstance(listen, str) and listen:
            host, _, text = listen.rpartition(":")
            if host not in ("", "127.0.0.1", "localhost") or not text.isdigit():
                raise LocalRouterError(f"router.listen: the local router binds 127.0.0.1 only; "
                                       f"give '127.0.0.1:PORT', got {listen!r}")
            port = int(text)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise LocalRouterError(f"router.port: must be a port number, got {port!r}")
        return cls(port=port, weights={spec.release.baseline: 100, spec.release.candidate: 0})

    # ----------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        """Where clients send traffic, e.g. http://127.0.0.1:40123 (after `start`)."""
        if self._proc is None:
            raise LocalRouterError("local router is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self, timeout: float | None = None) -> LocalRouter:
        """Start the proxy process and wait (bounded) until it listens. Idempotent.

        A proxy killed from outside while it starts (a signal, not its own exit) is started
        again, up to START_TRIES times within START_WINDOW seconds: the 30-minute soak killed
        the router in the second a release started and the run ended in exit 3 although
        nothing was wrong with the router. A proxy that exits by itself (a busy port) is not
        retried: the next try would fail the same way."""
        if self._closed:
            raise LocalRouterError("local router is closed")
        if self._proc is not None:
            return self
        deadline = time.monotonic() + START_WINDOW
        deaths: list[str] = []
        while True:
            died = await self._spawn(timeout or self.start_timeout)
            if not died:
                return self
            deaths.append(died)
            killed = died.startswith("killed by ")
            if not killed or len(deaths) >= START_TRIES or time.monotonic() >= deadline:
                tries = f" ({len(deaths)} tries: {'; '.join(deaths)})" if len(deaths) > 1 else ""
                raise LocalRouterError(f"local router did not start on 127.0.0.1:{self.port}: "
                                       f"{deaths[-1]}{tries}")
            await asyncio.sleep(0.5)

    async def _spawn(self, timeout: float) -> str:
        """One try: '' once the proxy listens, else words for how it died."""
        if self._logdir is None:  # a restarted proxy keeps its dir and appends to its log
            self._logdir = owned_tempdir("router")
        log = self._logdir / "router.log"
        argv = [sys.executable, "-m", "collectors.local.router_process", "--port", str(self.port),
                "--weights", json.dumps(self.initial)]
        with open(log, "ab") as sink:
            mark = sink.tell()
            proc = reaper.spawn(argv, env=reaper.package_env(), stdout=subprocess.PIPE, stderr=sink)
        self._proc = proc
        assert proc.stdout is not None
        hung = False
        try:
            line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout)
        except TimeoutError:
            line, hung = b"", True
        text = line.decode(errors="replace").strip()
        if not text.startswith("listening on "):
            if not hung:  # its output closed: it is exiting; wait (bounded) to learn how
                with contextlib.suppress(subprocess.TimeoutExpired):
                    await asyncio.to_thread(proc.wait, 5.0)
            code = proc.poll()  # before stop(): None means it hung, not that stop() killed it
            await reaper.stop(proc)
            self._proc = None
            proc.stdout.close()
            return _how_it_died(code, _log_since(log, mark))
        self.port = int(text.rsplit(":", 1)[1])
        self._client = LoopSession(self.request_timeout, base_url=self.url)
        self._started = True
        return ""

    async def close(self) -> None:
        """Stop the proxy process. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._restart is not None and not self._restart.done():
            self._restart.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._restart
        if self._client is not None:
            await self._client.close()
        if self._proc is not None:
            proc, self._proc = self._proc, None
            await reaper.stop(proc)
            if proc.stdout is not None:
                proc.stdout.close()
        if self._logdir is not None:
            shutil.rmtree(self._logdir, ignore_errors=True)

    async def down(self) -> str:
        """`strategies.ports.RouterProcess`: "" while the proxy runs; a proxy found dead is
        said once (the tick holds and reconcile journals it, re-applying the journal's weights)
        and its restart begins at once, as any call to it would begin it, so a run that
        re-applies nothing (observing, or before the first step) gets it back too. A stopped
        proxy (SIGSTOP) is alive: its calls time out instead."""
        found, self._found = self._found, ""
        if found:  # a death another call found first and restarted: said on this look
            return found
        proc = self._proc
        if self._closed or not self._started or proc is None:
            return ""
        code = proc.poll()
        if code is None:
            return ""
        self._said = proc.pid
        restart = asyncio.ensure_future(self._revive())  # takes the dead process over
        restart.add_done_callback(_consume)
        return _death(proc.pid, code)

    # ----------------------------------------------------------------- the port

    async def set_weights(self, weights: Mapping[str, int]) -> None:
        """Route `weights` percents (they must add up to 100); applies to the next request."""
        for version, value in weights.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
                raise LocalRouterError(f"weight of {version} must be 0..100, got {value!r}")
        if round(sum(weights.values())) != 100:
            raise LocalRouterError(f"weights must add up to 100, got {dict(weights)} "
                                   f"(sum {sum(weights.values()):g})")
        await self._admin("PUT", "/-/weights", dict(weights))
        self.initial = {str(k): int(v) for k, v in weights.items()}  # what a restart comes back to

    async def weights(self) -> Mapping[str, float]:
        """Percent per version the proxy really routes (versions without backends get 0)."""
        body = await self._admin("GET", "/-/weights")
        return {str(k): float(v) for k, v in body["effective"].items()}

    async def set_route(self, route: Route) -> None:
        """Cohort rules, sticky user key and mirror (replacing the last ones); weights stay."""
        await self._admin("PUT", "/-/route", route.to_dict())

    async def route(self) -> Route:
        """The cohort rules, user key and mirror the proxy applies now."""
        return Route.from_dict(await self._admin("GET", "/-/route"))

    async def route_differences(self, route: Route, weights: Mapping[str, int] | None
                                ) -> tuple[str, ...]:
        """`strategies.ports.RouteReadback`: the route the proxy applies now (a proxy revived
        after a crash comes back with none) against `route`. `weights` are unused: the proxy
        shares sticky users out by its live weights itself."""
        return compare_routes(await self.route(), route, "local router")

    # ----------------------------------------------------------------- feeding it

    async def set_backends(self, backends: Mapping[str, Sequence[str]]) -> None:
        """Replace every version's backend list (host:port strings)."""
        body = {version: list(addresses) for version, addresses in backends.items()}
        await self._admin("PUT", "/-/backends", body)
        self._sent_backends = body

    @property
    def backends(self) -> dict[str, list[str]]:
        """The backend table last sent to the proxy (empty before the first)."""
        return {version: list(addresses) for version, addresses in (self._sent_backends or {}).items()}

    async def sync_backends(self, snapshot: PlatformSnapshot) -> dict[str, list[str]]:
        """Point each version at its ready instances as the snapshot saw them; returns the table.

        Only sends when the table changed. A snapshot with `error` set changes nothing.
        """
        if snapshot.error:
            return dict(self._sent_backends or {})
        table = {name: sorted(i.address for i in status.instances if i.ready and i.address)
                 for name, status in snapshot.versions.items()}
        if table != self._sent_backends:
            await self.set_backends(table)
        return table

    async def routed(self) -> dict[str, float]:
        """Requests proxied so far per version (all status codes), from the proxy's /-/metrics."""
        counts: dict[str, float] = {}
        for (version, _), value in (await self.routed_by_cohort()).items():
            counts[version] = counts.get(version, 0.0) + value
        return counts

    async def routed_by_cohort(self) -> dict[tuple[str, str], float]:
        """Requests proxied so far per (version, cohort): who was served by what."""
        return await self._counts("releasedeck_router_requests", "cohort")

    async def mirrored(self) -> dict[str, float]:
        """Shadow copies per answer code ('dropped', 'error' included), all mirror versions."""
        out: dict[str, float] = {}
        for (_, code), value in (await self._counts("releasedeck_router_mirrored", "code")).items():
            out[code] = out.get(code, 0.0) + value
        return out

    async def _counts(self, name: str, second: str) -> dict[tuple[str, str], float]:
        text = await self._admin_text("/-/metrics")
        try:
            parsed = families(text, f"local router at {self.url}/-/metrics")
        except ExpositionError as exc:
            raise LocalRouterError(str(exc)) from exc
        counts: dict[tuple[str, str], float] = {}
        for family in parsed:
            if family.name != name:
                continue
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    key = (sample.labels.get("version", ""), sample.labels.get(second, ""))
                    counts[key] = counts.get(key, 0.0) + sample.value
        return counts

    # ----------------------------------------------------------------- inside

    async def _revive(self) -> None:
        """A proxy that died is started again, like a crashed instance: on its port, with the
        last weights and backends it was given (the engine's reconcile checks them anyway).

        The restart runs as one shielded task: the driver and the stack's backend sync both
        call in, and each bounds its call with a timeout, so a caller that gives up must not
        cancel a restart half done. A restart that fails is tried again by the next call."""
        if self._closed or not self._started:
            return
        if self._restart is None or self._restart.done():
            if self._alive() and self._client is not None:
                return
            self._restart = asyncio.ensure_future(self._restart_now())
            self._restart.add_done_callback(_consume)
        await asyncio.shield(self._restart)

    async def _restart_now(self) -> None:
        if self._proc is not None:
            dead, self._proc = self._proc, None
            code = dead.poll()
            if code is None:
                await reaper.stop(dead)  # started, but never answered: replace it
            elif dead.pid != self._said:  # died between two looks: the next look says it
                self._found = _death(dead.pid, code)
            reaper.forget(dead)
            if dead.stdout is not None:
                dead.stdout.close()
        if self._client is not None:
            await self._client.close()
            self._client = None
        self.restarts += 1
        await self.start(timeout=max(self.start_timeout, RESTART_TIMEOUT))
        if self._sent_backends:
            body = dict(self._sent_backends)
            answer = await self._http().request("PUT", "/-/backends", json=body)
            if answer.status != 200:
                raise LocalRouterError(f"restarted local router refused its backends: "
                                       f"{_reason(answer)}")

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _http(self) -> LoopSession:
        if self._client is None or self._closed:
            raise LocalRouterError("local router is not running (start it first)")
        return self._client

    async def _admin(self, method: str, path: str, body: Any = None) -> Any:
        await self._revive()
        client = self._http()
        try:
            answer = await client.request(method, path, json=body)
        except aiohttp.ClientError as exc:  # timeouts too (ServerTimeoutError)
            raise LocalRouterError(f"local router at {self.url}{path}: {type(exc).__name__}: {exc}") from exc
        if answer.status != 200:
            raise LocalRouterError(f"local router refused {method} {path}: {_reason(answer)}")
        return json.loads(answer.text)

    async def _admin_text(self, path: str) -> str:
        await self._revive()
        client = self._http()
        try:
            answer = await client.get(path)
        except aiohttp.ClientError as exc:  # timeouts too (ServerTimeoutError)
            raise LocalRouterError(f"local router at {self.url}{path}: {type(exc).__name__}: {exc}") from exc
        if not 200 <= answer.status < 300:
            raise LocalRouterError(f"local router at {self.url}{path}: HTTP {answer.status}")
        return answer.text


def _log_since(log: Path, mark: int) -> str:
    """The last line this try wrote to the router's log ('' if it wrote nothing)."""
    try:
        with open(log, "rb") as fh:
            fh.seek(mark)
            lines = [x.strip() for x in fh.read().decode(errors="replace").splitlines() if x.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def _death(pid: int, code: int) -> str:
    return f"local router: pid {pid} exited ({reaper.exit_words(code)})"


def _how_it_died(code: int | None, said: str) -> str:
    """Words for a proxy that never listened: what it said, or the signal or exit code."""
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name} while starting"
    said = said.removeprefix("router: ")
    if said:
        return said
    return "did not answer in time" if code is None else f"exit {code}"


def _consume(task: asyncio.Future[None]) -> None:
    """A restart's failure is reported to its callers; never log it again as unretrieved."""
    if not task.cancelled():
        task.exception()


def _reason(answer: Answer) -> str:
    try:
        body = json.loads(answer.text)
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])
    return f"HTTP {answer.status}"
