"""Measure how closely ScrapeSource and PrometheusSource agree, and how long a collection takes.

    PYTHONPATH=$PWD python -m tests.collectors.metrics.measure_agreement [pairs]

Same stack as test_agreement (three scripted exporters, a real Prometheus scraping every 1 s,
6 s window); prints the worst deviation per version and metric over `pairs` paired reads.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from collectors.prometheus_source import PrometheusSource
from collectors.scrape_source import ScrapeSource
from tests.collectors.metrics import test_agreement as agreement
from tests.collectors.metrics.exporter import Exporter
from tests.support.prometheus import PrometheusServer

FIELDS = ("throughput", "latency_p50", "latency_p95", "latency_p99")


async def collect_times(stack: agreement.Stack, rounds: int) -> dict[str, list[float]]:
    spec, platform = stack.spec(), stack.platform()
    scrape, prom = ScrapeSource(spec, "checkout"), PrometheusSource(spec, "checkout")
    times: dict[str, list[float]] = {"scrape": [], "prometheus": []}
    try:
        for _ in range(rounds):
            for name, source, plat in (("scrape", scrape, platform), ("prometheus", prom, None)):
                started = time.perf_counter()
                snapshot = await source.collect(agreement.VERSIONS, plat, time.time())
                times[name].append(time.perf_counter() - started)
                assert snapshot.error is None, snapshot.error
            await asyncio.sleep(0.1)
    finally:
        await scrape.close()
        await prom.close()
    return times


def main(pairs: int) -> None:
    exporters = [Exporter("checkout", "v1", rate=40.0, error_every=50, latencies=agreement.V1_LATENCIES),
                 Exporter("checkout", "v1", rate=40.0, error_every=50, latencies=agreement.V1_LATENCIES),
                 Exporter("checkout", "v2", rate=30.0, error_every=8, latencies=agreement.V2_LATENCIES)]
    work = Path(tempfile.mkdtemp(prefix="measure-agreement-"))
    server = PrometheusServer(work)
    try:
        for exporter in exporters:
            exporter.start()
        server.start({"global": {"scrape_interval": "1s"},
                      "scrape_configs": [{"job_name": "apps",
                                          "static_configs": [{"targets": [e.address for e in exporters]}]}]})
        stack = agreement.Stack(server, exporters, work / "queries.log")
        worst: dict[tuple[str, str], float] = {}
        for scraped, queried in agreement.read_both(stack, pairs=pairs):
            for version in agreement.VERSIONS:
                a, b = scraped.samples[version], queried.samples[version]
                for field in FIELDS:
                    x, y = getattr(a, field), getattr(b, field)
                    worst[version, field] = max(worst.get((version, field), 0.0), abs(x - y) / max(x, y))
                gap = abs(a.error_ratio - b.error_ratio)
                worst[version, "error_ratio (abs)"] = max(worst.get((version, "error_ratio (abs)"), 0.0), gap)
        print(f"worst deviation over {pairs} paired reads (relative unless marked abs):")
        for (version, field), value in sorted(worst.items()):
            print(f"  {version} {field:18s} {value:.4f}")
        times = asyncio.run(collect_times(stack, 20))
        for name, values in times.items():
            print(f"collect() {name:10s} median {statistics.median(values) * 1000:.1f} ms, "
                  f"max {max(values) * 1000:.1f} ms over {len(values)}")
    finally:
        server.stop()
        for exporter in exporters:
            exporter.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
