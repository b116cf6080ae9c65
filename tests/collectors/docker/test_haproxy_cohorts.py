"""HAProxy cohorts and sticky users on a real HAProxy 2.6: maps changed over the runtime API.

Real requests with headers and cookies go through HAProxy to two real HTTP servers that answer
their version's name; the router is built from a spec as `watch` builds it.
"""

from __future__ import annotations

import asyncio
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from collectors.haproxy import HAProxyError, HAProxyRouter, parse_stat
from collectors.haproxy_stats import HAProxyStats
from strategies.cohorts import SLOTS, CohortMatch, CohortRule, Mirror, Route, UserKey, slot_offset, sticky_slots
from strategies.engine import Engine
from strategies.journal import MemoryJournal
from strategies.model import Instance, PlatformSnapshot, VersionStatus
from strategies.spec import ReleaseSpec, parse_spec
from tests.collectors.docker.helpers import CONFIG, HAProxy, ServersPlatform, version_servers
from tests.support.ports import free_ports, retry_on_taken_port
from tests.support.ticking import tick_until
from tui.driver import Driver
from tui.wiring import build_source

pytestmark = pytest.mark.haproxy

STAFF = CohortMatch(header="X-User-Group", values=("staff",))
BETA = CohortMatch(cookie="beta", values=("yes",))
RING = {"kind": "ring", "hold": "5s", "sticky": {"header": "X-User-Id"}, "rings": [
    {"name": "staff", "match": {"header": "X-User-Group", "values": ["staff"]}},
    {"name": "beta", "match": {"cookie": "beta", "values": ["yes"]}, "weight": 10},
    {"name": "everyone", "weight": 100}]}


class CohortHAProxy(HAProxy):
    """HAProxy with the frontend lines of `router.cohorts`, a backend per version and the maps."""

    def __init__(self, workdir: Path, port: int, stats_port: int, ports: dict[str, int],
                 lines: list[str] | None = None, maps: tuple[str, ...] = ()):
        super().__init__(workdir, port, stats_port, "checkout",
                         {"v1a": ("127.0.0.1", ports["v1"], 256),
                          "v2a": ("127.0.0.1", ports["v2"], 0)}, check=False)
        self.ports = ports
        self.lines = lines or []
        self.maps = maps

    def config(self) -> str:
        text = super().config()
        rules = "".join(f"    {line}\n" for line in self.lines)
        text = text.replace("    default_backend checkout\n", rules + "    default_backend checkout\n", 1)
        for version, port in self.ports.items():
            text += (f"backend checkout_{version}\n"
                     f"    server {version}x 127.0.0.1:{port}\n")
        return text

    def start(self) -> None:
        for path in self.maps:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).touch()
        super().start()


def ring_spec(proxy_socket: str, stats_url: str, maps: Path, tmp: Path,
              strategy: dict | None = None) -> ReleaseSpec:
    return parse_spec({
        "release": {"service": "checkout", "baseline": "v1", "candidate": "v2"},
        "platform": {"kind": "docker", "selector": "app=checkout"},
        "router": {"kind": "haproxy", "socket": proxy_socket, "backend": "checkout",
                   "servers": {"v1": ["v1a"], "v2": ["v2a"]}, "stats_url": stats_url,
                   "maps": str(maps), "version_backends": {"v1": "checkout_v1", "v2": "checkout_v2"}},
        "strategy": strategy or RING,
    }, str(tmp / "release.toml"))


@pytest.fixture
def cohort_proxy(tmp_path: Path) -> Iterator:
    """start(ports) → (HAProxy with cohort frontend lines, router, stats) built from RING."""
    started: list[HAProxy] = []

    def start(ports: dict[str, int], *, with_lines: bool = True) -> tuple[HAProxy, HAProxyRouter,
                                                                        HAProxyStats]:
        def attempt() -> tuple[HAProxy, HAProxyRouter, HAProxyStats]:
            traffic, stats = free_ports(2)
            workdir = tmp_path / f"haproxy{len(started)}"
            spec = ring_spec(str(workdir / "admin.sock"), f"http://127.0.0.1:{stats}/metrics",
                             workdir / "maps", tmp_path)
            router = HAProxyRouter.from_spec(spec)
            assert router.cohorts is not None
            lines = router.cohorts.frontend_lines() if with_lines else []
            proxy = CohortHAProxy(workdir, traffic, stats, ports, lines, router.cohorts.paths())
            started.append(proxy)
            proxy.start()
            return proxy, router, HAProxyStats.from_spec(spec)

        return retry_on_taken_port(attempt)

    yield start
    for proxy in started:
        proxy.stop()


