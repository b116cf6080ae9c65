"""HAProxyRouter and HAProxyStats against a real HAProxy 2.6 on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from pathlib import Path

import httpx
import pytest

from collectors.haproxy import HAProxyError, HAProxyRouter, parse_stat, server_weights
from collectors.haproxy_stats import HAProxyMetricSource, HAProxyStats
from strategies.model import Instance, PlatformSnapshot, VersionStatus
from strategies.spec import parse_spec
from tests.collectors.docker.helpers import version_servers

pytestmark = pytest.mark.haproxy

SERVERS = {"v1": ["v1a"], "v2": ["v2a"]}


def test_server_weights_split_each_share_over_its_servers() -> None:
    weights = server_weights({"v1": 90, "v2": 10}, {"v1": ["a", "b"], "v2": ["c"]})
    assert weights == {"a": 115, "b": 115, "c": 26}
    assert server_weights({"v1": 0, "v2": 100}, SERVERS) == {"v1a": 0, "v2a": 256}
    # 1 % still routes something, and versions left out get nothing
    assert server_weights({"v2": 1}, {"v1": ["a"], "v2": ["b", "c", "d"]}) == \
        {"a": 0, "b": 1, "c": 1, "d": 1}


def test_parse_stat_rejects_an_error_answer() -> None:
    with pytest.raises(HAProxyError, match="unexpected answer"):
        parse_stat("Unknown command.\n")


def _split(url: str, n: int) -> Counter[str]:
    with httpx.Client(timeout=2.0) as client:
        return Counter(client.get(url).text for _ in range(n))


def test_weights_change_live_and_traffic_follows(haproxy_factory) -> None:
    with version_servers(["v1", "v2"]) as ports:
        proxy = haproxy_factory({"v1a": ("127.0.0.1", ports["v1"], 256),
                                 "v2a": ("127.0.0.1", ports["v2"], 0)}, check=False)
        router = HAProxyRouter(proxy.socket, "checkout", SERVERS)

        async def scenario() -> None:
            assert await router.weights() == {"v1": 100.0, "v2": 0.0}
            assert _split(proxy.url, 20) == {"v1": 20}

            await router.set_weights({"v1": 90, "v2": 10})
            actual = await router.weights()
            assert actual["v2"] == pytest.approx(100 * 26 / 256, abs=0.01)
            split = _split(proxy.url, 200)
            assert 12 <= split["v2"] <= 28, split  # ~10 % of 200, smooth weighted round robin

            await router.set_weights({"v1": 50, "v2": 50})
            split = _split(proxy.url, 100)
            assert split == {"v1": 50, "v2": 50}

            await router.set_weights({"v1": 0, "v2": 100})
            assert await router.weights() == {"v1": 0.0, "v2": 100.0}
            rows = {r.server: r for r in await router.stats()}
            assert rows["v1a"].status == "DRAIN"
            assert _split(proxy.url, 30) == {"v2": 30}

            await router.set_weights({"v1": 100, "v2": 0})  # roll back: drained side returns
            assert (await router.stats())[0].status.startswith(("UP", "no check"))
            assert _split(proxy.url, 30) == {"v1": 30}

        asyncio.run(scenario())


def test_router_errors_are_one_line(haproxy_factory, tmp_path: Path) -> None:
    async def scenario() -> None:
        gone = HAProxyRouter(str(tmp_path / "nothing.sock"), "checkout", SERVERS)
        with pytest.raises(HAProxyError, match="no socket there") as info:
            await gone.set_weights({"v1": 100, "v2": 0})
        assert "\n" not in str(info.value)

        with version_servers(["v1"]) as ports:
            proxy = haproxy_factory({"v1a": ("127.0.0.1", ports["v1"], 256)}, check=False)
            wrong = HAProxyRouter(proxy.socket, "checkout", {"v1": ["v1a"], "v2": ["v2x"]})
            with pytest.raises(HAProxyError, match="No such server") as info:
                await wrong.set_weights({"v1": 50, "v2": 50})
            assert "\n" not in str(info.value)
            with pytest.raises(HAProxyError, match="no server\\(s\\) v2x"):
                await wrong.weights()
            with pytest.raises(HAProxyError, match="no servers for version"):
                await HAProxyRouter(proxy.socket, "checkout", {"v1": ["v1a"]}).set_weights(
                    {"v1": 50, "v3": 50})

    asyncio.run(scenario())


def test_exporter_counts_requests_and_errors_per_version(haproxy_factory) -> None:
    with version_servers(["v1", "v2"]) as ports:
        proxy = haproxy_factory({"v1a": ("127.0.0.1", ports["v1"], 128),
                                 "v2a": ("127.0.0.1", ports["v2"], 128)}, check=False)

        async def scenario() -> None:
            stats = HAProxyStats(proxy.stats_url, "checkout", SERVERS)
            source = HAProxyMetricSource(stats, window=60)
            first = await source.collect(["v1", "v2"], None, 1000.0)
            assert first.error is None and first.samples["v2"].requests is None  # one read: no rate
            with httpx.Client(timeout=2.0) as client:
                for i in range(40):  # round robin 1:1 → each version gets 10 ok and 10 failed
                    client.get(f"{proxy.url}/{'fail' if (i // 2) % 2 else 'ok'}")
            later = await source.collect(["v1", "v2"], None, 1010.0)
            for version in ("v1", "v2"):
                sample = later.samples[version]
                assert sample.requests == 20 and sample.errors == 10, sample
                assert sample.error_ratio == pytest.approx(0.5)
                assert sample.throughput == pytest.approx(2.0)
                assert sample.latency_p99 is None  # HAProxy has no histogram: unmeasured, not 0
            raw = {r.version: r for r in source.last_raw()}
            assert raw["v1"].requests_total == 20 and raw["v2"].errors_total == 10
            await source.close()

            broken = HAProxyMetricSource(HAProxyStats(proxy.stats_url, "nope", SERVERS))
            snap = await broken.collect(["v1"], None, 1.0)
            assert snap.error and "no haproxy_server_http_responses_total" in snap.error
            await broken.close()

        asyncio.run(scenario())


def test_exporter_address_answering_something_else_is_one_metrics_error() -> None:
    """Another server on the exporter's address (CI once had the v2 backend answer GET /metrics:
    body "v2") is one error line on the metrics snapshot, so the rollout holds on stale data;
    no ValueError out of the parser."""
    with version_servers(["v2"]) as ports:
        url = f"http://127.0.0.1:{ports['v2']}/metrics"

        async def scenario() -> None:
            source = HAProxyMetricSource(HAProxyStats(url, "checkout", SERVERS), window=60)
            try:
                snap = await source.collect(["v1", "v2"], None, 1000.0)
            finally:
                await source.close()
            assert snap.error == (f"haproxy exporter at {url}: answered something that is not "
                                  "Prometheus text format ('v2')")
            assert not snap.samples
            assert list(source.last_raw()) == []

        asyncio.run(scenario())


def test_fixture_takes_new_ports_when_its_port_is_taken(haproxy_factory, monkeypatch) -> None:
    """Someone listens on the traffic port between our pick and HAProxy's bind: HAProxy cannot
    bind, and the fixture starts it again on new ports instead of failing the test."""
    import tests.collectors.docker.conftest as fixtures

    real, calls = fixtures.free_ports, []

    def first_taken(n: int) -> list[int]:
        calls.append(n)
        ports = real(n)
        return [taken, *ports[1:]] if len(calls) == 1 else ports

    with socket.socket() as squatter, version_servers(["v1"]) as ports:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        monkeypatch.setattr(fixtures, "free_ports", first_taken)
        proxy = haproxy_factory({"v1a": ("127.0.0.1", ports["v1"], 256)}, check=False)
        assert calls == [2, 2] and taken not in (proxy.port, proxy.stats_port)
        assert httpx.get(proxy.url, timeout=5.0).text == "v1"


def test_router_and_stats_from_spec() -> None:
    spec = parse_spec({
        "release": {"service": "checkout", "baseline": "v1", "candidate": "v2"},
        "platform": {"kind": "docker", "selector": "app=checkout"},
        "router": {"kind": "haproxy", "socket": "127.0.0.1:9999", "backend": "web",
                   "servers": {"v1": ["v1a", "v1b"], "v2": "v2a"},
                   "stats_url": "http://127.0.0.1:8404/metrics", "sync": True},
        "metrics": {"source": "haproxy"},
        "strategy": {"kind": "canary", "steps": [10, 100]},
    })
    router = HAProxyRouter.from_spec(spec)
    assert router.backend == "web" and router.servers == {"v1": ("v1a", "v1b"), "v2": ("v2a",)}
    assert router.api._target() == ("127.0.0.1", 9999) and router.sync
    stats = HAProxyStats.from_spec(spec)
    assert stats.url.endswith("/metrics") and stats.versions == ("v1", "v2")
    asyncio.run(stats.close())


def test_sync_points_server_slots_at_the_instances(haproxy_factory) -> None:
    """`[router] sync = true`: instances on ports chosen at start-up still get traffic."""
    with version_servers(["v1", "v2"]) as ports:
        proxy = haproxy_factory({"v1a": ("127.0.0.1", 1, 128), "v2a": ("127.0.0.1", 1, 128)},
                                check=False)
        snapshot = PlatformSnapshot(at=1.0, versions={
            v: VersionStatus(v, (Instance(f"{v}-1", v, True, f"127.0.0.1:{ports[v]}"),))
            for v in ("v1", "v2")})

        async def scenario() -> None:
            off = HAProxyRouter(proxy.socket, "checkout", SERVERS)
            await off.sync_backends(snapshot)  # not asked to: leaves the config alone
            assert {r.addr for r in await off.stats()} == {"127.0.0.1:1"}
            router = HAProxyRouter(proxy.socket, "checkout", SERVERS, sync=True)
            await router.sync_backends(snapshot)
            await router.sync_backends(snapshot)  # idempotent: nothing left to change
            assert {r.server: r.addr for r in await router.stats()} == {
                "v1a": f"127.0.0.1:{ports['v1']}", "v2a": f"127.0.0.1:{ports['v2']}"}
            assert _split(proxy.url, 20) == {"v1": 10, "v2": 10}
            wrong = HAProxyRouter(proxy.socket, "checkout", {"v1": ["nope"]}, sync=True)
            with pytest.raises(HAProxyError, match="no server"):
                await wrong.sync_backends(snapshot)

        asyncio.run(scenario())
