"""A recorded trace as the outside world: metric source, platform and router for a replay.

The replay runs the live Driver and Engine over these adapters, so a replayed release takes the
same path as a live one. The loop is open: levers are accepted and remembered, but the traffic
the metrics show is the traffic that was recorded, so the engine's decisions never change the
trace. A lever the live run pulled on the same tick takes the time it took live and fails if it
failed live (LeverLog, from the trace's action_done / action_failed lines): the times the engine
stamps after a lever (a rollback's end, from which the scale-down delay counts) are the live
ones. A lever the live run did not pull then works at once.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from strategies.cohorts import Route
from strategies.model import (
    EMPTY,
    ActionKind,
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
from strategies.trace import TraceCommand, TraceLever, TraceRecord, TraceTick

NO_DATA = "no data in the trace at this time"
MAX_GAP_TICKS = 10_000  # per gap, for traces without tick lines


@dataclass(frozen=True)
class Collection:
    """The lines of one collection: at most one record per version, ticked at `at`."""

    at: float
    records: Mapping[str, TraceRecord] = field(default_factory=dict)


class Grouper:
    """Records fed in time order, grouped into collections as they come.

    The versions of one live collection are scraped a few milliseconds apart, so lines belong
    together while they are within half an interval of the group's first line and no version
    repeats. A collection is ticked at its latest line, when all its scrapes were in.
    """

    def __init__(self, interval: float):
        self.interval = interval
        self.current: dict[str, TraceRecord] = {}
        self.first = 0.0  # time of the open group's first line

    def add(self, record: TraceRecord) -> Collection | None:
        """The collection this record closes, if any."""
        at = record.counters.at
        done = None
        if self.current and (record.counters.version in self.current
                             or at - self.first > self.interval / 2):
            done = self.close()
        if not self.current:
            self.first = at
        self.current[record.counters.version] = record
        return done

    def close(self) -> Collection | None:
        """The open group as a collection (None if there is none)."""
        if not self.current:
            return None
        current, self.current = self.current, {}
        return Collection(max(r.counters.at for r in current.values()), current)

    def earliest(self, now: float) -> float:
        """No collection still to come is ticked before this (given lines up to `now`)."""
        return self.first if self.current else now


def group_collections(records: Iterable[TraceRecord], interval: float) -> list[Collection]:
    """Records (any order) grouped into collections, in time order (see Grouper)."""
    grouper = Grouper(interval)
    out = [done for record in sorted(records, key=lambda r: r.counters.at)
           if (done := grouper.add(record)) is not None]
    last = grouper.close()
    return out if last is None else [*out, last]


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
    """One replayed tick: collected at `at` (None collection: it failed), decided at `decided`;
    `levers`: the outcomes of the levers the live run pulled on this tick, in time order."""

    at: float
    collection: Collection | None = None
    decided: float | None = None  # the live engine's time, when the trace recorded it
    levers: tuple[TraceLever, ...] = ()
    commands: tuple[TraceCommand, ...] = ()  # an operator's, given before this tick decided

    @property
    def engine_at(self) -> float:
        return self.at if self.decided is None else max(self.at, self.decided)


def unmatched(tick: TraceTick) -> Tick:
    """A recorded tick without counters lines of its own: a failed collection when the line
    says why it failed; otherwise a read that succeeded with no counters in it (a Prometheus
    that has not scraped a version yet answers so), which is not a metrics outage."""
    return Tick(tick.at, None if tick.error else Collection(tick.at), tick.decided)


def timeline(collections: Sequence[Collection], ticks: Iterable[TraceTick],
             interval: float) -> list[Tick]:
    """When to tick and with which collection (the whole trace at once: the reference that
    stream_timeline, which replay uses, is tested against).

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
            failed.append(unmatched(tick))
    return sorted([*merged.values(), *failed], key=lambda t: t.at)