def expected(user: str, weights: dict[str, float], salt: str) -> str:
    """Where a user with a key must land: HAProxy's crc32 of the key, the pure slot rule."""
    return sticky_slots(weights, slot_offset(salt))[zlib.crc32(user.encode()) % SLOTS]


def test_frontend_lines_name_each_source_once_and_the_sticky_map(tmp_path: Path) -> None:
    spec = ring_spec("/run/admin.sock", "http://127.0.0.1:1/metrics", tmp_path / "maps", tmp_path)
    router = HAProxyRouter.from_spec(spec)
    assert router.cohorts is not None
    lines = router.cohorts.frontend_lines()
    assert lines[1] == (f"http-request set-var(txn.releasedeck) req.hdr(X-User-Group),"
                        f"map({tmp_path}/maps/checkout.header.x-user-group.map)")
    assert "req.cook(beta),map(" in lines[2] and "if !{ var(txn.releasedeck) -m found }" in lines[2]
    assert "req.hdr(X-User-Id),crc32,mod(100),map_int(" in lines[3]
    assert lines[-1] == "use_backend %[var(txn.releasedeck)] if { var(txn.releasedeck) -m found }"


def test_staff_on_the_candidate_others_sticky_and_never_back(cohort_proxy) -> None:
    with version_servers(["v1", "v2"]) as ports:
        proxy, router, stats = cohort_proxy(ports)
        salt = "checkout/v2"
        users = [f"user-{i}" for i in range(300)]
        staff = set(users[::20])  # 15 staff
        seen: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))

        def traffic(share: int, client: httpx.Client) -> None:
            for _ in range(4):
                for user in users:
                    headers = {"X-User-Id": user}
                    if user in staff:
                        headers["X-User-Group"] = "staff"
                    seen[user][share].add(client.get(proxy.url, headers=headers).text)

        async def route(share: int) -> None:
            await router.set_weights({"v1": 100 - share, "v2": share})
            await router.set_route(Route(cohorts=(CohortRule("staff", STAFF, "v2"),),
                                         sticky=UserKey(header="X-User-Id"), salt=salt))

        async def counted() -> dict[str, float]:
            return {r.version: r.requests_total for r in await stats.read(0.0)}

        async def scenario(client: httpx.Client) -> None:
            before = await counted()
            for share in (10, 30):
                await route(share)
                await asyncio.to_thread(traffic, share, client)
            after = await counted()
            # 2,400 requests, each user on exactly one version per share
            assert sum(after.values()) - sum(before.values()) == 2400
            for user in users:
                for share in (10, 30):
                    got = seen[user][share]
                    assert len(got) == 1, (user, share, got)
                    want = "v2" if user in staff else expected(
                        user, {"v1": 100 - share, "v2": share}, salt)
                    assert got == {want}, (user, share, got)
            on_v2 = {s: {u for u in users if u not in staff and seen[u][s] == {"v2"}}
                     for s in (10, 30)}
            assert on_v2[10] <= on_v2[30]  # nobody sent back as the share grew
            assert 10 <= len(on_v2[10]) < len(on_v2[30]) <= 150, {s: len(v) for s, v in on_v2.items()}
            # the exporter counts what each version served, cohort backends included
            assert after["v2"] - before["v2"] == 4 * (2 * len(staff) + len(on_v2[10]) + len(on_v2[30]))

            # what HAProxy holds: the staff map and a full sticky map
            maps = await router.maps()
            assert router.cohorts is not None
            assert maps[router.cohorts.path(router.cohorts.sources[0])] == {"staff": "checkout_v2"}
            assert len(maps[router.cohorts.sticky_path]) == SLOTS

            # roll back: every ring closed, everyone (staff too) on v1
            await router.set_route(Route(sticky=UserKey(header="X-User-Id"), salt=salt))
            await router.set_weights({"v1": 100, "v2": 0})
            await stats.close()

        with httpx.Client(timeout=5.0) as client:
            asyncio.run(scenario(client))
            answers = Counter(client.get(proxy.url, headers={
                "X-User-Id": u, "X-User-Group": "staff" if u in staff else "x"}).text
                for u in users)
            assert answers == {"v1": len(users)}
            # no user key: the weighted backend
            assert Counter(client.get(proxy.url).text for _ in range(20)) == {"v1": 20}


