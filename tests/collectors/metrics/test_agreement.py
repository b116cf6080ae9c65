"""The two metric sources on the same real traffic, one through a real Prometheus server.

Three exporters (two instances of v1, one of v2) serve scripted traffic with known error
ratios and latencies. Prometheus scrapes them every second; ScrapeSource scrapes them itself.
Over the same window both must tell the same story, within the tolerance below.

Tolerance: throughput and latency quantiles within 10 % of each other, error ratio within 0.015
absolute. Why not tighter: the two read the same counters at different instants (Prometheus on
its own 1 s schedule, the scrape source every 0.5 s), so each window's edges hold a slightly
different set of requests and both extrapolate the edges from their own sample spacing; with
~1 s of a 6 s window extrapolated, a few percent is expected and 10 % leaves room for a loaded
CI machine. The error ratio is a ratio of two such counts: at 150-500 requests per window one
request is 0.2-0.7 percentage points.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from collectors.prometheus_source import PrometheusSource
from collectors.scrape_source import ScrapeSource
from strategies.model import MetricSample, MetricsSnapshot
from strategies.spec import MetricsSpec
from tests.collectors.metrics.exporter import Exporter
from tests.collectors.metrics.test_scrape import platform_of
from tests.support.prometheus import PrometheusServer

pytestmark = pytest.mark.prometheus

WINDOW = 6.0
VERSIONS = ("v1", "v2")
REL_TOLERANCE = 0.10
RATIO_TOLERANCE = 0.015
_SORTED = (0.012, 0.018, 0.022, 0.03, 0.035, 0.04, 0.045, 0.06, 0.07, 0.08,
           0.09, 0.12, 0.15, 0.2, 0.3, 0.4, 0.45, 0.6, 0.8, 0.9)
# Interleaved (stride 7, coprime with 20) so the part of a cycle cut by a window edge holds
# short and long requests alike instead of a run of only short or only long ones.
V1_LATENCIES = tuple(_SORTED[(i * 7) % len(_SORTED)] for i in range(len(_SORTED)))
V2_LATENCIES = tuple(x * 2.5 for x in V1_LATENCIES)


@dataclass
class Stack:
    server: PrometheusServer
    exporters: list[Exporter]
    query_log: Path

    def spec(self) -> MetricsSpec:
        return MetricsSpec(source="prometheus", url=self.server.url, window=WINDOW, interval=0.5, timeout=2.0)

    def platform(self):
        return platform_of([(e.version, f"{e.version}-{i}", e.metrics_url) for i, e in enumerate(self.exporters)])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus binary not found on PATH (Debian package 'prometheus')")
    exporters = [
        Exporter("checkout", "v1", rate=40.0, error_every=50, latencies=V1_LATENCIES),
        Exporter("checkout", "v1", rate=40.0, error_every=50, latencies=V1_LATENCIES),
        Exporter("checkout", "v2", rate=30.0, error_every=8, latencies=V2_LATENCIES),
    ]
    workdir = tmp_path_factory.mktemp("prometheus")
    server = PrometheusServer(workdir)
    query_log = workdir / "queries.log"
    try:
        for exporter in exporters:
            exporter.start()
        server.start({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "query_log_file": str(query_log)},
            "scrape_configs": [{"job_name": "apps",
                                "static_configs": [{"targets": [e.address for e in exporters]}]}],
        })
        yield Stack(server, exporters, query_log)
    finally:
        server.stop()
        for exporter in exporters:
            exporter.stop()


def full_window(stack: Stack) -> bool:
    """Prometheus holds a whole window of scrapes of every target."""
    scrapes = stack.server.scalar(f'min(count_over_time(up{{job="apps"}}[{int(WINDOW)}s]))', at=time.time())
    return scrapes is not None and scrapes >= WINDOW


def close(a: float | None, b: float | None, tolerance: float) -> bool:
    assert a is not None and b is not None
    return abs(a - b) <= tolerance * max(abs(a), abs(b))


def read_both(stack: Stack, pairs: int) -> list[tuple[MetricsSnapshot, MetricsSnapshot]]:
    """Warm the scrape history up to a full window, then read both sources at the same moments."""
    spec, platform = stack.spec(), stack.platform()

    async def main() -> list[tuple[MetricsSnapshot, MetricsSnapshot]]:
        scrape = ScrapeSource(spec, "checkout")
        prom = PrometheusSource(spec, "checkout", histograms=True)
        loop = asyncio.get_running_loop()
        started, deadline = loop.time(), loop.time() + 45.0
        try:
            while True:
                warm = await scrape.collect(VERSIONS, platform, time.time())
                assert warm.error is None, warm.error
                if loop.time() - started > WINDOW + 0.5 and await asyncio.to_thread(full_window, stack):
                    break
                assert loop.time() < deadline, "no full window of data within 45 s"
                await asyncio.sleep(0.5)
            out = []
            for _ in range(pairs):
                now = time.time()
                out.append(await asyncio.gather(scrape.collect(VERSIONS, platform, now),
                                                prom.collect(VERSIONS, None, now)))
                await asyncio.sleep(0.5)
            assert {r.version for r in prom.last_raw()} == {r.version for r in scrape.last_raw()} == set(VERSIONS)
            for raw in scrape.last_raw():
                # every request is observed once: the +Inf bucket is the request count
                assert raw.latency_buckets["+Inf"] == raw.requests_total > raw.errors_total > 0
            for raw in prom.last_raw():  # its queries may straddle a scrape: nearly equal
                assert close(raw.latency_buckets["+Inf"], raw.requests_total, 0.1)
                assert raw.requests_total > raw.errors_total > 0
            return out
        finally:
            await scrape.close()
            await prom.close()

    return asyncio.run(main())


def describe(a: MetricSample, b: MetricSample) -> str:
    fields = ("throughput", "error_ratio", "latency_p50", "latency_p95", "latency_p99")
    return "; ".join(f"{f}: scrape {getattr(a, f)!r} prometheus {getattr(b, f)!r}" for f in fields)


def test_scrape_and_prometheus_agree_on_the_same_traffic(stack: Stack) -> None:
    pairs = read_both(stack, pairs=3)
    truth = {"v1": (80.0, 1 / 50), "v2": (30.0, 1 / 8)}
    for scraped, queried in pairs:
        assert scraped.error is None and queried.error is None, (scraped.error, queried.error)
        for version in VERSIONS:
            a, b = scraped.samples[version], queried.samples[version]
            why = f"{version}: {describe(a, b)}"
            assert close(a.throughput, b.throughput, REL_TOLERANCE), why
            assert a.error_ratio is not None and b.error_ratio is not None, why
            assert abs(a.error_ratio - b.error_ratio) <= RATIO_TOLERANCE, why
            for field in ("latency_p50", "latency_p95", "latency_p99"):
                assert close(getattr(a, field), getattr(b, field), REL_TOLERANCE), why
            # the window histograms (for Mann-Whitney gates) agree bucket by bucket
            assert set(a.latency_buckets) == set(b.latency_buckets) and "+Inf" in a.latency_buckets
            for le, count in a.latency_buckets.items():
                assert abs(count - b.latency_buckets[le]) <= max(3.0, REL_TOLERANCE * count), why
            # and both describe the scripted traffic, so agreement is not agreement on nonsense
            rate, ratio = truth[version]
            assert close(a.throughput, rate, 0.25), why
            assert abs(a.error_ratio - ratio) <= 0.03, why
    assert pairs[0][0].samples["v2"].latency_p99 > pairs[0][0].samples["v1"].latency_p99


def test_one_prometheus_query_per_metric_per_collection(stack: Stack) -> None:
    """Counted in Prometheus' own query log: batching does not depend on the version count."""
    source = PrometheusSource(stack.spec(), "checkout")
    expected = Counter(q.promql for q in source.queries(VERSIONS))
    assert len(expected) == 10  # requests, errors, throughput, p50, p95, p99 + 4 raw counters
    assert not any('"v1"' in q or '"v2"' in q for q in expected)

    def logged() -> list[str]:
        if not stack.query_log.exists():
            return []
        return [json.loads(line)["params"]["query"] for line in stack.query_log.read_text().splitlines() if line]

    async def main() -> MetricsSnapshot:
        try:
            return await source.collect(VERSIONS, None, time.time())
        finally:
            await source.close()

    before = len(logged())
    snapshot = asyncio.run(main())
    assert snapshot.error is None, snapshot.error
    deadline = time.monotonic() + 60.0  # bounded wait: returns as soon as the lines are there
    while len(logged()) < before + len(expected) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert Counter(logged()[before:]) == expected
