"""A follower: receives a driver's published State over its state server's event stream.

No engine, no adapters, no metric queries: everything a follower shows is the driver's State,
rebuilt typed (strategies.state_json). Where to connect comes from a `Locator`: a fixed URL, or
a spec's lease (who drives now, and where their server answers). When the driver goes away the
follower keeps its last State, says since when (`gone_since`), and keeps looking (bounded
backoff) until a driver answers again, the same one or the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import aiohttp

from collectors.lease import Holder, Lease, LeaseError
from strategies.model import Event, State, frozen_map, parse_rfc3339
from strategies.state_json import StateFormatError, state_from_json

RETRY_MIN = 0.2
RETRY_MAX = 2.0


@dataclass(frozen=True)
class Target:
    """Where a driver's server answers, and who that driver is (if known)."""

    url: str
    holder: Holder | None = None


class Locator(Protocol):
    """Says where the driver is now; None while it cannot (`missing` says why)."""

    async def locate(self) -> Target | None: ...

    def describe(self) -> str: ...

    def missing(self) -> str:
        """Why the last `locate` found no driver to follow, in one line."""
        ...


class UrlLocator:
    def __init__(self, url: str):
        self.url = url.rstrip("/")

    async def locate(self) -> Target | None:
        return Target(self.url)

    def describe(self) -> str:
        return self.url

    def missing(self) -> str:
        return f"nobody answers at {self.url}"


class LeaseLocator:
    """The driver named by a release's lease (file or Kubernetes)."""

    def __init__(self, lease: Any, what: str):
        self.lease = lease
        self.what = what
        self._holder: Holder | None = None  # as the last `locate` read it

    async def locate(self) -> Target | None:
        self._holder = holder = await self.lease.holder()
        if holder is None or not holder.attach:
            return None
        return Target(holder.attach, holder)

    def describe(self) -> str:
        return self.what

    def missing(self) -> str:
        """Nobody drives; or somebody does and the lease does not say where (yet)."""
        holder = self._holder
        if holder is None:
            return f"nobody drives {self.what}"
        if not holder.known:
            return (f"{self.what} is driven by {holder.identity}: its lease does not say who or "
                    "where (its details could not be written); attach with the address that "
                    "session printed: releasedeck attach URL")
        return f"{self.what} is driven by {holder.identity}, whose state server is not " \
               "listening yet"


def event_from_line(text: str) -> Event:
    """An event line as the driver printed it, back into an Event (for the app's log)."""
    body = json.loads(text)
    details = {k: v for k, v in body.items() if k not in ("ts", "release", "event")}
    severity = str(details.pop("severity", "info")) if "severity" in details else "info"
    return Event(at=parse_rfc3339(body["ts"]), release=str(body["release"]), event=str(body["event"]),
                 details=frozen_map(details), severity=severity)


def merge(shown: State, delta: State, history_seconds: float, max_events: int = 200) -> State:
    """The full State again from the last one and a delta (tui.serve.server.delta): history
    samples appended (never twice) and trimmed to the driver's window, new events appended."""
    history = {}
    for version in set(shown.history) | set(delta.history):
        series = list(shown.history.get(version, ()))
        for sample in delta.history.get(version, ()):
            if not series or sample.at > series[-1].at:
                series.append(sample)
        if series:
            newest = series[-1].at
            series = [s for s in series if newest - s.at <= history_seconds]
        history[version] = tuple(series)
    events = (shown.events + delta.events)[-max_events:]
    return replace(delta, history=frozen_map(history), events=events)