def test_cookie_cohort_and_requests_without_a_key_follow_the_weights(cohort_proxy) -> None:
    with version_servers(["v1", "v2"]) as ports:
        proxy, router, _ = cohort_proxy(ports)

        async def route() -> None:
            await router.set_weights({"v1": 100, "v2": 0})
            await router.set_route(Route(cohorts=(CohortRule("staff", STAFF, "v2"),
                                                  CohortRule("beta", BETA, "v2")),
                                         sticky=UserKey(header="X-User-Id"), salt="s"))

        asyncio.run(route())
        with httpx.Client(timeout=5.0) as client:
            beta = Counter(client.get(proxy.url, headers={"Cookie": "beta=yes"}).text for _ in range(20))
            other = Counter(client.get(proxy.url, headers={"Cookie": "beta=no"}).text for _ in range(20))
            assert beta == {"v2": 20} and other == {"v1": 20}
            sticky = Counter(client.get(proxy.url, headers={"X-User-Id": f"u{i}"}).text
                             for i in range(50))
            assert sticky == {"v1": 50}  # 0 % for the candidate: nobody with a key on it


def test_cohort_errors_are_one_line(cohort_proxy) -> None:
    with version_servers(["v1", "v2"]) as ports:
        _, router, _ = cohort_proxy(ports, with_lines=False)  # haproxy.cfg lacks the maps

        async def scenario() -> None:
            with pytest.raises(HAProxyError, match=r"has no map .* frontend lines") as info:
                await router.set_route(Route(cohorts=(CohortRule("staff", STAFF, "v2"),)))
            assert "\n" not in str(info.value)
            with pytest.raises(HAProxyError, match="does not mirror"):
                await router.set_route(Route(mirror=Mirror("v2", 10.0)))

        asyncio.run(scenario())


def test_config_template_is_the_one_the_suite_uses() -> None:
    assert "default_backend {backend}" in CONFIG  # CohortHAProxy inserts its lines before it


def test_sync_points_the_version_backends_at_the_instances_too(cohort_proxy) -> None:
    """`sync = true` with cohorts: the staff cohort reaches the candidate's instance on a port
    chosen at start-up (the version backend's server follows the platform, not the config)."""
    with version_servers(["v1", "v2"]) as first, version_servers(["v1", "v2"]) as moved:
        proxy, router, _ = cohort_proxy(first)
        router.sync = True
        snapshot = PlatformSnapshot(at=1.0, versions={
            v: VersionStatus(v, (Instance(f"{v}-1", v, True, f"127.0.0.1:{moved[v]}"),))
            for v in ("v1", "v2")})

        async def scenario() -> dict[tuple[str, str], str]:
            await router.sync_backends(snapshot)
            await router.sync_backends(snapshot)  # idempotent
            await router.set_route(Route(cohorts=(CohortRule("staff", STAFF, "v2"),)))
            return {(r.backend, r.server): r.addr
                    for r in parse_stat(await router.api.run("show stat"))
                    if r.backend.startswith("checkout")}

        addrs = asyncio.run(scenario())
        assert addrs[("checkout_v2", "v2x")] == f"127.0.0.1:{moved['v2']}"
        assert addrs[("checkout_v1", "v1x")] == f"127.0.0.1:{moved['v1']}"
        assert addrs[("checkout", "v2a")] == f"127.0.0.1:{moved['v2']}"
        with httpx.Client(timeout=5.0) as client:
            staff = Counter(client.get(proxy.url, headers={"X-User-Group": "staff"}).text
                            for _ in range(10))
        assert staff == {"v2": 10}


# --------------------------------------------------------------------------- reconcile each tick

LONG_RING = {**RING, "hold": "10m"}  # the step never ends inside a test: only reconcile moves


def reconciles(journal: MemoryJournal, lever: str) -> list[dict]:
    return [r for r in journal.records if r.get("kind") == "reconcile"
            and any(e.get("lever") == lever for e in r.get("evidence") or ())]


async def wanted_maps(router: HAProxyRouter, driver: Driver) -> dict[str, dict[str, str]]:
    """The maps the journal's targets call for (the live split for the sticky slots: the ring
    sets no weight), computed apart from the router's memory."""
    assert router.cohorts is not None
    target = driver.engine.route_target(await router.weights())
    assert target is not None and target.weights is not None
    return router.cohorts.contents(target.route, {v: float(w) for v, w in target.weights.items()},
                                   router.version_backends)


