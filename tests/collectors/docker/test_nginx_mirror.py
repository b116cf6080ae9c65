"""Dark launch through releasedeck's own nginx (`[router] kind = "nginx"`): real nginx on
127.0.0.1, real demo services (collectors.local.demo_service processes), real requests.

Counts only: every user answer's version, and the candidate's own request counter (nothing but
nginx's mirror reaches it). Waits are bounded polls on what is asserted."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import threading
import tomllib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from collectors.local.platform import LocalPlatform
from collectors.nginx import NginxError, NginxRouter, mirror_in_config
from strategies.cohorts import CohortMatch, CohortRule, Mirror, Route
from strategies.engine import Engine
from strategies.journal import MemoryJournal
from strategies.model import Phase
from strategies.spec import parse_spec
from tests.collectors.docker.helpers import ServersPlatform, async_wait_until, version_servers, wait_until
from tests.support.ports import free_port, free_ports
from tests.support.ticking import tick_until
from tui.demo_specs import demo_spec_text
from tui.driver import Driver
from tui.wiring import build_source

ROOT = Path(__file__).resolve().parents[3]
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx not installed: apt-get install "
                                "--no-install-recommends nginx (Debian package nginx)")


def served_by(port: int) -> float:
    """Requests a demo service answered so far (its own http_requests_total, all codes)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return sum(float(line.rpartition(" ")[2]) for line in text.splitlines()
               if line.startswith("http_requests_total{"))


