"""The local router is a real proxy process: weighted split, live changes, pinning, retries."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from collectors.local.net import PIN_HEADER, ROUTED_HEADER
from collectors.local.router import LocalRouter, LocalRouterError
from strategies.model import Instance, PlatformSnapshot, VersionStatus
from strategies.ports import TrafficRouter
from strategies.spec import parse_spec
from tests.collectors.local.procs import pid_alive
from tests.support.ports import free_port


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 40))


async def send(url: str, count: int, headers: dict[str, str] | None = None) -> tuple[Counter[str], Counter[int]]:
    """`count` sequential GETs; returns (routed version counts, status code counts)."""
    routed: Counter[str] = Counter()
    codes: Counter[int] = Counter()
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=5, headers=headers) as client:
        for i in range(count):
            answer = await client.get(f"/item/{i}?q=1")
            codes[answer.status_code] += 1
            if answer.status_code == 200:
                assert answer.json()["version"] == answer.headers[ROUTED_HEADER]
            routed[answer.headers.get(ROUTED_HEADER, "")] += 1
    return routed, codes


def test_splits_by_weight_and_reports_what_it_routes(backends: dict[str, list[str]]) -> None:
    async def scenario() -> None:
        router = LocalRouter(weights={"v1": 100, "v2": 0})
        assert isinstance(router, TrafficRouter)
        try:
            await router.start()
            await router.start()  # idempotent
            assert await router.weights() == {"v1": 0.0, "v2": 0.0}  # no backends yet: nothing routed
            await router.set_backends(backends)
            assert await router.weights() == {"v1": 100.0, "v2": 0.0}
            await router.set_weights({"v1": 80, "v2": 20})
            assert await router.weights() == {"v1": 80.0, "v2": 20.0}
            routed, codes = await send(router.url, 100)
            # smooth weighted round robin is exact over whole rounds; tolerance ±2 requests stated
            assert codes == Counter({200: 100})
            assert abs(routed["v2"] - 20) <= 2 and routed["v1"] + routed["v2"] == 100
            assert await router.routed() == {"v1": routed["v1"], "v2": routed["v2"]}
            # both v1 backends served (round robin inside a version)
            pids = set()
            async with httpx.AsyncClient(base_url=router.url, trust_env=False, timeout=5) as client:
                await router.set_weights({"v1": 100, "v2": 0})
                for _ in range(6):
                    pids.add((await client.get("/")).json()["pid"])
            assert len(pids) == 2
            # a version without backends gets nothing, and weights() says so
            await router.set_weights({"v1": 50, "v2": 50})
            await router.set_backends({"v1": backends["v1"]})
            assert await router.weights() == {"v1": 100.0, "v2": 0.0}
            routed, _ = await send(router.url, 10)
            assert routed == Counter({"v1": 10})
        finally:
            await router.close()
        assert router.pid is None

    run(scenario())


def test_live_weight_changes_drop_no_request(backends: dict[str, list[str]]) -> None:
    async def scenario() -> None:
        router = LocalRouter(weights={"v1": 100, "v2": 0})
        try:
            await router.start()
            await router.set_backends(backends)
            codes: Counter[int] = Counter()
            routed: Counter[str] = Counter()
            changes = [{"v1": 90, "v2": 10}, {"v1": 50, "v2": 50}, {"v1": 0, "v2": 100}, {"v1": 100, "v2": 0},
                       {"v1": 25, "v2": 75}]
            done = asyncio.Event()

            async def traffic(client: httpx.AsyncClient) -> None:
                for _ in range(60):  # bounded; 8 workers x 60 requests x ~5 ms
                    answer = await client.get("/")
                    codes[answer.status_code] += 1
                    routed[answer.headers[ROUTED_HEADER]] += 1
                    if done.is_set():
                        return

            async def flip() -> None:
                for weights in changes:
                    await asyncio.sleep(0.05)  # let requests be in flight across each change
                    await router.set_weights(weights)
                done.set()

            async with httpx.AsyncClient(base_url=router.url, trust_env=False, timeout=5,
                                         limits=httpx.Limits(max_connections=16)) as client:
                await asyncio.gather(flip(), *(traffic(client) for _ in range(8)))
            assert set(codes) == {200}, codes
            assert routed["v1"] > 0 and routed["v2"] > 0
            assert await router.weights() == {"v1": 25.0, "v2": 75.0}
            after, _ = await send(router.url, 20)
            assert after == Counter({"v2": 15, "v1": 5})
        finally:
            await router.close()

    run(scenario())


def test_pin_header_sync_backends_and_retry(backends: dict[str, list[str]]) -> None:
    dead = f"127.0.0.1:{free_port()}"  # nobody listens: connection refused

    def status(version: str, addresses: list[str], ready: bool = True) -> VersionStatus:
        return VersionStatus(version, tuple(Instance(f"{version}-{i}", version, ready, a)
                                            for i, a in enumerate(addresses)))

    async def scenario() -> None:
        router = LocalRouter(weights={"v1": 100, "v2": 0})
        try:
            await router.start()
            snap = PlatformSnapshot(at=1.0, versions={
                "v1": status("v1", [dead, backends["v1"][0]]),  # two: every other turn starts at the dead one
                "v2": VersionStatus("v2", (*status("v2", backends["v2"]).instances,
                                           Instance("v2-x", "v2", False, "127.0.0.1:1"))),
            })
            table = await router.sync_backends(snap)
            assert table == {"v1": sorted([dead, backends["v1"][0]]), "v2": backends["v2"]}  # not-ready left out
            assert await router.sync_backends(PlatformSnapshot(at=2.0, error="boom")) == table
            # a dead backend is skipped by retrying the next one: no request fails
            routed, codes = await send(router.url, 12)
            assert codes == Counter({200: 12}) and routed == Counter({"v1": 12})
            # the pin header overrides the weights (A/B), and a pin nobody serves is a clear 503
            routed, codes = await send(router.url, 5, headers={PIN_HEADER: "v2"})
            assert routed == Counter({"v2": 5}) and codes == Counter({200: 5})
            async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
                answer = await client.get(router.url, headers={PIN_HEADER: "v9"})
                assert answer.status_code == 503 and "v9" in answer.json()["error"]
                metrics = (await client.get(f"{router.url}/-/metrics")).text
            assert 'releasedeck_router_upstream_errors_total{version="v1"}' in metrics
            assert 'releasedeck_router_weight_percent{version="v1"} 100.0' in metrics
        finally:
            await router.close()

    run(scenario())


def test_refuses_bad_input_with_clear_messages() -> None:
    async def scenario() -> None:
        router = LocalRouter()
        with pytest.raises(LocalRouterError, match="not started"):
            _ = router.url
        try:
            await router.start()
            pid = router.pid
            with pytest.raises(LocalRouterError, match="add up to 100"):
                await router.set_weights({"v1": 50, "v2": 20})
            with pytest.raises(LocalRouterError, match=r"0\.\.100"):
                await router.set_weights({"v1": 120, "v2": -20})
            with pytest.raises(LocalRouterError, match="not host:port"):
                await router.set_backends({"v1": ["nowhere"]})
        finally:
            await router.close()
        assert pid is not None and not pid_alive(pid)
        with pytest.raises(LocalRouterError, match="not running"):
            await router.weights()
        busy = LocalRouter()
        await busy.start()
        try:
            clash = LocalRouter(port=busy.port)
            with pytest.raises(LocalRouterError, match="did not start"):
                await clash.start()
            await clash.close()
        finally:
            await busy.close()

    run(scenario())
    spec = {"release": {"service": "s", "baseline": "a", "candidate": "b"}, "platform": {"kind": "local"},
            "strategy": {"kind": "canary", "steps": [10]}}
    router = LocalRouter.from_spec(parse_spec({**spec, "router": {"kind": "local", "listen": "127.0.0.1:8088"}}))
    assert (router.port, router.initial) == (8088, {"a": 100, "b": 0})
    with pytest.raises(LocalRouterError, match=r"binds 127\.0\.0\.1 only"):
        LocalRouter.from_spec(parse_spec({**spec, "router": {"kind": "local", "listen": "0.0.0.0:80"}}))