def test_a_cleared_cohort_map_is_put_back_by_the_ticks_with_one_reconcile_record(
        cohort_proxy, tmp_path: Path) -> None:
    """Ring 1 open; `clear map` over the runtime socket empties the staff map and the sticky
    map; bounded ticks put both back from the journal, with exactly one `reconcile` record for
    the cohort lever carrying what was found; a resumed releasedeck (a fresh router that
    remembers nothing) checks the maps from the journal alone and puts them back too."""
    with version_servers(["v1", "v2"]) as ports:
        proxy, router, _ = cohort_proxy(ports)
        assert router.cohorts is not None
        spec = ring_spec(proxy.socket, proxy.stats_url, Path(router.cohorts.directory), tmp_path,
                         LONG_RING)
        staff_map, sticky_map = router.cohorts.path(router.cohorts.sources[0]), router.cohorts.sticky_path
        clock = [1000.0]

        async def scenario() -> None:
            journal = MemoryJournal()
            driver = Driver(spec, Engine(spec, journal=journal), ServersPlatform.on_ports(ports), router,
                            build_source(spec), clock=lambda: clock[0])

            async def in_place() -> bool:
                target = driver.engine.route_target()
                return target is not None and await router.maps() == await wanted_maps(router, driver)

            await tick_until(driver, clock, in_place)
            maps = await router.maps()
            assert maps[staff_map] == {"staff": "checkout_v2"} and len(maps[sticky_map]) == SLOTS
            assert reconciles(journal, "set_cohorts:") == []

            for path in (staff_map, sticky_map):
                assert (await router.api.run(f"clear map {path}")).strip() == ""
            assert (await router.maps())[staff_map] == {}
            await tick_until(driver, clock, in_place)
            for _ in range(3):  # settled: nothing more to correct
                clock[0] += 1.0
                await driver.tick()
            found = reconciles(journal, "set_cohorts:")
            assert len(found) == 1, found
            detail = found[0]["evidence"][0]["detail"]
            assert "checkout.header.x-user-group.map: 1 missing of 1 entries" in detail, detail
            assert "checkout.sticky.map: 100 missing of 100 entries" in detail, detail
            assert [a["kind"] for a in found[0]["actions"]] == ["set_cohorts"]
            assert driver.engine.state.step == 0  # a correction, never a new decision

            # releasedeck restarts: a fresh router (no route in memory), the engine from the journal
            fresh = HAProxyRouter.from_spec(spec)
            again = MemoryJournal()
            resumed = Driver(spec, Engine(spec, journal=again, records=journal.records),
                             ServersPlatform.on_ports(ports), fresh, build_source(spec),
                             clock=lambda: clock[0])
            assert (await router.api.run(f"clear map {staff_map}")).strip() == ""

            async def restored() -> bool:
                return (await fresh.maps())[staff_map] == {"staff": "checkout_v2"}

            await tick_until(resumed, clock, restored)
            assert len(reconciles(again, "set_cohorts:")) == 1
            assert await fresh.maps() == await wanted_maps(fresh, resumed)
            await driver.source.close()
            await resumed.source.close()

        asyncio.run(asyncio.wait_for(scenario(), 120))


def test_a_closed_ring_map_must_be_present_and_the_sticky_map_is_judged_only_with_weights(
        cohort_proxy) -> None:
    """The read-back itself: an empty map the route wants empty is in place; a map HAProxy does
    not know is missing, not empty; without weights the sticky map is not compared."""
    with version_servers(["v1", "v2"]) as ports:
        _, router, _ = cohort_proxy(ports)
        assert router.cohorts is not None
        sticky = UserKey(header="X-User-Id")

        async def scenario() -> None:
            closed = Route(sticky=sticky, salt="s")
            await router.set_weights({"v1": 100, "v2": 0})
            await router.set_route(closed)
            assert await router.route_differences(closed, {"v1": 100, "v2": 0}) == ()
            staff = Route(cohorts=(CohortRule("staff", STAFF, "v2"),), sticky=sticky, salt="s")
            assert await router.route_differences(staff, {"v1": 100, "v2": 0}) == (
                "checkout.header.x-user-group.map: 1 missing of 1 entries",)
            # the sticky map off its weights counts only when the weights are known
            assert "checkout.sticky.map: 10 wrong of 100 entries" in \
                await router.route_differences(closed, {"v1": 90, "v2": 10})
            assert await router.route_differences(closed, None) == ()

        asyncio.run(scenario())
        lost = HAProxyRouter(router.api.address, "checkout", router.servers,
                             cohorts=replace(router.cohorts, directory="/nowhere"),
                             version_backends=router.version_backends)
        differences = asyncio.run(lost.route_differences(Route(sticky=sticky), {"v1": 100}))
        assert differences == ("checkout.cookie.beta.map: missing",
                               "checkout.header.x-user-group.map: missing",
                               "checkout.sticky.map: missing")
