"""Cohorts in the built-in router, end to end: real proxy, real services, the demo load generator."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from pathlib import Path

import httpx

from collectors.local.loadgen import LoadGenerator
from collectors.local.net import COHORT_HEADER, GROUP_HEADER, ROUTED_HEADER, USER_HEADER
from collectors.local.router import LocalRouter
from strategies.cohorts import CohortMatch, CohortRule, Mirror, Route, UserKey, bucket, sticky_version
from strategies.engine import Engine
from strategies.journal import MemoryJournal
from strategies.plans import build_plan
from strategies.ports import CohortRouter
from strategies.spec import parse_spec
from tests.collectors.docker.helpers import ServersPlatform, async_wait_until
from tests.faults.support import exited
from tests.support.ports import free_port
from tests.support.ticking import tick_until
from tui.driver import Driver
from tui.wiring import build_source

STAFF = CohortRule("staff", CohortMatch(header=GROUP_HEADER, values=("staff",)), "v2")
SALT = "checkout/v2"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


def test_staff_always_on_the_candidate_others_by_sticky_share(backends: dict[str, list[str]]) -> None:
    """2,400 requests from 300 users (5% staff) at two shares: staff on v2 every time, everyone
    else exactly where their sticky bucket says, and nobody who had v2 loses it as it grows."""

    async def scenario() -> None:
        router = LocalRouter(weights={"v1": 100, "v2": 0})
        assert isinstance(router, CohortRouter)
        try:
            await router.start()
            await router.set_backends(backends)
            route = Route(cohorts=(STAFF,), sticky=UserKey(header=USER_HEADER), salt=SALT)
            await router.set_route(route)
            assert await router.route() == route
            seen: dict[int, dict[str, set[str]]] = {}
            for share in (10, 30):
                await router.set_weights({"v1": 100 - share, "v2": share})
                load = LoadGenerator(router.url, rate=400, duration=60, total=1200, users=300,
                                     groups={"staff": 0.05}, seed=share, concurrency=16)
                stats = await load.run()
                assert stats.done == 1200 and stats.ok == 1200, stats.to_dict()
                staff = {u for u, g in load.groups.items() if g == "staff"}
                assert len(staff) == 15
                by_user = stats.versions_by_user
                assert sum(n for (g, _), n in stats.by_group.items() if g == "staff") > 0
                assert stats.by_group[("staff", "v1")] == 0
                for user, versions in by_user.items():
                    if user in staff:
                        assert versions == {"v2"}
                    else:
                        want = sticky_version(bucket(user, SALT), {"v1": 100 - share, "v2": share})
                        assert versions == {want}, (user, versions, want)
                assert stats.to_dict()["users_on_two_versions"] == 0
                seen[share] = by_user
                others_on_v2 = sum(1 for u, v in by_user.items() if u not in staff and v == {"v2"})
                others = sum(1 for u in by_user if u not in staff)
                assert abs(others_on_v2 / others - share / 100) < 0.08  # 285 users, share by hash
            grew = {u for u, v in seen[10].items() if v == {"v2"}}
            assert grew and all(seen[30].get(u, {"v2"}) == {"v2"} for u in grew)
            by_cohort = await router.routed_by_cohort()
            assert by_cohort[("v2", "staff")] > 0 and ("v1", "staff") not in by_cohort
            assert sum(by_cohort.values()) == 2400
            # an anonymous request (no user key) falls back to the weighted split
            async with httpx.AsyncClient(base_url=router.url, trust_env=False, timeout=5) as client:
                answer = await client.get("/", headers={GROUP_HEADER: "staff"})
                assert (answer.headers[ROUTED_HEADER], answer.headers[COHORT_HEADER]) == ("v2", "staff")
                bad = await client.put("/-/route", json={"mirror": {"version": "v2", "percent": 300}})
                assert bad.status_code == 400 and "0..100" in bad.json()["error"]
        finally:
            await router.close()

    run(scenario())


def test_mirror_copies_a_share_and_clients_only_see_the_primary(backends: dict[str, list[str]]) -> None:
    async def scenario() -> None:
        router = LocalRouter(weights={"v1": 100, "v2": 0})
        try:
            await router.start()
            await router.set_backends(backends)
            await router.set_route(Route(mirror=Mirror("v2", 50)))
            routed: Counter[str] = Counter()
            async with httpx.AsyncClient(base_url=router.url, trust_env=False, timeout=5) as client:
                for i in range(200):
                    answer = await client.get(f"/item/{i}")
                    assert answer.status_code == 200 and answer.json()["version"] == "v1"
                    routed[answer.headers[ROUTED_HEADER]] += 1
            assert routed == Counter({"v1": 200})
            for _ in range(1200):  # shadow copies finish in the background: bounded wait
                mirrored = await router.mirrored()
                if sum(mirrored.values()) >= 100:
                    break
                await asyncio.sleep(0.05)
            assert mirrored == {"200": 100.0}
            assert await router.routed() == {"v1": 200.0}
            async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
                text = (await client.get(f"http://{backends['v2'][0]}/metrics")).text
            served = [line for line in text.splitlines()
                      if line.startswith("http_requests_total") and 'code="200"' in line]
            assert served and float(served[0].rsplit(" ", 1)[1]) >= 100  # the candidate did the work
        finally:
            await router.close()

    run(scenario())


def test_a_killed_router_comes_back_without_its_rings_and_the_ticks_put_them_back(
        backends: dict[str, list[str]], tmp_path: Path) -> None:
    """Ring 1 through the Driver; the proxy is killed: the next tick finds it dead, and one
    `reconcile` record (naming the dead process) re-applies the journal's route to the proxy
    revived at its last weights and backends but no route; the read-back then finds it in
    place."""
    spec = parse_spec({
        "release": {"service": "checkout", "baseline": "v1", "candidate": "v2"},
        "platform": {"kind": "docker", "selector": "app=checkout"},
        "router": {"kind": "local", "port": free_port()},
        "strategy": {"kind": "ring", "hold": "10m", "sticky": {"header": USER_HEADER}, "rings": [
            {"name": "staff", "match": {"header": GROUP_HEADER, "values": ["staff"]}},
            {"name": "everyone", "weight": 100}]},
    }, str(tmp_path / "ring.toml"))
    clock = [1000.0]
    wanted = build_plan(spec).route_for(1, 0, "v2")

    async def ticks(driver: Driver, router: LocalRouter) -> None:
        async def back() -> bool:
            return await router.route() == wanted
        await tick_until(driver, clock, back, seen=router.route)

    async def scenario() -> None:
        router = LocalRouter(port=spec.router.options["port"], weights={"v1": 100, "v2": 0})
        journal = MemoryJournal()
        source = build_source(spec)
        try:
            await router.start()
            driver = Driver(spec, Engine(spec, journal=journal), ServersPlatform(backends), router,
                            source, clock=lambda: clock[0])
            await ticks(driver, router)
            pid = router.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            await async_wait_until(lambda: asyncio.to_thread(exited, pid), timeout=30,
                                   what="the router to die")  # so the next tick finds it dead
            await ticks(driver, router)
            for _ in range(3):  # settled
                clock[0] += 1.0
                await driver.tick()
            assert router.restarts >= 1
        finally:
            await source.close()
            await router.close()
        found = [r for r in journal.records if r.get("kind") == "reconcile"
                 and any(e.get("lever") == "set_cohorts:" for e in r.get("evidence") or ())]
        assert len(found) == 1, [(r["at"], r["reason"]) for r in found]
        assert found[0]["evidence"][0]["detail"] == \
            f"local router: pid {pid} exited (killed by SIGKILL)"

    run(scenario())
