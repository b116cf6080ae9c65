"""What the outside world must offer the engine. Adapters in `collectors/` satisfy these.

All methods are async so the driver can bound each one with a timeout and run them
concurrently; adapters built on blocking libraries wrap their calls in a thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from strategies.cohorts import Route
from strategies.model import MetricsSnapshot, PlatformSnapshot, Severity, no_entries


@dataclass(frozen=True)
class RawCounters:
    """Cumulative counters of one version as scraped: the raw material of rates and replays."""

    version: str
    at: float
    requests_total: float
    errors_total: float
    latency_buckets: Mapping[str, float] = field(default_factory=no_entries)  # upper bound ("0.1", "+Inf") -> count
    latency_sum: float | None = None
    # more cumulative counters, by the key the sample reports them under (an A/B experiment's
    # successes and trials: strategies.experiment); optional in traces, so old traces still read
    custom: Mapping[str, float] = field(default_factory=no_entries)


class PlatformError(Exception):
    """A platform or router call failed; the message is one line meant for people."""


@runtime_checkable
class Platform(Protocol):
    """Where versions run: reports instances and pulls the scale lever."""

    kind: str

    async def snapshot(self, versions: Sequence[str], now: float) -> PlatformSnapshot: ...

    async def scale(self, version: str, replicas: int) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class TrafficRouter(Protocol):
    """Who splits traffic between versions. Weights are percents that add up to 100."""

    kind: str

    async def set_weights(self, weights: Mapping[str, int]) -> None: ...

    async def weights(self) -> Mapping[str, float]: ...

    async def close(self) -> None: ...


@runtime_checkable
class CohortRouter(Protocol):
    """A router that can also route by who sends a request: cohort rules, a sticky user key
    and a mirror (`strategies.cohorts`). Rings, A/B and dark launch need one."""

    async def set_route(self, route: Route) -> None: ...


@runtime_checkable
class MetricSource(Protocol):
    """How versions behave over the analysis window, one sample per version."""

    name: str

    async def collect(
        self, versions: Sequence[str], platform: PlatformSnapshot | None, now: float
    ) -> MetricsSnapshot: ...

    async def close(self) -> None: ...


@runtime_checkable
class RawCounterSource(Protocol):
    """A metric source that can also hand out the raw counters it read (for --record)."""

    def last_raw(self) -> Sequence[RawCounters]: ...


@dataclass(frozen=True)
class Alert:
    """A notification for people: firing or resolved, deduplicated by `key`."""

    key: str
    name: str  # alertname
    service: str
    version: str
    severity: Severity
    status: str  # "firing" | "resolved"
    summary: str
    starts_at: float
    ends_at: float | None = None
    details: Mapping[str, object] = field(default_factory=no_entries)


@runtime_checkable
class AlertSink(Protocol):
    """Somewhere alerts go: stdout, a webhook, Slack, Alertmanager."""

    name: str
    min_severity: Severity

    async def send(self, alert: Alert) -> None: ...

    async def close(self) -> None: ...
