"""A fleet's metrics from a real Prometheus: one query per metric, whatever the fleet's size.

Four services × two versions of scripted exporters (known error ratios) are scraped every
second. The fleet reader must answer every service with the same figures a per-release
PrometheusSource gives, and send six queries in all (counted in Prometheus' own query log),
where asking each release on its own sends six per release.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from collectors.fleet_prometheus import FleetPrometheus, batchable
from collectors.prometheus_source import PrometheusSource
from strategies.spec import MetricsSpec
from tests.collectors.metrics.exporter import Exporter
from tests.support.prometheus import PrometheusServer

pytestmark = pytest.mark.prometheus
SERVICES = ("cart", "checkout", "search", "users")
ERROR_EVERY = {"v1": 50, "v2": 10}  # true error ratios 2 % and 10 %
WINDOW = 5.0


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrometheusServer, Path]]:
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus binary not found on PATH (Debian package 'prometheus')")
    exporters = [Exporter(s, v, rate=20.0, error_every=e, latencies=(0.01, 0.02, 0.3))
                 for s in SERVICES for v, e in ERROR_EVERY.items()]
    workdir = tmp_path_factory.mktemp("prometheus")
    server = PrometheusServer(workdir)
    log = workdir / "queries.log"
    try:
        for exporter in exporters:
            exporter.start()
        server.start({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "query_log_file": str(log)},
            "scrape_configs": [{"job_name": "apps",
                                "static_configs": [{"targets": [e.address for e in exporters]}]}]})
        deadline = time.monotonic() + 40
        while True:  # a whole window of scrapes of every target
            seen = server.scalar(f'min(count_over_time(up{{job="apps"}}[{int(WINDOW)}s]))', at=time.time())
            if seen is not None and seen >= WINDOW:
                break
            assert time.monotonic() < deadline, "no full window of scrapes within 40 s"
            time.sleep(0.5)
        yield server, log
    finally:
        server.stop()
        for exporter in exporters:
            exporter.stop()


def _queries_since(log: Path, offset: int) -> list[str]:
    lines = log.read_text().splitlines()[offset:] if log.exists() else []
    return [json.loads(line)["params"]["query"] for line in lines if line.strip()]


def test_one_query_per_metric_answers_every_service(fleet) -> None:
    server, log = fleet
    spec = MetricsSpec(source="prometheus", url=server.url, window=WINDOW, interval=1.0, timeout=5.0)
    assert all(batchable(spec, s) for s in SERVICES)

    async def read() -> tuple[dict, dict]:
        reader = FleetPrometheus(spec, SERVICES)
        singles = {s: PrometheusSource(spec, s, record_raw=False) for s in SERVICES}
        try:
            before = len(log.read_text().splitlines()) if log.exists() else 0
            batched = await reader.collect_fleet(time.time())
            await asyncio.sleep(1.5)  # the query log is flushed asynchronously
            queries = _queries_since(log, before)
            alone = {s: await src.collect(("v1", "v2"), None, time.time()) for s, src in singles.items()}
            return batched, {"queries": queries, "alone": alone}
        finally:
            await reader.close()
            for src in singles.values():
                await src.close()

    batched, seen = asyncio.run(read())
    assert len(seen["queries"]) == 6, seen["queries"]
    assert all("service=~" in q and "by (service, version" in q for q in seen["queries"])
    assert set(batched) == set(SERVICES)
    for service in SERVICES:
        snap = batched[service]
        assert snap.error is None, snap.error
        assert set(snap.samples) == {"v1", "v2"}
        for version, every in ERROR_EVERY.items():
            sample, single = snap.samples[version], seen["alone"][service].samples[version]
            assert sample.requests and sample.requests > 20
            # scripted traffic: errors are exactly every Nth request, so within a few counts
            assert abs(sample.error_ratio - 1 / every) < 0.04, (service, version, sample.error_ratio)
            assert abs(sample.error_ratio - single.error_ratio) < 0.04
            assert sample.latency_p99 is not None and 0.25 <= sample.latency_p99 <= 0.5


def test_a_dead_prometheus_is_an_error_for_every_service_not_a_crash() -> None:
    spec = MetricsSpec(source="prometheus", url="http://127.0.0.1:9", window=WINDOW, interval=1.0, timeout=1.0)

    async def read() -> dict:
        reader = FleetPrometheus(spec, SERVICES)
        try:
            return await reader.collect_fleet(time.time())
        finally:
            await reader.close()

    answers = asyncio.run(read())
    assert set(answers) == set(SERVICES)
    assert all(a.error and "unreachable" in a.error and not a.samples for a in answers.values())


def test_own_promql_or_odd_service_names_are_not_batched() -> None:
    spec = MetricsSpec(source="prometheus", url="http://127.0.0.1:9")
    assert not batchable(spec, 'check"out')
    own = MetricsSpec(source="prometheus", url="http://127.0.0.1:9",
                      queries={**spec.queries, "requests": "sum by (version) (my_requests[{window}])"})
    assert not batchable(own, "checkout")
    with pytest.raises(ValueError, match="cannot be batched"):
        FleetPrometheus(spec, ["ok", "not ok"])


SPEC = """
[release]
service = "{service}"
baseline = "v1"
candidate = "v2"

[platform]
kind = "local"

[metrics]
source = "prometheus"
url = "{url}"
window = "5s"
interval = "1s"

[strategy]
kind = "canary"
steps = [10, 100]
hold = "1h"

[[gate]]
metric = "error_rate"
max = 0.05
"""


def test_only_an_opened_release_searches_its_gates_confidence_bounds(fleet, tmp_path: Path) -> None:
    """The list shows each gate's figure against its bound; the interval is for the release a
    person opened. Every observer still judges every gate (the same verdict either way)."""
    from tui.fleet.gather import FleetGatherer

    server, _log = fleet
    for service in SERVICES:
        (tmp_path / f"{service}.toml").write_text(SPEC.format(service=service, url=server.url))
    opened = str(tmp_path / "checkout.toml")

    async def run() -> dict[str, tuple]:
        gatherer = FleetGatherer.from_paths([str(tmp_path)])
        try:
            await gatherer.refresh(time.time())
            assert await gatherer.state_of(opened) is not None
            gates: dict[str, tuple] = {}
            for _ in range(60):  # bounded: up to ~30 s of half-second refreshes
                await gatherer.refresh(time.time())
                gates = {m.source: m.observer.gates for m in gatherer.members if m.observer}
                if all(g and g[0].estimate is not None for g in gates.values()) \
                        and gates[opened][0].low is not None:
                    break
                await asyncio.sleep(0.5)
            return gates
        finally:
            await gatherer.close()

    gates = asyncio.run(run())
    assert set(gates) == {str(tmp_path / f"{s}.toml") for s in SERVICES}
    for source, (gate,) in gates.items():
        assert gate.estimate is not None and gate.test == "sequential", (source, gate)
        if source == opened:
            assert gate.low is not None and gate.high is not None, gate
        else:
            assert gate.low is None and gate.high is None, (source, gate)
