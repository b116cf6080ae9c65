"""What the outside world must offer the engine. Adapters in `collectors/` satisfy these.

All methods are async so the driver can bound each one with a timeout and run them
concurrently; adapters built on blocking libraries wrap their calls in a thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from strategies.cohorts import Route
from strategies.model import Event, MetricsSnapshot, PlatformSnapshot, Severity, Snapshot, State, no_entries


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
class RouteReadback(Protocol):
    """A cohort router that can read its route back cheaply, so reconcile holds it each tick
    like the weights: given the route the journal wants (and the weights its sticky slots
    follow, None when unknown: the sticky slots are then not compared), it returns one line per
    difference it sees, empty when the route is in place. It never changes anything."""

    async def route_differences(self, route: Route, weights: Mapping[str, int] | None
                                ) -> tuple[str, ...]: ...


@runtime_checkable
class WeightLever(Protocol):
    """Anything that can set traffic weights: a router, or a platform that splits traffic itself
    (Kubernetes' httproute/argo levers), for `[router] kind = "platform"`."""

    async def set_weights(self, weights: Mapping[str, int]) -> None: ...


@runtime_checkable
class BackendSync(Protocol):
    """A router whose backends must follow the platform's instances (the built-in router,
    HAProxy): the driver hands it each platform snapshot before reading its weights."""

    async def sync_backends(self, snapshot: PlatformSnapshot) -> object: ...


@runtime_checkable
class RouterProcess(Protocol):
    """A router releasedeck runs as its own process and whose weights it can only report from
    what it last told it (nginx: its workers cannot be asked). It says whether that process
    still serves, so the driver reports a dead one as such (`PlatformSnapshot.router_down`)
    instead of its remembered weights; reconcile then re-applies the journal's targets, and
    the lever call that does it starts the router again from them."""

    async def down(self) -> str:
        """"" while the process serves; else one line saying what was found."""
        ...


@runtime_checkable
class Startable(Protocol):
    """An adapter that must be started inside the running event loop before the first tick
    (e.g. the built-in router's process). `start` is idempotent."""

    async def start(self) -> object: ...


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


# --------------------------------------------------------------------------- session parts


@runtime_checkable
class EventListener(Protocol):
    """Hears every event of a run (decisions and others), in order, inside the tick."""

    def on_event(self, event: Event) -> None: ...


@runtime_checkable
class StateListener(Protocol):
    """Receives each published State: the app, followers, alerts, a state server."""

    def on_state(self, state: State) -> None: ...


@runtime_checkable
class SnapshotListener(Protocol):
    """Sees each tick's collection and the raw counters behind it (the trace recorder)."""

    def on_snapshot(self, snapshot: Snapshot, raw: Sequence[RawCounters]) -> None: ...


@runtime_checkable
class TickListener(Protocol):
    """Hears how long each tick took (the state server's /metrics)."""

    def on_tick(self, seconds: float | None) -> None: ...


@runtime_checkable
class JudgedListener(Protocol):
    """Hears the time the engine judges each tick at, before it judges (the trace recorder:
    a replay must judge at that very time; neither the collection's nor the State's is it)."""

    def on_judged(self, at: float) -> None: ...


Listener = EventListener | StateListener | SnapshotListener | TickListener | JudgedListener
