"""Per-version request and error counts from HAProxy's built-in Prometheus exporter.

When nothing else measures the service (no Prometheus, no /metrics on the instances), the router
itself can: HAProxy counts responses per server and code class. `HAProxyStats` sums them per
version into `RawCounters`; `HAProxyMetricSource` turns successive reads into windowed samples
(requests, errors, error ratio, throughput). HAProxy has no per-server latency histogram, so
latency stays unmeasured (None) rather than guessed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

import httpx

from collectors.exposition import families
from strategies.model import MetricSample, MetricsSnapshot, PlatformSnapshot, frozen_map
from strategies.ports import RawCounters
from strategies.spec import ReleaseSpec

RESPONSES = "haproxy_server_http_responses_total"


class HAProxyStats:
    """Reads `haproxy_server_http_responses_total{proxy,server,code}` and sums it per version."""

    def __init__(self, url: str, backend: str, servers: Mapping[str, Sequence[str]], *,
                 timeout: float = 2.0, version_backends: Mapping[str, str] | None = None):
        self.url = url
        self.backend = backend
        self._owner = {s: v for v, names in servers.items() for s in names}
        # cohort routing (collectors.haproxy_cohorts): every server of a version's own backend
        # serves that version, so a ring's requests count on the version that answered them
        self._backend_owner = {b: v for v, b in (version_backends or {}).items()}
        self.versions = tuple(dict.fromkeys([*servers, *self._backend_owner.values()]))
        self._client = httpx.AsyncClient(timeout=timeout)

    @classmethod
    def from_spec(cls, spec: ReleaseSpec) -> HAProxyStats:
        o = spec.router.options
        servers = {str(v): ([n] if isinstance(n, str) else list(n))
                   for v, n in dict(o.get("servers") or {}).items()}
        return cls(str(o.get("stats_url", "")), str(o.get("backend") or spec.release.service),
                   servers, timeout=spec.metrics.timeout,
                   version_backends={str(v): str(b)
                                     for v, b in dict(o.get("version_backends") or {}).items()})

    async def read(self, now: float) -> list[RawCounters]:
        """Cumulative counters per version; raises RuntimeError with a one-line reason (an
        answer that is not Prometheus text raises `ExpositionError`, a RuntimeError too)."""
        try:
            answer = await self._client.get(self.url)
            answer.raise_for_status()
        except httpx.HTTPStatusError as exc:
            raise RuntimeError(f"haproxy exporter at {self.url}: HTTP {exc.response.status_code}") from exc
        except httpx.HTTPError as exc:
            raise RuntimeError(f"haproxy exporter at {self.url}: {exc or type(exc).__name__}") from exc
        requests = dict.fromkeys(self.versions, 0.0)
        errors = dict.fromkeys(self.versions, 0.0)
        seen = False
        for family in families(answer.text, f"haproxy exporter at {self.url}"):
            for s in family.samples:
                if s.name != RESPONSES:
                    continue
                proxy = s.labels.get("proxy")
                if proxy == self.backend:
                    version = self._owner.get(s.labels.get("server", ""))
                else:
                    version = self._backend_owner.get(proxy or "")
                if version is None:
                    continue
                seen = True
                requests[version] += s.value
                if s.labels.get("code") == "5xx":
                    errors[version] += s.value
        if not seen:
            raise RuntimeError(f"haproxy exporter at {self.url}: no {RESPONSES} for backend "
                               f"{self.backend!r} (is it an HTTP-mode backend?)")
        return [RawCounters(version=v, at=now, requests_total=requests[v], errors_total=errors[v])
                for v in self.versions]

    async def close(self) -> None:
        await self._client.aclose()


class HAProxyMetricSource:
    """`strategies.ports.MetricSource` (and RawCounterSource) built on `HAProxyStats`."""

    name = "haproxy"

    def __init__(self, stats: HAProxyStats, window: float = 30.0):
        self.stats = stats
        self.window = window
        self._history: deque[tuple[float, dict[str, RawCounters]]] = deque(maxlen=10_000)
        self._last: list[RawCounters] = []

    @classmethod
    def from_spec(cls, spec: ReleaseSpec) -> HAProxyMetricSource:
        """`[metrics] source = "haproxy"`: reads `[router] stats_url` over `[metrics] window`."""
        if not spec.router.options.get("stats_url"):
            raise RuntimeError(f"{spec.path}: router.stats_url: HAProxy's Prometheus exporter URL "
                               "is required for metrics source 'haproxy'")
        return cls(HAProxyStats.from_spec(spec), window=spec.metrics.window)

    async def collect(self, versions: Sequence[str], platform: PlatformSnapshot | None,
                      now: float) -> MetricsSnapshot:
        try:
            raw = await self.stats.read(now)
        except RuntimeError as exc:
            return MetricsSnapshot(at=now, source=self.name, error=str(exc))
        self._last = raw
        current = {r.version: r for r in raw}
        if self._history and any(current[v].requests_total < c.requests_total
                                 for v, c in self._history[-1][1].items() if v in current):
            self._history.clear()  # counters went back: HAProxy restarted, start over
        self._history.append((now, current))
        while len(self._history) > 2 and self._history[1][0] <= now - self.window:
            self._history.popleft()
        start_at, start = self._history[0]
        elapsed = now - start_at
        samples = {}
        for version in versions:
            samples[version] = _sample(version, now, start.get(version), current.get(version),
                                       elapsed)
        return MetricsSnapshot(at=now, source=self.name, samples=frozen_map(samples))

    def last_raw(self) -> Sequence[RawCounters]:
        return tuple(self._last)

    async def close(self) -> None:
        await self.stats.close()


def _sample(version: str, now: float, start: RawCounters | None, end: RawCounters | None,
            elapsed: float) -> MetricSample:
    if start is None or end is None or elapsed <= 0:
        return MetricSample(version=version, at=now)
    requests = max(0.0, end.requests_total - start.requests_total)
    errors = max(0.0, end.errors_total - start.errors_total)
    return MetricSample(
        version=version, at=now, requests=requests, errors=errors,
        throughput=requests / elapsed,
        error_ratio=(errors / requests) if requests > 0 else None)
