"""A minimal test-only metric source: scrape each instance's /metrics, error ratio over a window.

The real scrape source is another helper's work; this one is just enough to run the engine
over the real local stack (requests and error_ratio only; latencies are left unmeasured).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

import httpx
from prometheus_client.parser import text_string_to_metric_families

from strategies.model import MetricSample, MetricsSnapshot, PlatformSnapshot, frozen_map


class ScrapeErrors:
    name = "test-scrape"

    def __init__(self, window: float):
        self.window = window
        self.points: dict[str, deque[tuple[float, float, float]]] = {}
        self.client: httpx.AsyncClient | None = None

    async def _read(self, url: str) -> tuple[float, float]:
        assert self.client is not None
        text = (await self.client.get(url, timeout=2.0)).text
        total = errors = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "http_requests_total":
                    total += sample.value
                    if sample.labels.get("code", "").startswith("5"):
                        errors += sample.value
        return total, errors

    async def collect(self, versions: Sequence[str], platform: PlatformSnapshot | None,
                      now: float) -> MetricsSnapshot:
        if platform is None or platform.error:
            return MetricsSnapshot(at=now, source=self.name, error="no instances known yet")
        if self.client is None:
            self.client = httpx.AsyncClient(trust_env=False)
        samples = {}
        for version in versions:
            urls = [i.metrics_url or f"http://{i.address}/metrics"
                    for i in platform.version(version).instances if i.ready and i.address]
            if not urls:
                continue
            reads = await asyncio.gather(*(self._read(u) for u in urls))
            total, errors = sum(r[0] for r in reads), sum(r[1] for r in reads)
            series = self.points.setdefault(version, deque())
            series.append((now, total, errors))
            while len(series) > 1 and now - series[0][0] > self.window:
                series.popleft()
            _, total0, errors0 = series[0]
            requests = max(0.0, total - total0)
            ratio = (max(0.0, errors - errors0) / requests) if requests else None
            samples[version] = MetricSample(version, now, requests=requests, error_ratio=ratio,
                                            errors=max(0.0, errors - errors0))
        return MetricsSnapshot(at=now, samples=frozen_map(samples), source=self.name)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None