@pytest.fixture
def services() -> Iterator[dict[str, int]]:
    """v1 and v2 demo services on their own ports, ready (bounded wait)."""
    ports = dict(zip(("v1", "v2"), free_ports(2), strict=True))
    procs = [subprocess.Popen([sys.executable, "-m", "collectors.local.demo_service", "--version", v,
                               "--port", str(p), "--latency-ms", "1"], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for v, p in ports.items()]
    try:
        for port in ports.values():
            wait_until(lambda port=port: httpx.get(f"http://127.0.0.1:{port}/healthz",
                                                   timeout=2).status_code == 200,
                       timeout=60, what=f"demo service on {port}")
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


def router_for(ports: dict[str, int]) -> NginxRouter:
    return NginxRouter(port=free_port(), weights={"v1": 100, "v2": 0},
                       backends={v: [f"127.0.0.1:{p}"] for v, p in ports.items()})


async def users(router: NginxRouter, n: int) -> Counter:
    """n user requests through nginx (4 at a time); the versions that answered them."""
    seen: Counter = Counter()
    async with httpx.AsyncClient(timeout=10) as client:
        async def one(count: int) -> None:
            for _ in range(count):
                answer = await client.get(f"{router.url}/checkout")
                seen[answer.json()["version"]] += 1
        await asyncio.gather(*(one(n // 4) for _ in range(4)))
    return seen


def test_users_get_the_baseline_while_the_candidate_gets_the_mirrored_share(services) -> None:
    async def scenario() -> None:
        router = router_for(services)
        try:
            await router.start()
            await router.set_route(Route(mirror=Mirror("v2", 25)))
            assert served_by(services["v2"]) == 0
            seen = await users(router, 800)
            assert seen == Counter({"v1": 800})  # no user is ever answered by the candidate
            # ≈ 25 % of 800 = 200 copies (binomial sd ≈ 12): bounds are counts, not timings
            await async_wait_until(lambda: _between(services["v2"], 120, 280), timeout=30,
                                   what="the candidate to receive ≈ 25 % of 800 requests")
            assert 120 <= served_by(services["v2"]) <= 280
        finally:
            await router.close()
        assert router.prefix is not None and not router.prefix.exists()

    asyncio.run(asyncio.wait_for(scenario(), 120))


async def _between(port: int, low: float, high: float) -> bool:
    return low <= await asyncio.to_thread(served_by, port) <= high


def test_a_share_change_is_in_effect_when_the_call_returns(services) -> None:
    async def scenario() -> None:
        router = router_for(services)
        try:
            await router.start()
            await router.set_route(Route(mirror=Mirror("v2", 100)))
            assert await users(router, 100) == Counter({"v1": 100})
            await async_wait_until(lambda: _between(services["v2"], 100, 100), timeout=30,
                                   what="every one of 100 requests mirrored at 100 %")
            await router.set_route(Route())  # leaving dark: no mirror at all
            assert router.mirror is None
            assert await users(router, 100) == Counter({"v1": 100})
            assert served_by(services["v2"]) == 100  # the 100 after the change: none mirrored
            await router.set_weights({"v1": 50, "v2": 50})
            assert set(await users(router, 200)) == {"v1", "v2"}
            await router.set_weights({"v1": 100, "v2": 0})  # rollback: users back on v1 at once
            assert await users(router, 100) == Counter({"v1": 100})
        finally:
            await router.close()

    asyncio.run(asyncio.wait_for(scenario(), 120))


def test_bad_config_is_one_line_and_the_running_config_stays(services) -> None:
    async def scenario() -> None:
        router = router_for(services)
        try:
            await router.start()
            router._backends["v2"] = ["not an address"]
            with pytest.raises(NginxError) as caught:
                await router.set_route(Route(mirror=Mirror("v2", 50)))
            message = str(caught.value)
            assert message.startswith("nginx refused the config: ") and "\n" not in message
            assert await users(router, 40) == Counter({"v1": 40})
            with pytest.raises(NginxError, match="no cohorts or sticky users"):
                await router.set_route(Route(cohorts=(CohortRule(
                    "staff", CohortMatch(header="X-User-Group", values=("staff",)), "v2"),)))
        finally:
            await router.close()
        bad = NginxRouter(port=free_port(), weights={"v1": 100}, backends={"v1": ["not an address"]})
        with pytest.raises(NginxError, match=r"^nginx refused the config: [^\n]*$"):
            await bad.start()
        assert bad.prefix is not None and not bad.prefix.exists()  # nothing left behind

    asyncio.run(asyncio.wait_for(scenario(), 120))


def test_missing_nginx_is_one_line() -> None:
    router = NginxRouter(port=free_port(), weights={"v1": 100}, binary="/nonexistent/nginx")
    with pytest.raises(NginxError, match=r"^nginx not found: install the Debian package nginx"):
        asyncio.run(router.start())


def test_faulted_candidate_in_the_dark_is_rolled_back_and_no_user_met_it(tmp_path: Path) -> None:
    """The engine's dark step through nginx: gates read the candidate's shadow answers (its own
    counters, scraped) and roll back; every user answer came from v1 meanwhile."""
    text = demo_spec_text("dark").replace('hold = "8s" }', 'hold = "60s" }', 1)
    text = "\n".join(line for line in text.splitlines() if not line.startswith("behaviour.v2"))
    text = text.replace("[metrics]", "behaviour.v2 = { latency_ms = 5, error_ratio = 0.5 }\n"
                        f'\n[router]\nkind = "nginx"\nport = {free_port()}\n\n[metrics]', 1)
    spec = parse_spec(tomllib.loads(text), str(tmp_path / "dark.toml"))
    seen: Counter = Counter()
    stop = threading.Event()

    def load(url: str) -> None:
        with httpx.Client(timeout=5) as client:
            while not stop.is_set():
                try:
                    seen[client.get(f"{url}/checkout").json()["version"]] += 1
                except (httpx.HTTPError, ValueError):
                    seen["failed"] += 1
                stop.wait(0.01)

    async def scenario() -> None:
        platform = LocalPlatform.from_spec(spec)
        router = NginxRouter.from_spec(spec)
        driver = None
        try:
            for version in spec.workloads:
                await platform.scale(version, 1)
            await platform.wait_ready(60)
            await router.sync_backends(await platform.snapshot(list(spec.workloads), 0.0))
            await router.start()
            worker = threading.Thread(target=load, args=(router.url,), daemon=True)
            worker.start()
            driver = Driver(spec, Engine(spec), platform, router, build_source(spec))
            await driver.run(timeout=150)
            stop.set()
            await asyncio.to_thread(worker.join, 10)
            state = driver.engine.state
            assert state.phase is Phase.ROLLED_BACK and state.step == 0, state.reason
            assert state.cause[0]["gate"] == "error-rate"
            assert router.mirror is None  # rollback removed the mirror
            assert seen["v1"] > 0 and seen["v2"] == 0
        finally:
            stop.set()
            if driver is not None:
                await driver.close()
            await router.close()
            await platform.close()

    asyncio.run(asyncio.wait_for(scenario(), 240))


def test_a_resumed_release_puts_the_journals_mirror_back_into_a_fresh_nginx(tmp_path: Path) -> None:
    """A dark step through the Driver, then releasedeck restarts: its fresh nginx starts with no
    mirror (resume never repeats an action); the read-back of the config nginx loads finds it
    missing, and one `reconcile` record for the cohort lever puts the journal's mirror back."""
    spec = parse_spec({
        "release": {"service": "checkout", "baseline": "v1", "candidate": "v2"},
        "platform": {"kind": "docker", "selector": "app=checkout"},
        "router": {"kind": "nginx", "port": free_port()},
        "strategy": {"kind": "canary", "steps": [{"dark": 50, "hold": "10m"}, 100]},
    }, str(tmp_path / "dark.toml"))
    clock = [1000.0]

    def fixes(journal: MemoryJournal) -> list[dict]:
        return [r for r in journal.records if r.get("kind") == "reconcile"
                and any(e.get("lever") == "set_cohorts:" for e in r.get("evidence") or ())]

    def loaded(router: NginxRouter) -> tuple[str, float] | None:
        assert router.prefix is not None
        return mirror_in_config((router.prefix / "nginx.conf").read_text())

    async def scenario(ports: dict[str, int]) -> None:
        backends = {v: [f"127.0.0.1:{p}"] for v, p in ports.items()}
        first = NginxRouter(port=free_port(), weights={"v1": 100, "v2": 0}, backends=backends)
        second = NginxRouter(port=free_port(), weights={"v1": 100, "v2": 0}, backends=backends)
        sources = [build_source(spec), build_source(spec)]
        try:
            await first.start()
            journal = MemoryJournal()
            driver = Driver(spec, Engine(spec, journal=journal), ServersPlatform.on_ports(ports), first,
                            sources[0], clock=lambda: clock[0])
            await tick_until(driver, clock, lambda: loaded(first) == ("rd_v2", 50.0)
                        and driver.engine.route_target() is not None)
            for _ in range(2):  # in place: read back, nothing to correct
                clock[0] += 1.0
                await driver.tick()
            assert fixes(journal) == []
            await first.close()

            await second.start()  # releasedeck again: a new nginx, nothing in memory
            assert loaded(second) is None
            again = MemoryJournal()
            resumed = Driver(spec, Engine(spec, journal=again, records=journal.records),
                             ServersPlatform.on_ports(ports), second, sources[1],
                             clock=lambda: clock[0])
            await tick_until(resumed, clock, lambda: loaded(second) == ("rd_v2", 50.0))
            for _ in range(3):  # settled
                clock[0] += 1.0
                await resumed.tick()
            found = fixes(again)
            assert len(found) == 1, found
            assert found[0]["evidence"][0]["detail"] == \
                "nginx: the config mirrors nothing, 50% to rd_v2 is wanted"
            assert second.mirror == ("v2", 50.0) and resumed.engine.state.step == 0
        finally:
            for source in sources:
                await source.close()
            await first.close()
            await second.close()

    with version_servers(["v1", "v2"]) as ports:
        asyncio.run(asyncio.wait_for(scenario(ports), 120))
