"""Routers that die or stop answering mid-release, as an operator breaks them by hand.

Real processes throughout: releasedeck's own nginx (`[router] kind = "nginx"`) and the built-in
router's process, killed or stopped with real signals, in front of real HTTP servers. The driver
ticks on a simulated clock (one second a tick), so holds are counted in ticks, never timed; every
wait on a process is a bounded poll on what is asserted.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from collectors.local.router import LocalRouter
from collectors.nginx import NginxRouter
from strategies.engine import Engine
from strategies.journal import MemoryJournal
from strategies.model import Phase
from strategies.spec import ReleaseSpec, parse_spec
from tests.collectors.docker.helpers import ServersPlatform, async_wait_until, version_servers
from tests.doubles import ScriptedSource
from tests.faults.support import exited
from tests.support.ports import free_port
from tests.support.ticking import tick_until
from tui.driver import Driver

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx not installed: apt-get install "
                                 "--no-install-recommends nginx (Debian package nginx)")

HOLD = 30  # seconds (ticks) a step holds: the kill comes after HELD of them
HELD = 20


def spec_for(router: str, tmp_path: Path) -> ReleaseSpec:
    """A plain canary with no gates: a step advances on its observed hold alone, so a hold that
    the dead router did not restart would be seen advancing."""
    return parse_spec({
        "release": {"service": "checkout", "baseline": "v1", "candidate": "v2"},
        "platform": {"kind": "docker", "selector": "app=checkout"},
        "router": {"kind": router, "port": free_port()},
        "strategy": {"kind": "canary", "steps": [20, 50, 100], "hold": f"{HOLD}s"},
    }, str(tmp_path / "release.toml"))


@pytest.fixture
def servers() -> Iterator[dict[str, int]]:
    with version_servers(["v1", "v2"]) as ports:
        yield ports


def records(journal: MemoryJournal, kind: str) -> list[dict[str, Any]]:
    return [r for r in journal.records if r.get("kind") == kind]


def at_weight(driver: Driver, weight: int) -> bool:
    state = driver.engine.state
    return state.weight == weight and not state.pending


async def answered_by(url: str, n: int) -> set[str]:
    """The versions that answered n requests through the router."""
    async with httpx.AsyncClient(timeout=10) as client:
        return {(await client.get(f"{url}/")).text for _ in range(n)}


def dead(pid: int) -> bool:
    """Killed: gone, or a zombie its parent has not reaped yet."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def nginx_release(spec: ReleaseSpec, servers: dict[str, int], journal: MemoryJournal,
                  clock: list[float]) -> tuple[NginxRouter, Driver]:
    """releasedeck's nginx in front of the two version servers (all traffic on v1 until the
    first step), and a Driver on the test's clock that journals into `journal`."""
    router = NginxRouter(port=free_port(), weights={"v1": 100, "v2": 0},
                         backends={v: [f"127.0.0.1:{p}"] for v, p in servers.items()})
    driver = Driver(spec, Engine(spec, journal=journal), ServersPlatform.on_ports(servers),
                    router, ScriptedSource(), clock=lambda: clock[0])
    return router, driver


async def held_at_step_one(driver: Driver, clock: list[float]) -> None:
    """Step 1 (20 %) applied, then HELD of its HOLD seconds observed."""
    await tick_until(driver, clock, lambda: at_weight(driver, 20))
    for _ in range(HELD):
        clock[0] += 1.0
        await driver.tick()
    assert driver.engine.state.step == 0 and (driver.engine.hold_observed or 0) >= HELD - 1


async def ticks(driver: Driver, clock: list[float], n: int) -> None:
    for _ in range(n):
        clock[0] += 1.0
        await asyncio.wait_for(driver.tick(), 60)  # a tick that hangs fails here


@needs_nginx
def test_a_killed_nginx_master_is_seen_restarted_from_the_journal_and_holds_the_step(
        servers: dict[str, int], tmp_path: Path) -> None:
    spec = spec_for("nginx", tmp_path)
    clock = [1000.0]
    journal = MemoryJournal()

    async def scenario() -> None:
        router, driver = nginx_release(spec, servers, journal, clock)
        try:
            await router.start()
            await held_at_step_one(driver, clock)
            master = router.pid
            assert master is not None
            workers = psutil.Process(master).children()
            assert workers  # left serving the old config once their master is gone
            os.kill(master, signal.SIGKILL)
            await async_wait_until(lambda: asyncio.to_thread(exited, master), timeout=30,
                                   what="the nginx master to die")

            await ticks(driver, clock, 1)  # sees it, journals why, re-applies: nginx again

            fixes = records(journal, "reconcile")
            assert len(fixes) == 1, fixes
            evidence = fixes[0]["evidence"][0]
            assert evidence["lever"] == "set_weight:" and evidence["desired"] == 20
            assert evidence["detail"] == f"nginx: master pid {master} exited (killed by SIGKILL)"
            assert driver.engine.hold_observed == 0  # the step's evidence starts again
            # re-applied in that tick; on a loaded machine a start cut by the tick's timeout is
            # finished by the act path's retry (no second reconcile record)
            await tick_until(driver, clock, lambda: router.pid not in (None, master)
                             and not driver.engine.state.pending)
            assert all(dead(w.pid) for w in workers)  # the old config's workers went with it
            assert router.prefix is not None
            assert "80% rd_v1;" in (router.prefix / "nginx.conf").read_text()  # the journal's 20 %
            assert await answered_by(router.url, 200) == {"v1", "v2"}

            await ticks(driver, clock, HOLD - HELD + 5)  # past where the old hold would have ended
            assert driver.engine.state.step == 0 and driver.engine.state.phase is Phase.PROGRESSING
            await tick_until(driver, clock, lambda: driver.engine.state.step == 1, limit=HOLD + 10)
            kinds = [r["kind"] for r in journal.records]
            assert kinds.count("reconcile") == 1  # one episode, one record
            assert kinds.index("reconcile") < kinds.index("step")
            assert "rolling_back" not in kinds and "paused" not in kinds
        finally:
            await driver.close()

    asyncio.run(asyncio.wait_for(scenario(), 240))


