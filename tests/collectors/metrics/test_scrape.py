"""ScrapeSource on real exporters: parsing, restarts (counter resets) and instances that fail."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, Sequence

import pytest

from collectors.scrape_source import ScrapeError, ScrapeSource, parse_counters
from strategies.model import Instance, MetricSample, MetricsSnapshot, PlatformSnapshot, VersionStatus, frozen_map
from strategies.ports import MetricSource, RawCounterSource
from strategies.spec import MetricsSpec
from tests.collectors.metrics.exporter import Exporter
from tests.collectors.metrics.fake_prometheus import FakePrometheus
from tests.collectors.metrics.test_prometheus_failures import closed_port_url

LATENCIES = (0.02, 0.03, 0.04, 0.07, 0.2)
CODES = re.compile("5..")

TEXT = """\
# HELP http_requests_total Requests
# TYPE http_requests_total counter
http_requests_total{service="checkout",version="v1",code="200"} 90
http_requests_total{service="checkout",version="v1",code="503"} 10
http_requests_total{service="checkout",version="v1",code="404"} 5
http_requests_total{service="other",version="v1",code="500"} 1000
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{service="checkout",version="v1",code="200",le="0.1"} 80
http_request_duration_seconds_bucket{service="checkout",version="v1",code="200",le="+Inf"} 95
http_request_duration_seconds_bucket{service="checkout",version="v1",code="503",le="0.1"} 1
http_request_duration_seconds_bucket{service="checkout",version="v1",code="503",le="+Inf"} 10
http_request_duration_seconds_sum{service="checkout",version="v1",code="200"} 4.5
http_request_duration_seconds_count{service="checkout",version="v1",code="200"} 95
"""


def parse(text: str):
    return parse_counters(text, service="checkout", request_metric="http_requests_total",
                          latency_metric="http_request_duration_seconds", error_codes=CODES)


def test_parse_sums_label_sets_and_matches_error_codes() -> None:
    counters = parse(TEXT)
    assert (counters.requests, counters.errors) == (105.0, 10.0)  # 404 is no error, "other" ignored
    assert dict(counters.buckets) == {"0.1": 81.0, "+Inf": 105.0}
    assert counters.latency_sum == 4.5


@pytest.mark.parametrize(("text", "words"), [
    ("<html>hello {</html>\n", "not Prometheus text format"),
    ("# TYPE something_else counter\nsomething_else 3\n", "exports no http_requests_total"),
])
def test_parse_refuses_what_is_not_a_service_exposition(text: str, words: str) -> None:
    with pytest.raises(ScrapeError, match=words):
        parse(text)


def platform_of(instances: Sequence[tuple[str, str, str]]) -> PlatformSnapshot:
    """(version, id, metrics_url) triples → a PlatformSnapshot with ready instances."""
    versions: dict[str, list[Instance]] = {}
    for version, ident, url in instances:
        versions.setdefault(version, []).append(Instance(id=ident, version=version, ready=True, metrics_url=url))
    return PlatformSnapshot(at=0.0, versions=frozen_map(
        {v: VersionStatus(version=v, instances=tuple(found)) for v, found in versions.items()}))


@pytest.fixture
def exporters() -> Iterator[list[Exporter]]:
    started: list[Exporter] = []
    try:
        for _ in range(2):
            started.append(Exporter("checkout", "v1", rate=100.0, error_every=10, latencies=LATENCIES).start())
        yield started
    finally:
        for exporter in started:
            exporter.stop()


def spec(window: float = 1.5, interval: float = 0.1) -> MetricsSpec:
    return MetricsSpec(window=window, interval=interval, timeout=1.0)


async def collect_loop(source: ScrapeSource, platform: PlatformSnapshot | None, count: int,
                       interval: float, versions: Sequence[str] = ("v1",)) -> list[MetricsSnapshot]:
    """`count` collections at roughly `interval`, timestamps from the loop clock."""
    loop = asyncio.get_running_loop()
    out = []
    for _ in range(count):
        out.append(await source.collect(versions, platform, loop.time()))
        await asyncio.sleep(interval)
    return out


def run_collections(source: ScrapeSource, platform: PlatformSnapshot | None, count: int, interval: float,
                    versions: Sequence[str] = ("v1",)) -> list[MetricsSnapshot]:
    """Collect in one event loop and close the source in that same loop."""
    async def main() -> list[MetricsSnapshot]:
        try:
            return await collect_loop(source, platform, count, interval, versions)
        finally:
            await source.close()
    return asyncio.run(main())


def test_is_a_metric_source_and_raw_counter_source() -> None:
    source = ScrapeSource(spec(), "checkout")
    assert isinstance(source, MetricSource) and isinstance(source, RawCounterSource)
    assert source.name == "scrape"
    asyncio.run(source.close())


def test_instance_restart_is_a_reset_of_that_instance_only(exporters: list[Exporter]) -> None:
    """Restart one of two instances mid-window: no negative rate, and no spike either."""
    a, b = exporters
    platform = platform_of([("v1", "a", a.metrics_url), ("v1", "b", b.metrics_url)])
    source = ScrapeSource(spec(), "checkout")

    async def run() -> tuple[list[MetricsSnapshot], list[MetricsSnapshot], float, float]:
        try:
            before = await collect_loop(source, platform, 20, 0.1)
            total_before = source.last_raw()[0].requests_total
            a.restart()
            after = await collect_loop(source, platform, 1, 0.1)
            total_after = source.last_raw()[0].requests_total  # a back near 0, b a bit further
            after += await collect_loop(source, platform, 19, 0.1)
            return before, after, total_before, total_after
        finally:
            await source.close()

    before, after, total_before, total_after = asyncio.run(run())
    assert total_after < total_before, "the summed raw counter did not drop: no restart happened"
    samples: list[MetricSample] = [s.samples["v1"] for s in before + after if s.error is None]
    assert len(samples) == 40
    measured = [s for s in samples if s.requests is not None]
    assert len(measured) >= 30
    assert all(s.requests >= 0 and s.throughput >= 0 and s.errors >= 0 for s in measured)
    # Two instances at 100 req/s: "sum then rate" would read the restart as the whole fleet
    # resetting and report the full post-restart total as new requests (a big spike).
    late = [s.throughput for s in (x.samples["v1"] for x in after[5:]) if s.throughput is not None]
    assert late and max(late) < 1.5 * 200.0, late
    assert min(late) > 0.5 * 200.0, late


def test_a_failing_instance_is_skipped_and_counted(exporters: list[Exporter]) -> None:
    a, _ = exporters
    with FakePrometheus(b"not { metrics", content_type="text/plain") as garbage:
        platform = platform_of([("v1", "a", a.metrics_url), ("v1", "down", closed_port_url() + "/metrics"),
                                ("v2", "junk", garbage.url + "/metrics")])
        source = ScrapeSource(spec(), "checkout")
        snapshots = run_collections(source, platform, 5, 0.1, versions=("v1", "v2"))
    assert all(s.error is None for s in snapshots)
    assert set(source.failures) == {"v1/down", "v2/junk"}
    assert "cannot connect" in source.failures["v1/down"]
    assert "not Prometheus text format" in source.failures["v2/junk"]
    assert source.failed_total == 10
    last = snapshots[-1].samples
    assert last["v1"].requests is not None and last["v1"].requests > 0
    assert last["v2"].requests is None  # never measured: unknown, not zero


def test_no_instance_answering_is_an_error() -> None:
    platform = platform_of([("v1", "down", closed_port_url() + "/metrics")])
    source = ScrapeSource(spec(), "checkout")
    snapshots = run_collections(source, platform, 1, 0.0)
    assert snapshots[0].error is not None and "none of 1 instances answered" in snapshots[0].error
    assert not snapshots[0].samples


def test_without_any_platform_snapshot_it_says_so() -> None:
    source = ScrapeSource(spec(), "checkout")
    snapshot = run_collections(source, None, 1, 0.0)[0]
    assert snapshot.error is not None and "waiting for the platform" in snapshot.error
