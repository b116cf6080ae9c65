"""The embedded default metric source: scrape every instance's /metrics ourselves.

No Prometheus needed. Each ready instance is scraped concurrently; its cumulative counters are
kept in a short per-instance history, and a version's numbers are computed the way PromQL's
`sum by (version) (rate(...))` would: increase per instance first, then the sum ("rate then
sum"), so one instance restarting is a counter reset of that instance only and never a
negative rate. The counter math itself lives in strategies.rates, shared with trace replay.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp

from collectors.deadlines import answer_budget
from collectors.exposition import ExpositionError, families
from collectors.loop_session import LoopSession
from strategies.experiment import SUCCESS_KEY, TRIALS_KEY
from strategies.model import MetricSample, MetricsSnapshot, PlatformSnapshot, Tally, frozen_map
from strategies.ports import RawCounters
from strategies.rates import bucket_labels, counter_growth, counter_increase, histogram_quantile, parse_bound
from strategies.spec import MetricsSpec, ReleaseSpec

QUANTILES = (0.5, 0.95, 0.99)
MAX_POINTS = 4096  # per instance: a hard bound whatever the collection rate


@dataclass(frozen=True)
class Counters:
    """One instance's cumulative counters at one scrape (summed over its other labels)."""

    requests: float
    errors: float
    buckets: Mapping[str, float] = field(default_factory=dict)  # `le` label -> cumulative count
    latency_sum: float | None = None
    counters: Mapping[str, float] = field(default_factory=dict)  # other counters asked for, by name


class ScrapeError(Exception):
    """An instance did not give us usable metrics; the message is a short reason."""


def parse_counters(text: str, *, service: str, request_metric: str, latency_metric: str,
                   error_codes: re.Pattern[str]) -> Counters:
    """Text exposition format → Counters; series of another `service` label are ignored."""
    split = parse_counters_by(text, None, service=service, request_metric=request_metric,
                              latency_metric=latency_metric, error_codes=error_codes)
    return split.get("", Counters(requests=0.0, errors=0.0))


def parse_counters_by(text: str, label: str | None, *, service: str, request_metric: str,
                      latency_metric: str, error_codes: re.Pattern[str],
                      counters: Sequence[str] = ()) -> dict[str, Counters]:
    """Counters per value of `label` (a flag's `variant`); label None sums all under "".

    Series without the label are left out when splitting: they belong to no variant.
    `counters`: more counter names (an experiment's orders and visits) summed as they are.
    """
    sums = _Sums(request_metric, latency_metric, error_codes, counters)
    declared = False
    base = request_metric.removesuffix("_total")
    try:
        parsed = families(text)
    except ExpositionError as exc:
        raise ScrapeError(str(exc)) from exc
    for family in parsed:
        if family.name in (request_metric, base):
            declared = True
        for sample in family.samples:
            labels = sample.labels
            if labels.get("service", service) != service or math.isnan(sample.value):
                continue
            key = "" if label is None else labels.get(label)
            if key is not None:
                sums.add(key, sample.name, labels, sample.value)
    if not declared:
        raise ScrapeError(f"exports no {request_metric}")
    return sums.by_key(include_total=label is None)


class _Sums:
    """Running sums per split key while one exposition is read: requests (and those whose code
    counts as an error), latency buckets and sum, and any extra counters."""

    def __init__(self, request_metric: str, latency_metric: str, error_codes: re.Pattern[str],
                 counters: Sequence[str]) -> None:
        self.request_metric, self.error_codes, self.counters = request_metric, error_codes, counters
        self.bucket_name, self.sum_name = f"{latency_metric}_bucket", f"{latency_metric}_sum"
        self.others: dict[str, dict[str, float]] = {}
        self.requests: dict[str, float] = {}
        self.errors: dict[str, float] = {}
        self.latency_sum: dict[str, float] = {}
        self.buckets: dict[str, dict[str, float]] = {}

    def add(self, key: str, name: str, labels: Mapping[str, str], value: float) -> None:
        if name == self.request_metric:
            self.requests[key] = self.requests.get(key, 0.0) + value
            if self.error_codes.fullmatch(labels.get("code", "")):
                self.errors[key] = self.errors.get(key, 0.0) + value
        elif name == self.bucket_name and "le" in labels:
            mine = self.buckets.setdefault(key, {})
            mine[labels["le"]] = mine.get(labels["le"], 0.0) + value
        elif name == self.sum_name:
            self.latency_sum[key] = self.latency_sum.get(key, 0.0) + value
        elif name in self.counters:
            mine = self.others.setdefault(key, {})
            mine[name] = mine.get(name, 0.0) + value

    def by_key(self, *, include_total: bool) -> dict[str, Counters]:
        """Every key seen with requests or buckets; unsplit, the total "" even when empty."""
        keys = set(self.requests) | set(self.buckets) | ({""} if include_total else set())
        return {key: Counters(requests=self.requests.get(key, 0.0), errors=self.errors.get(key, 0.0),
                              buckets=self.buckets.get(key, {}), latency_sum=self.latency_sum.get(key),
                              counters=self.others.get(key, {}))
                for key in keys}


