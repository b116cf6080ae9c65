"""What every alert sink shares: the JSON shape of an alert and one bounded HTTP POST."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import httpx

from strategies.model import rfc3339
from strategies.ports import Alert


class DeliveryError(Exception):
    """A sink could not deliver: one line saying where and why (never a secret, never a body)."""


def alert_dict(alert: Alert) -> dict[str, Any]:
    """The alert as plain JSON: what stdout and the generic webhook send."""
    return {
        "key": alert.key,
        "alertname": alert.name,
        "status": alert.status,
        "severity": alert.severity.value,
        "service": alert.service,
        "version": alert.version,
        "summary": alert.summary,
        "startsAt": rfc3339(alert.starts_at),
        "endsAt": rfc3339(alert.ends_at) if alert.ends_at is not None else None,
        "details": {k: _plain(v) for k, v in alert.details.items()},
    }


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def encode(body: Any) -> bytes:
    """Compact, deterministic JSON bytes: what is signed is exactly what is sent."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8")


async def post_json(client: httpx.AsyncClient, sink: str, url: str, body: bytes,
                    headers: Mapping[str, str] | None = None) -> None:
    """POST bytes as JSON; anything but 2xx, a timeout or a refused connection is a DeliveryError."""
    try:
        response = await client.post(url, content=body, headers={
            "Content-Type": "application/json", **(headers or {})})
    except httpx.TimeoutException as exc:
        raise DeliveryError(f"{sink}: {url} timed out") from exc
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{sink}: {url} unreachable ({type(exc).__name__})") from exc
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"{sink}: {url} answered HTTP {response.status_code}")


class HttpSink:
    """Base for sinks that POST: one client per sink, created in the loop that uses it."""

    name = "http"

    def __init__(self, url: str, *, timeout: float = 5.0):
        self.url = url
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout),
                                             trust_env=False)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