@needs_nginx
def test_killed_nginx_workers_are_replaced_by_their_master_and_nothing_is_corrected(
        servers: dict[str, int], tmp_path: Path) -> None:
    """nginx's master starts a killed worker again at once: the router still serves the
    journal's weights, so there is nothing to correct, and the step's hold goes on."""
    spec = spec_for("nginx", tmp_path)
    clock = [1000.0]
    journal = MemoryJournal()

    async def scenario() -> None:
        router, driver = nginx_release(spec, servers, journal, clock)
        try:
            await router.start()
            await held_at_step_one(driver, clock)
            master = router.pid
            assert master is not None
            killed = {w.pid for w in psutil.Process(master).children()}
            for pid in killed:
                os.kill(pid, signal.SIGKILL)
            await async_wait_until(lambda: asyncio.to_thread(
                lambda: {w.pid for w in psutil.Process(master).children()
                         if w.status() != psutil.STATUS_ZOMBIE} - killed), timeout=30,
                what="nginx's master to start a new worker")

            await tick_until(driver, clock, lambda: driver.engine.state.step == 1,
                             limit=HOLD - HELD + 10)
            assert router.pid == master
            assert records(journal, "reconcile") == []
            assert await answered_by(router.url, 200) == {"v1", "v2"}
        finally:
            await driver.close()

    asyncio.run(asyncio.wait_for(scenario(), 240))


@needs_nginx
def test_a_master_left_without_workers_is_reported_and_reloaded_once_it_can(
        servers: dict[str, int], tmp_path: Path) -> None:
    """A master that cannot replace its workers (stopped, its workers killed) is down for the
    tick: one reconcile record says so, the step holds, and the re-applied weight (a reload)
    goes through once the master runs again."""
    spec = spec_for("nginx", tmp_path)
    clock = [1000.0]
    journal = MemoryJournal()

    async def scenario() -> None:
        router, driver = nginx_release(spec, servers, journal, clock)
        master = None
        try:
            await router.start()
            await held_at_step_one(driver, clock)
            master = router.pid
            assert master is not None
            os.kill(master, signal.SIGSTOP)
            workers = psutil.Process(master).children()
            for worker in workers:
                worker.kill()
            await async_wait_until(lambda: asyncio.to_thread(
                lambda: all(dead(w.pid) for w in workers)), timeout=30, what="the workers to die")

            await tick_until(driver, clock, lambda: records(journal, "reconcile"), limit=5)
            [fix] = records(journal, "reconcile")
            assert fix["evidence"][0]["detail"] == f"nginx: master pid {master} has no worker process"
            assert driver.engine.hold_observed == 0 and driver.engine.state.step == 0
            os.kill(master, signal.SIGCONT)
            master = None
            await tick_until(driver, clock, lambda: driver.engine.state.step == 1, limit=HOLD + 20)
            assert router.pid is not None and psutil.Process(router.pid).children()
            kinds = [r["kind"] for r in journal.records]
            assert kinds.count("reconcile") == 1
            assert "rolling_back" not in kinds and "paused" not in kinds
        finally:
            if master is not None:
                os.kill(master, signal.SIGCONT)
            await driver.close()

    asyncio.run(asyncio.wait_for(scenario(), 300))


def test_a_stopped_built_in_router_leaves_every_tick_bounded_and_the_step_held(
        servers: dict[str, int], tmp_path: Path) -> None:
    """SIGSTOP: the router's process is alive but answers nothing. Each tick still ends (its
    calls time out), says the router cannot be read, and the step's hold starts again; after
    SIGCONT the release goes on, with nothing rolled back."""
    spec = spec_for("local", tmp_path)
    clock = [1000.0]
    journal = MemoryJournal()

    async def scenario() -> None:
        router = LocalRouter(port=free_port(), weights={"v1": 100, "v2": 0})
        driver = Driver(spec, Engine(spec, journal=journal), ServersPlatform.on_ports(servers),
                        router, ScriptedSource(), clock=lambda: clock[0])
        stopped = None
        try:
            await router.start()
            await held_at_step_one(driver, clock)
            stopped = router.pid
            assert stopped is not None
            os.kill(stopped, signal.SIGSTOP)
            await async_wait_until(lambda: asyncio.to_thread(
                lambda: psutil.Process(stopped).status() == psutil.STATUS_STOPPED), timeout=30,
                what="the router to stop")

            await ticks(driver, clock, HOLD - HELD + 5)  # each one bounded (60 s each at most)

            state = driver.state
            assert state.platform_error is not None and "router local" in state.platform_error
            assert driver.engine.state.step == 0 and driver.engine.hold_observed == 0
            os.kill(stopped, signal.SIGCONT)
            stopped = None
            await tick_until(driver, clock, lambda: driver.engine.state.step == 1, limit=HOLD + 20)
            assert router.pid is not None and router.restarts == 0  # the same process went on
            kinds = [r["kind"] for r in journal.records]
            assert "rolling_back" not in kinds and "paused" not in kinds
        finally:
            if stopped is not None:
                os.kill(stopped, signal.SIGCONT)
            await driver.close()

    asyncio.run(asyncio.wait_for(scenario(), 300))