class TickMatcher:
    """`timeline` with recorded ticks, for lines that come in time order: each tick takes the
    nearest collection within half an interval (the earlier on a tie; a later tick overrides an
    earlier one's decision time), or is a failed tick. Ticks and collections are held only until
    nothing still to come can change them: memory follows the interval, not the trace."""

    def __init__(self, interval: float):
        self.half = interval / 2
        self.interval = interval
        self.collections: deque[Collection] = deque()
        self.taken: dict[int, float | None] = {}  # id(collection) -> decided of its last tick
        self.ticks: deque[TraceTick] = deque()  # not yet matched
        self.failed: deque[Tick] = deque()

    def _match(self, tick: TraceTick) -> None:
        times = [c.at for c in self.collections]
        i = bisect.bisect_left(times, tick.at)
        near = [j for j in (i - 1, i) if 0 <= j < len(times) and abs(times[j] - tick.at) < self.half]
        if near:
            self.taken[id(self.collections[min(near, key=lambda k: abs(times[k] - tick.at))])] = \
                tick.decided
        else:
            self.failed.append(unmatched(tick))

    def flush(self, horizon: float) -> list[Tick]:
        """Ticks final once no collection or tick still to come is earlier than `horizon`."""
        while self.ticks and self.ticks[0].at <= horizon - self.half:
            self._match(self.ticks.popleft())
        out: list[tuple[float, int, Tick]] = []
        while self.collections and self.collections[0].at <= horizon - self.interval:
            collection = self.collections.popleft()
            out.append((collection.at, 0, Tick(collection.at, collection,
                                               self.taken.pop(id(collection), None))))
        while self.failed and self.failed[0].at <= horizon - self.interval:
            tick = self.failed.popleft()
            out.append((tick.at, 1, tick))
        out.sort(key=lambda entry: entry[:2])
        return [tick for _at, _kind, tick in out]


Line = TraceRecord | TraceTick | TraceLever | TraceCommand


@dataclass
class Recorded:
    """The live run's levers' outcomes and operator commands, read ahead of the ticks."""

    levers: deque[TraceLever] = field(default_factory=deque)
    commands: deque[TraceCommand] = field(default_factory=deque)

    def lines(self, lines: Iterable[Line]) -> Iterator[TraceRecord | TraceTick]:
        """The counters and tick lines; the rest kept here as they pass."""
        for line in lines:
            if isinstance(line, TraceLever):
                self.levers.append(line)
            elif isinstance(line, TraceCommand):
                self.commands.append(line)
            else:
                yield line


def stream_timeline(lines: Iterable[Line], interval: float, *,
                    recorded_ticks: bool) -> Iterator[Tick]:
    """`timeline(group_collections(records), ticks, interval)` for lines already in time order,
    one tick at a time (replay streams a trace of any length through this), each tick with the
    levers' outcomes and commands the live run recorded for it (see with_recorded)."""
    recorded = Recorded()
    ticks = _ticks(recorded.lines(lines), interval, recorded_ticks=recorded_ticks)
    return with_recorded(ticks, recorded)


def with_recorded(ticks: Iterable[Tick], recorded: Recorded) -> Iterator[Tick]:
    """Each tick with the operator's commands recorded before its decision (and after the last
    tick's), and the levers' outcomes recorded from its decision on and before the next tick:
    a live driver pulls a tick's levers inside that tick, so these are the ones it pulled then.
    `recorded` fills as the lines are read; a tick is handed on once the next one is known,
    when every line before that one has been read."""
    pending: Tick | None = None
    for tick in ticks:
        if pending is not None:
            yield _levered(pending, recorded, tick.at)
        pending = tick
    if pending is not None:
        yield _levered(pending, recorded, math.inf)


