"""A recorded trace as the outside world: metric source, platform and router for a replay.

The replay runs the live Driver and Engine over these adapters, so a replayed release takes the
same path as a live one. The loop is open: levers "work" at once (scale and set_weights are
accepted and remembered), but the traffic the metrics show is the traffic that was recorded,
so the engine's decisions never change the trace.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from strategies.cohorts import Route
from strategies.model import (
    EMPTY,
    Instance,
    MetricSample,
    MetricsSnapshot,
    PlatformSnapshot,
    Tally,
    VersionStatus,
    frozen_map,
)
from strategies.ports import RawCounters
from strategies.rates import counted_between, sample_from_counters
from strategies.spec import ReleaseSpec
from strategies.trace import TraceRecord, TraceTick

NO_DATA = "no data in the trace at this time"
MAX_GAP_TICKS = 10_000  # per gap, for traces without tick lines


@dataclass(frozen=True)
class Collection:
    """The lines of one collection: at most one record per version, ticked at `at`."""

    at: float
    records: Mapping[str, TraceRecord] = field(default_factory=dict)


def group_collections(records: Iterable[TraceRecord], interval: float) -> list[Collection]:
    """Records in time order, grouped into collections.

    The versions of one live collection are scraped a few milliseconds apart, so lines belong
    together while they are within half an interval of the group's first line and no version
    repeats. A collection is ticked at its latest line, when all its scrapes were in.
    """
    ordered = sorted(records, key=lambda r: r.counters.at)
    out: list[Collection] = []
    current: dict[str, TraceRecord] = {}
    first = 0.0
    for record in ordered:
        at = record.counters.at
        if current and (record.counters.version in current or at - first > interval / 2):
            out.append(Collection(max(r.counters.at for r in current.values()), current))
            current = {}
        if not current:
            first = at
        current[record.counters.version] = record
    if current:
        out.append(Collection(max(r.counters.at for r in current.values()), current))
    return out


def gap_ticks(previous: float, following: float, interval: float) -> list[float]:
    """Ticks a live driver would have made (and failed to collect at) inside a gap.

    Only for a real gap (at least two intervals): a loaded live run ticks a little slower
    than its interval, and that must not read as a missed collection.
    """
    if following - previous < 2 * interval:
        return []
    out: list[float] = []
    t = previous + interval
    while t < following - interval / 2 and len(out) < MAX_GAP_TICKS:
        out.append(t)
        t += interval
    return out


@dataclass(frozen=True)
class Tick:
    """One replayed tick: collected at `at` (None collection: it failed), decided at `decided`."""

    at: float
    collection: Collection | None = None
    decided: float | None = None  # the live engine's time, when the trace recorded it

    @property
    def engine_at(self) -> float:
        return self.at if self.decided is None else max(self.at, self.decided)


def timeline(collections: Sequence[Collection], ticks: Iterable[TraceTick],
             interval: float) -> list[Tick]:
    """When to tick and with which collection.

    With recorded tick lines the replay ticks exactly when the live run did, at the engine
    times it recorded; without them, at each collection, plus interval-spaced failed ticks
    inside gaps.
    """
    recorded = sorted(ticks, key=lambda t: t.at)
    if not recorded:
        out: list[Tick] = []
        previous: float | None = None
        for collection in collections:
            if previous is not None:
                out.extend(Tick(t) for t in gap_ticks(previous, collection.at, interval))
            out.append(Tick(collection.at, collection))
            previous = collection.at
        return out
    times = [c.at for c in collections]
    merged = {i: Tick(c.at, c) for i, c in enumerate(collections)}
    failed: list[Tick] = []
    for tick in recorded:
        i = bisect.bisect_left(times, tick.at)
        near = [j for j in (i - 1, i) if 0 <= j < len(times)
                and abs(times[j] - tick.at) < interval / 2]
        if near:
            j = min(near, key=lambda k: abs(times[k] - tick.at))
            merged[j] = Tick(times[j], collections[j], tick.decided)
        else:
            failed.append(Tick(tick.at, None, tick.decided))
    return sorted([*merged.values(), *failed], key=lambda t: t.at)


class TraceMetricSource:
    """Turns the recorded raw counters into samples with the live computation.

    Only the counters of the last `window` are kept per version. A version without a line in
    this collection still gets a sample from the counters of its window (as the scrape source
    does when one scrape fails), until its last line is older than metrics.stale_after: then
    it gets none, and the engine treats it as having no data. A tick with no collection at all
    (a failed live collection, or a gap) answers with an error.
    """

    name = "trace"

    def __init__(self, spec: ReleaseSpec):
        self.window = spec.metrics.window
        self.stale_after = spec.metrics.stale_after
        self.history: dict[str, deque[RawCounters]] = {}
        self.tallies: dict[str, Tally] = {}  # version -> everything counted so far
        self.current: Collection | None = None

    def feed(self, collection: Collection | None) -> None:
        self.current = collection
        if collection is None:
            return
        for version, record in collection.records.items():
            series = self.history.setdefault(version, deque())
            if series:
                self.tallies[version] = self.tallies.get(version, Tally()).plus(
                    counted_between(series[-1], record.counters))
            series.append(record.counters)

    async def collect(self, versions: Sequence[str], platform: PlatformSnapshot | None,
                      now: float) -> MetricsSnapshot:
        if self.current is None:
            return MetricsSnapshot(at=now, source=self.name, error=NO_DATA)
        # Live, the samples are computed at the collection's time; the engine's may be later.
        at = self.current.at
        samples: dict[str, MetricSample] = {}
        for version in versions:
            series = self.history.get(version)
            if not series or at - series[-1].at > self.stale_after:
                continue
            while series and series[0].at <= at - self.window:
                series.popleft()
            samples[version] = replace(sample_from_counters(version, series, at, self.window),
                                       tally=self.tallies.get(version, Tally()),
                                       custom=frozen_map(series[-1].custom) if series else EMPTY)
        return MetricsSnapshot(at=at, samples=frozen_map(samples), source=self.name)

    def last_raw(self) -> Sequence[RawCounters]:
        if self.current is None:
            return ()
        return tuple(r.counters for r in self.current.records.values())

    async def close(self) -> None:
        return None


class TracePlatform:
    """Instances as recorded (`ready`/`total` on the lines) or, if not recorded, as ordered."""

    kind = "trace"

    def __init__(self, spec: ReleaseSpec):
        self.replicas: dict[str, int] = dict.fromkeys(spec.versions, spec.platform.replicas)
        self.seen: dict[str, TraceRecord] = {}
        self.scaled: list[tuple[str, int]] = []

    def feed(self, collection: Collection | None) -> None:
        if collection is not None:
            self.seen.update(collection.records)

    async def snapshot(self, versions: Sequence[str], now: float) -> PlatformSnapshot:
        statuses = {}
        for version in versions:
            record = self.seen.get(version)
            wanted = self.replicas.get(version, 0)
            ready = record.ready if record is not None and record.ready is not None else wanted
            total = record.total if record is not None and record.total is not None else ready
            instances = tuple(Instance(id=f"{version}-{i}", version=version, ready=i < ready,
                                       state="recorded") for i in range(max(ready, total)))
            statuses[version] = VersionStatus(version=version, instances=instances,
                                              desired=wanted)
        return PlatformSnapshot(at=now, versions=frozen_map(statuses))

    async def scale(self, version: str, replicas: int) -> None:
        self.replicas[version] = replicas
        self.scaled.append((version, replicas))

    async def close(self) -> None:
        return None


class TraceRouter:
    """Accepts every weight at once; reports the recorded weights where the trace has them."""

    kind = "trace"

    def __init__(self, spec: ReleaseSpec):
        self.desired: dict[str, float] = {spec.release.baseline: 100.0,
                                          spec.release.candidate: 0.0}
        self.recorded: dict[str, float] = {}
        self.history: list[Mapping[str, int]] = []
        self.routes: list[Route] = []

    def feed(self, collection: Collection | None) -> None:
        if collection is None:
            return
        for version, record in collection.records.items():
            if record.weight is not None:
                self.recorded[version] = record.weight

    async def set_weights(self, weights: Mapping[str, int]) -> None:
        self.desired.update({k: float(v) for k, v in weights.items()})
        self.history.append(dict(weights))

    async def weights(self) -> Mapping[str, float]:
        return {**self.desired, **self.recorded}

    async def set_route(self, route: Route) -> None:
        """Rings, sticky users and mirror in a replay: remembered, like the weights."""
        self.routes.append(route)

    async def close(self) -> None:
        return None
