"""The HTTP client of the tick's hot paths: one keep-alive aiohttp session per event loop.

Each tick reads every instance's /metrics and /healthz and the local router's weights. With
httpx each of those GETs cost about 1 ms of CPU on 127.0.0.1 (httpcore, anyio and h11 layers),
half of the driver's whole tick; aiohttp's client does the same GET for about a fifth of that.
aiohttp is already what the local router serves with, so this adds no dependency.

An aiohttp session belongs to the loop it was made in, and the adapters using it are built
before any loop runs (and tests may run one adapter in two `asyncio.run` calls), so the
session is made on first use and made again when the loop changed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp


@dataclass(frozen=True)
class Answer:
    """A whole HTTP answer: status, body text (charset of the answer, else UTF-8)."""

    status: int
    text: str


def _limits(seconds: float) -> aiohttp.ClientTimeout:
    """Bounds as httpx set them: `seconds` to get a connection and between two reads, no bound
    on the whole (callers that want one wrap the call in asyncio.wait_for)."""
    return aiohttp.ClientTimeout(total=None, connect=seconds, sock_read=seconds)


class LoopSession:
    """A lazily made aiohttp.ClientSession: no proxy from the environment, no redirects
    followed (an instance's /metrics answering 301 is an answer, as it was with httpx)."""

    def __init__(self, timeout: float, base_url: str | None = None) -> None:
        self.timeout = timeout
        self.base_url = base_url
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is not None and self._loop is not loop:
            self._drop()
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                base_url=self.base_url, trust_env=False,
                timeout=_limits(self.timeout))
            self._loop = loop
        return self._session

    def _drop(self) -> None:
        """Let go of a session of another loop that nobody closed: it cannot be closed from
        this loop (its sockets are left to the garbage collector), but this loop must not
        fail on it."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            session.detach()

    async def request(self, method: str, url: str, *, json: object = None,
                      timeout: float | None = None) -> Answer:
        """Send one request and read its whole answer (so the connection is kept for reuse)."""
        # aiohttp reads timeout=None as "no timeout": leave it out to keep the session's
        extra = {"timeout": _limits(timeout)} if timeout is not None else {}
        async with self.session().request(method, url, json=json, allow_redirects=False,
                                          **extra) as response:
            body = await response.read()
            charset = response.charset or "utf-8"
        try:
            text = body.decode(charset, errors="replace")
        except LookupError:  # a charset Python does not know
            text = body.decode("utf-8", errors="replace")
        return Answer(response.status, text)

    async def get(self, url: str) -> Answer:
        return await self.request("GET", url)

    async def close(self) -> None:
        """Close the session if it belongs to the running loop; one of a finished loop is
        only dropped (its loop is gone, so are its connections)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not self._loop:
            self._drop()
            return
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()