def _levered(tick: Tick, recorded: Recorded, before: float) -> Tick:
    commands = []
    while recorded.commands and recorded.commands[0].at < tick.engine_at:
        commands.append(recorded.commands.popleft())
    own = []
    levers = recorded.levers
    while levers and levers[0].at < before:
        lever = levers.popleft()
        if lever.at >= tick.engine_at:  # earlier ones were a command's (they answer at once)
            own.append(lever)
    if not own and not commands:
        return tick
    return replace(tick, levers=tuple(own), commands=tuple(commands))


def _ticks(lines: Iterable[TraceRecord | TraceTick], interval: float, *,
           recorded_ticks: bool) -> Iterator[Tick]:
    grouper = Grouper(interval)
    if not recorded_ticks:
        previous: float | None = None
        for collection in _collections(grouper, lines):
            if previous is not None:
                yield from (Tick(t) for t in gap_ticks(previous, collection.at, interval))
            yield Tick(collection.at, collection)
            previous = collection.at
        return
    matcher = TickMatcher(interval)
    for line in lines:
        if isinstance(line, TraceTick):
            matcher.ticks.append(line)
            now = line.at
        else:
            now = line.counters.at
            if (done := grouper.add(line)) is not None:
                matcher.collections.append(done)
        yield from matcher.flush(grouper.earliest(now))
    if (last := grouper.close()) is not None:
        matcher.collections.append(last)
    yield from matcher.flush(math.inf)


def _collections(grouper: Grouper,
                 lines: Iterable[TraceRecord | TraceTick]) -> Iterator[Collection]:
    for line in lines:
        if isinstance(line, TraceRecord) and (done := grouper.add(line)) is not None:
            yield done
    if (last := grouper.close()) is not None:
        yield last