@dataclass
class _History:
    version: str
    points: deque[tuple[float, Counters]] = field(default_factory=lambda: deque(maxlen=MAX_POINTS))


class ScrapeSource:
    """MetricSource (and RawCounterSource) that reads instances' /metrics directly."""

    name = "scrape"

    def __init__(self, spec: MetricsSpec, service: str, *, split_label: str | None = None,
                 workloads: Sequence[str] = (), counters: Mapping[str, str] | None = None):
        self.spec = spec
        self.service = service
        # custom metric key -> counter name: cumulative totals reported in MetricSample.custom
        self.counters = dict(counters or {})
        # A flag release: one deployment (`workloads`) serves both variants, told apart by a label.
        self.split_label = split_label
        self.workloads = tuple(workloads)
        self.budget = answer_budget(spec.timeout)  # answer before the driver's own deadline
        self._codes = re.compile(spec.error_codes)
        # Instances are scraped directly: a proxy from the environment must not sit in between.
        self._client = LoopSession(self.budget)
        self._history: dict[str, _History] = {}  # instance key -> its recent counters
        self._tallies: dict[str, Tally] = {}  # version -> everything counted since we started
        self._raw: tuple[RawCounters, ...] = ()
        self._platform: PlatformSnapshot | None = None  # last good one: where the instances are
        self.failures: Mapping[str, str] = frozen_map()  # last collection: instance -> reason
        self.failed_total = 0  # scrapes that failed since start

    @classmethod
    def for_release(cls, release: ReleaseSpec) -> ScrapeSource:
        if release.strategy.workload:
            return cls(release.metrics, release.release.service,
                       split_label=release.metrics.version_label, workloads=release.workloads)
        experiment = release.strategy.experiment
        counters = {SUCCESS_KEY: experiment.success, TRIALS_KEY: experiment.trials} \
            if experiment is not None else {}
        return cls(release.metrics, release.release.service, counters=counters)

    def _targets(self, versions: Sequence[str], platform: PlatformSnapshot) -> dict[str, tuple[str, str]]:
        """instance key -> (version, metrics URL) for every ready instance we can reach."""
        out: dict[str, tuple[str, str]] = {}
        # A flag release scrapes the workload's instances once and splits them by label.
        for version in (self.workloads if self.split_label else versions):
            for inst in platform.version(version).instances:
                url = inst.metrics_url or (f"http://{inst.address}{self.spec.metrics_path}" if inst.address else "")
                if inst.ready and url:
                    out[f"{version}/{inst.id}@{url}"] = (version, url)
        return out

    async def _scrape(self, url: str) -> dict[str, Counters]:
        try:
            response = await asyncio.wait_for(self._client.get(url), timeout=self.budget)
        except TimeoutError as exc:
            raise ScrapeError(f"no answer within {self.budget:g}s") from exc
        except aiohttp.ClientConnectorError as exc:  # refused, unroutable ...: one reason
            raise ScrapeError("cannot connect") from exc
        except (aiohttp.ClientError, ValueError) as exc:  # ValueError: a URL it cannot send to
            raise ScrapeError(f"request failed ({type(exc).__name__})") from exc
        if response.status != 200:
            raise ScrapeError(f"answered HTTP {response.status}")
        return parse_counters_by(response.text, self.split_label, service=self.service,
                                 request_metric=self.spec.request_metric,
                                 latency_metric=self.spec.latency_metric, error_codes=self._codes,
                                 counters=tuple(self.counters.values()))

    async def collect(self, versions: Sequence[str], platform: PlatformSnapshot | None,
                      now: float) -> MetricsSnapshot:
        """Scrape, remember, and compute each version's sample over (now - window, now]."""
        if platform is not None and not platform.error:
            self._platform = platform
        platform = self._platform
        if platform is None:
            return MetricsSnapshot(at=now, source=self.name,
                                   error="scrape: no instances known yet (waiting for the platform)")
        targets = self._targets(versions, platform)
        results = await asyncio.gather(*(self._scrape(url) for _, url in targets.values()),
                                       return_exceptions=True)
        failures: dict[str, str] = {}
        for (key, (version, url)), result in zip(targets.items(), results, strict=True):
            if isinstance(result, ScrapeError):
                failures[key.split("@")[0]] = f"{url}: {result}"
            elif isinstance(result, BaseException):
                raise result  # a bug of ours: let the driver report it
            elif self.split_label is None:
                self._remember(key, version, now, result[""])
            else:  # one history per (instance, variant): "rate then sum" by the label, as PromQL would
                for variant in versions:
                    counters = result.get(variant, Counters(requests=0.0, errors=0.0))
                    self._remember(f"{key}#{variant}", variant, now, counters)
        self.failures = frozen_map(failures)
        self.failed_total += len(failures)
        self._prune(now)
        if not targets:
            return MetricsSnapshot(at=now, source=self.name,
                                   error="scrape: no ready instance with a metrics address to scrape")
        if len(failures) == len(targets):
            first = next(iter(failures.values()))
            return MetricsSnapshot(at=now, source=self.name,
                                   error=f"scrape: none of {len(targets)} instances answered ({first})")
        samples = {v: self._sample(v, now) for v in versions}
        self._raw = self._summed(versions, now)
        return MetricsSnapshot(at=now, samples=frozen_map(samples), source=self.name)

    def _remember(self, key: str, version: str, now: float, counters: Counters) -> None:
        history = self._history.setdefault(key, _History(version))
        if history.points:
            self._count(version, history.points[-1][1], counters)
        history.points.append((now, counters))

    def _count(self, version: str, before: Counters, after: Counters) -> None:
        """Add what one instance served between two of its scrapes to its version's tally
        (a counter that went down was reset: what it shows now was counted since)."""
        buckets = {le: counter_growth(before.buckets.get(le, 0.0), count)
                   for le, count in after.buckets.items()}
        served = Tally(counter_growth(before.requests, after.requests),
                       counter_growth(before.errors, after.errors), frozen_map(buckets))
        self._tallies[version] = self._tallies.get(version, Tally()).plus(served)

    def _prune(self, now: float) -> None:
        """Forget points no window will use again, and instances with nothing left."""
        oldest = now - self.spec.window - 2 * self.spec.interval
        for key in list(self._history):
            points = self._history[key].points
            while points and points[0][0] < oldest:
                points.popleft()
            if not points:
                del self._history[key]

    def _sample(self, version: str, now: float) -> MetricSample:
        start = now - self.spec.window
        requests = errors = None
        buckets: dict[float, float] = {}
        for history in self._history.values():
            if history.version != version:
                continue
            points = list(history.points)
            req = counter_increase([(t, c.requests) for t, c in points], start, now)
            if req is None:
                continue  # fewer than two scrapes of this instance in the window
            requests = (requests or 0.0) + req
            errors = (errors or 0.0) + (counter_increase([(t, c.errors) for t, c in points], start, now) or 0.0)
            for label in {le for _, c in points for le in c.buckets}:
                bound = parse_bound(label)
                series = [(t, c.buckets[label]) for t, c in points if label in c.buckets]
                increase = counter_increase(series, start, now)
                if bound is not None and increase is not None:
                    buckets[bound] = buckets.get(bound, 0.0) + increase
        ratio = None
        if requests and errors is not None:
            ratio = min(1.0, max(0.0, errors / requests))
        p50 = p95 = p99 = None
        if requests and buckets:
            p50, p95, p99 = (histogram_quantile(q, buckets) for q in QUANTILES)
        totals: dict[str, float | None] = {}
        for key, name in self.counters.items():  # cumulative, summed over the version's instances
            latest = [h.points[-1][1].counters.get(name) for h in self._history.values()
                      if h.version == version and h.points]
            totals[key] = sum(v for v in latest if v is not None) if latest and any(
                v is not None for v in latest) else None
        return MetricSample(version=version, at=now, requests=requests, custom=frozen_map(totals),
                            throughput=None if requests is None else requests / self.spec.window,
                            error_ratio=ratio, errors=errors,
                            latency_p50=p50, latency_p95=p95, latency_p99=p99,
                            latency_buckets=bucket_labels(buckets) if requests else {},
                            tally=self._tallies.get(version))

    def _summed(self, versions: Sequence[str], now: float) -> tuple[RawCounters, ...]:
        """Latest counters of every remembered instance, summed per version (for --record)."""
        out = []
        for version in versions:
            latest = [h.points[-1][1] for h in self._history.values() if h.version == version]
            if not latest:
                continue
            buckets: dict[str, float] = {}
            for counters in latest:
                for le, count in counters.buckets.items():
                    buckets[le] = buckets.get(le, 0.0) + count
            sums = [c.latency_sum for c in latest if c.latency_sum is not None]
            custom = {key: sum(c.counters.get(name, 0.0) for c in latest)
                      for key, name in self.counters.items()}
            out.append(RawCounters(version=version, at=now, requests_total=sum(c.requests for c in latest),
                                   errors_total=sum(c.errors for c in latest), latency_buckets=frozen_map(buckets),
                                   latency_sum=sum(sums) if sums else None, custom=frozen_map(custom)))
        return tuple(out)

    def last_raw(self) -> Sequence[RawCounters]:
        return self._raw

    async def close(self) -> None:
        await self._client.close()