class Follower:
    """Connects, reads the stream, reconnects; calls back on each state, event line and end."""

    def __init__(self, locator: Locator, *, token: str | None = None,
                 on_state: Callable[[State], Any] | None = None,
                 on_event: Callable[[str], Any] | None = None,
                 on_status: Callable[[], Any] | None = None,
                 clock: Callable[[], float] = time.time):
        self.locator = locator
        self.token = token
        self.on_state = on_state
        self.on_event = on_event
        self.on_status = on_status
        self.clock = clock
        self.state: State | None = None
        self.holder: Holder | None = None
        self.connected = False
        self.gone_since: float | None = None  # when the driver stopped answering
        self.ended: int | None = None  # the driver's exit code, once it said so
        self.problem = ""  # one line: why nothing is connected now
        self.states = 0  # States received
        self.history_seconds = 300.0
        self.connections = 0

    def _status(self) -> None:
        if self.on_status is not None:
            self.on_status()

    def _lost(self, why: str) -> None:
        if self.connected or self.gone_since is None:
            self.gone_since = self.clock()
        self.connected = False
        self.problem = why
        self._status()

    async def run(self, *, until: Callable[[], bool] | None = None) -> None:
        """Follow until `until()` says stop (checked between connections) or cancelled."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5.0, sock_read=None)
        delay = RETRY_MIN
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
            while until is None or not until():
                target, why = await self._locate()
                if target is None:
                    self._lost(why)
                else:
                    try:
                        await self._stream(session, target)
                        delay = RETRY_MIN
                    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                        self._lost(f"driver at {target.url} does not answer ({type(exc).__name__})")
                    except _Refused as exc:
                        self._lost(str(exc))
                    else:
                        self._lost(f"driver at {target.url} went away")
                if until is not None and until():
                    return
                await asyncio.sleep(delay)
                delay = min(RETRY_MAX, delay * 2)

    async def _locate(self) -> tuple[Target | None, str]:
        """Where to connect, or None and why not (a lease that cannot be read says so)."""
        try:
            target = await self.locator.locate()
        except Exception as exc:
            return None, f"cannot read the lease: {exc}"
        return target, "" if target is not None else self.locator.missing()

    async def _stream(self, session: aiohttp.ClientSession, target: Target) -> None:
        async with session.get(f"{target.url}/events") as response:
            if response.status == 401:
                raise _Refused(f"driver at {target.url} wants a token (--token-file)")
            if response.status != 200:
                raise _Refused(f"driver at {target.url} answered HTTP {response.status}")
            self.connections += 1
            kind, data = "message", []
            async for raw in response.content:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if not line:
                    if data:
                        self._message(kind, "\n".join(data), target)
                    kind, data = "message", []
                    if self.ended is not None:
                        return
                elif line.startswith(":"):
                    continue
                elif line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip(" "))

    def _message(self, kind: str, data: str, target: Target) -> None:
        if kind == "hello":
            body = json.loads(data)
            holder = body.get("holder")
            self.holder = Holder.from_dict(holder) if isinstance(holder, dict) else target.holder
            self.history_seconds = float(body.get("history_seconds") or self.history_seconds)
            self.connected, self.gone_since, self.problem, self.ended = True, None, "", None
            self._status()
        elif kind in ("state", "delta"):
            try:
                state = state_from_json(data)
            except StateFormatError as exc:
                raise _Refused(f"driver at {target.url}: {exc}") from None
            if kind == "delta" and self.state is not None:
                state = merge(self.state, state, self.history_seconds)
            self.state = state
            self.states += 1
            if self.on_state is not None:
                self.on_state(state)
        elif kind == "event":
            if self.on_event is not None:
                self.on_event(data)
        elif kind == "end":
            with contextlib.suppress(ValueError, TypeError, KeyError):
                self.ended = int(json.loads(data)["code"])
            self._status()


class _Refused(Exception):
    """The server answered, but not with a stream this follower can use."""


async def first_state(url: str, token: str | None = None, timeout: float = 5.0) -> State:
    """GET /state once (tests, scripts)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)) as s, \
            s.get(f"{url.rstrip('/')}/state") as response:
        response.raise_for_status()
        return state_from_json(await response.read())



class Handover:
    """While a read-only session observes (nobody drove when it started), watches the release's
    lease for the first driver whose state server listens: from then on the session follows that
    driver instead of evaluating gates itself, so two screens never disagree about the release."""

    def __init__(self, lease: Lease, what: str, release: str, *, token: str | None = None,
                 poll: float = 0.5):
        self.lease = lease
        self.what = what  # the spec, as the user named it
        self.release = release
        self.token = token
        self.poll = poll
        self.holder: Holder | None = None  # the driver that took the lease, once one did
        # what ends the observing run once its screen follows (its adapters, its local stack)
        self.on_taken: Callable[[], Awaitable[None]] | None = None

    async def wait(self) -> Holder:
        """Return once somebody drives (and says where to attach)."""
        while True:
            try:
                holder = await self.lease.holder()
            except LeaseError:
                holder = None  # an unreadable lease: keep observing, look again
            if holder is not None and holder.attach:
                self.holder = holder
                return holder
            await asyncio.sleep(self.poll)

    def taken(self) -> str:
        """"" while nobody drives; then the one line that says who does and that we follow."""
        if self.holder is None:
            return ""
        return f"{self.holder.identity} now drives {self.release}: following it at {self.holder.attach}"

    def follower(self) -> Follower:
        """A follower of whoever holds the lease (this driver now, the next one later)."""
        follower = Follower(LeaseLocator(self.lease, self.what), token=self.token)
        follower.holder = self.holder
        return follower