class TraceClock:
    """The replay's clock: the trace time of the tick being replayed, moved on by levers that
    took time live (LeverLog)."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


class LeverLog:
    """The levers' outcomes the live run recorded on the tick being replayed.

    A replay lever that the live run pulled on this tick (the same kind, value and version, in
    order) moves the clock to when the live driver had its answer, and fails with the live
    reason if it failed live. Anything else (a lever live did not pull then, a trace without
    event lines) works at once, as it always did."""

    def __init__(self, clock: TraceClock):
        self.clock = clock
        self.levers: list[TraceLever] = []
        self.matched = 0  # levers that took their recorded time (for the summary)

    def feed(self, levers: Sequence[TraceLever]) -> None:
        self.levers = list(levers)

    def pulled(self, kinds: tuple[str, ...], value: int | None, version: str = "") -> None:
        """A replay lever was pulled: take the live one's time (and failure) if it has one.
        `value` None matches any value (the route a cohort lever sets is not on the line)."""
        for index, lever in enumerate(self.levers):
            if lever.kind in kinds and lever.version == version \
                    and value in (None, lever.value):
                del self.levers[index]
                self.matched += 1
                self.clock.now = max(self.clock.now, lever.at)
                if not lever.ok:
                    raise FailedLive(lever.error)
                return


class FailedLive(RuntimeError):
    """A replay lever that failed because it failed live; the driver reports it as
    "<lever> failed: FailedLive: <the live reason>"."""

    def __init__(self, error: str):
        _lever, said, reason = error.partition(" failed: ")  # the driver names the lever again
        super().__init__(reason if said else error)


class TraceMetricSource:
    """Turns the recorded raw counters into samples with the live computation.

    Only the counters of the last `window` are kept per version. A version without a line in
    this collection still gets a sample from the counters of its window (as the scrape source
    does when one scrape fails), until its last line is older than metrics.stale_after: then
    it gets none, and the engine treats it as having no data. A tick with no collection at all
    (a failed live collection, or a gap) answers with an error.

    A line that carries the live source's own sample is judged as live judged it: on that very
    sample when the spec's window is the recorded one; otherwise on the window recomputed from
    the raw counters, with the tallies the live source had (none for Prometheus, whose gates
    counted window shares, said on screen).
    """

    name = "trace"

    def __init__(self, spec: ReleaseSpec):
        self.window = spec.metrics.window
        self.stale_after = spec.metrics.stale_after
        self.history: dict[str, deque[RawCounters]] = {}
        self.tallies: dict[str, Tally] = {}  # version -> everything counted so far
        self.latest: dict[str, TraceRecord] = {}  # version -> its latest line
        # version -> the latest live sample, for versions whose first line had one. Tallies of
        # two origins are never mixed: a version counted from the raw counters (its first line
        # had no sample) stays so; one judged on live samples keeps the last live tally over
        # a line without one (that interval is not counted: never counted from another origin).
        self.recorded: dict[str, MetricSample] = {}
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
            first = version not in self.latest
            self.latest[version] = record
            if record.sample is not None and (first or version in self.recorded):
                self.recorded[version] = record.sample

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
            samples[version] = self._sample(version, series, at)
        return MetricsSnapshot(at=at, samples=frozen_map(samples), source=self.name)

    def _sample(self, version: str, series: Sequence[RawCounters], at: float) -> MetricSample:
        latest = self.latest.get(version)
        recorded = self.recorded.get(version)
        computed = sample_from_counters(version, series, at, self.window)
        if recorded is None:  # no live sample kept: counted here, as the scrape source counts
            return replace(computed, tally=self.tallies.get(version),
                           custom=frozen_map(series[-1].custom) if series else EMPTY)
        here = self.current is not None and self.current.records.get(version) is latest
        if here and latest is not None and latest.sample is recorded \
                and latest.window == self.window:
            return replace(recorded, at=at)  # what the live engine judged, to the bit
        if recorded.tally is None and not here:
            return MetricSample(version=version, at=at)  # a window source's read without it
        # Another window (or a read without this version): the window from the raw counters,
        # the counts the live source had (mixing in tallies of another origin would count
        # the difference of the two as traffic).
        return replace(computed, tally=recorded.tally, custom=recorded.custom,
                       latency_buckets=computed.latency_buckets
                       if recorded.tally is not None or recorded.latency_buckets else EMPTY)

    def last_raw(self) -> Sequence[RawCounters]:
        if self.current is None:
            return ()
        return tuple(r.counters for r in self.current.records.values())

    async def close(self) -> None:
        return None


class TracePlatform:
    """Instances as recorded (`ready`/`total` on the lines) or, if not recorded, as ordered."""

    kind = "trace"

    def __init__(self, spec: ReleaseSpec, levers: LeverLog | None = None):
        self.replicas: dict[str, int] = dict.fromkeys(spec.versions, spec.platform.replicas)
        self.seen: dict[str, TraceRecord] = {}
        self.scaled: list[tuple[str, int]] = []
        self.levers = levers

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
        if self.levers is not None:
            self.levers.pulled((ActionKind.SCALE,), replicas, version)
        self.replicas[version] = replicas
        self.scaled.append((version, replicas))

    async def close(self) -> None:
        return None


class TraceRouter:
    """Accepts every weight at once; reports the recorded weights where the trace has them."""

    kind = "trace"

    def __init__(self, spec: ReleaseSpec, levers: LeverLog | None = None):
        self.candidate = spec.release.candidate
        self.levers = levers
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
        if self.levers is not None:
            self.levers.pulled((ActionKind.SET_WEIGHT,), weights.get(self.candidate))
        self.desired.update({k: float(v) for k, v in weights.items()})
        self.history.append(dict(weights))

    async def weights(self) -> Mapping[str, float]:
        return {**self.desired, **self.recorded}

    async def set_route(self, route: Route) -> None:
        """Rings, sticky users and mirror in a replay: remembered, like the weights. The driver
        applies a cohort table and a mirror the same way: either recorded kind matches."""
        if self.levers is not None:
            self.levers.pulled((ActionKind.SET_COHORTS, ActionKind.SET_MIRROR), None)
        self.routes.append(route)

    async def close(self) -> None:
        return None
