"""The Kubernetes lease on the kmock emulator, through the official client over real HTTP: two
drivers compete for one coordination.k8s.io/v1 Lease, only one holds it, the loser names the
holder; an expired Lease is taken over; a released one is free at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import kmock
import pytest
from k8s_harness import NS, kmock_cluster, make_spec

from collectors.lease import Holder, LeaseHeld
from collectors.lease.kube_lease import ANNOTATION, KubeLease, lease_name

LEASES = kmock.resource("coordination.k8s.io", "v1", "leases")
T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def holder(user: str, pid: int, attach: str = "") -> Holder:
    return Holder(release="checkout", host=f"{user}-laptop", pid=pid, user=user, since=T0, attach=attach)


def stored_lease(emulator: kmock.KubernetesEmulator) -> dict:
    return dict(emulator.objects[LEASES, NS, lease_name("checkout")].raw)


def test_two_drivers_one_lease(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with kmock_cluster(tmp_path) as (emulator, kubeconfig):
            emulator.resources[LEASES] = {}
            spec = make_spec(kubeconfig, "replicas")
            clock = Clock()
            alice = KubeLease.for_spec(spec, clock=clock, renew_every=3600)
            bob = KubeLease.for_spec(spec, clock=clock, renew_every=3600)
            assert await alice.holder() is None
            await alice.acquire(holder("alice", 11, "http://127.0.0.1:4000"))
            with pytest.raises(LeaseHeld) as lost:
                await bob.acquire(holder("bob", 22))
            line = lost.value.line()
            assert "alice@alice-laptop/11" in line and "attach with: releasedeck attach http://127.0.0.1:4000" in line
            assert f"Lease {NS}/releasedeck-checkout" in line
            assert alice.lost() == "" and bob.lost() == "the lease is not held"
            lease = stored_lease(emulator)
            assert lease["spec"]["holderIdentity"] == "alice@alice-laptop/11"
            assert lease["spec"]["leaseDurationSeconds"] == 15
            assert Holder.from_json(lease["metadata"]["annotations"][ANNOTATION]).attach == "http://127.0.0.1:4000"
            seen = await bob.holder()
            assert seen is not None and seen.identity == "alice@alice-laptop/11"

            # alice stops renewing (crashed): within the duration bob still loses, after it he wins
            clock.now += 14
            with pytest.raises(LeaseHeld):
                await bob.acquire(holder("bob", 22))
            clock.now += 2
            assert await bob.holder() is None
            await bob.acquire(holder("bob", 22))
            lease = stored_lease(emulator)
            assert lease["spec"]["holderIdentity"] == "bob@bob-laptop/22"
            assert lease["spec"]["leaseTransitions"] == 1
            # alice comes back: her renewal finds bob's name and she stops driving
            await alice._renew()
            assert "taken over by bob@bob-laptop/22" in alice.lost()

            # bob leaves in order: the Lease is free at once for the next driver
            await bob.release()
            assert await alice.holder() is None
            carol = KubeLease.for_spec(spec, clock=clock, renew_every=3600)
            await carol.acquire(holder("carol", 33))
            assert stored_lease(emulator)["spec"]["holderIdentity"] == "carol@carol-laptop/33"
            await carol.release()
            writes = [(r.method.value, r.url.path) for r in list(emulator)
                      if r.method.value in ("POST", "PUT", "PATCH") and "leases" in r.url.path]
            assert writes[0] == ("POST", f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases")
            assert all(method in ("PUT", "PATCH") for method, _ in writes[1:])
            for lease_ in (alice, bob, carol):
                lease_.close()

    asyncio.run(scenario())


def test_renewal_keeps_the_lease(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with kmock_cluster(tmp_path) as (emulator, kubeconfig):
            emulator.resources[LEASES] = {}
            spec = make_spec(kubeconfig, "replicas")
            driver = KubeLease.for_spec(spec, renew_every=0.05)
            await driver.acquire(holder("alice", 11))
            first = stored_lease(emulator)["spec"]["renewTime"]
            for _ in range(100):
                await asyncio.sleep(0.05)
                if stored_lease(emulator)["spec"]["renewTime"] != first:
                    break
            assert stored_lease(emulator)["spec"]["renewTime"] > first
            assert driver.lost() == ""
            await driver.release()
            assert not stored_lease(emulator)["spec"].get("holderIdentity")
            driver.close()

    asyncio.run(scenario())


def test_a_driver_that_lost_its_lease_pulls_no_lever(tmp_path: Path) -> None:
    """Two drivers on one Lease: after bob takes the expired Lease over, alice's driver (the real
    Driver and engine) decides but moves nothing, and says so once; bob's driver acts."""
    from strategies.engine import Engine
    from strategies.journal import MemoryJournal
    from tests.doubles import Clock as DriverClock
    from tests.doubles import MemoryPlatform, MemoryRouter, ScriptedSource
    from tests.serve.support import quick_spec
    from tui.driver import Driver

    release = quick_spec(hold="1h")

    def driver_for(lease: KubeLease) -> tuple[Driver, MemoryRouter]:
        router = MemoryRouter()
        driver = Driver(release, Engine(release, journal=MemoryJournal()), MemoryPlatform(), router,
                        ScriptedSource(), clock=DriverClock(), lease=lease)
        return driver, router

    async def scenario() -> None:
        async with kmock_cluster(tmp_path) as (emulator, kubeconfig):
            emulator.resources[LEASES] = {}
            spec = make_spec(kubeconfig, "replicas")
            clock = Clock()
            alice = KubeLease.for_spec(spec, clock=clock, renew_every=3600)
            bob = KubeLease.for_spec(spec, clock=clock, renew_every=3600)
            await alice.acquire(holder("alice", 11))
            alice_driver, alice_router = driver_for(alice)
            await alice_driver.tick()
            assert alice_router.history == [{"v1": 80, "v2": 20}]  # alice drives

            clock.now += 16  # alice could not renew for longer than the Lease lasts
            await bob.acquire(holder("bob", 22))
            await alice._renew()
            bob_driver, bob_router = driver_for(bob)
            for _ in range(3):
                await alice_driver.tick()
                await bob_driver.tick()
            assert alice_router.history == [{"v1": 80, "v2": 20}]  # nothing moved after the loss
            lost = [e for e in alice_driver.events if e.event == "lease_lost"]
            assert len(lost) == 1 and "taken over by bob@bob-laptop/22" in lost[0].details["reason"]
            assert bob_router.history == [{"v1": 80, "v2": 20}]  # bob drives
            for lease_ in (alice, bob):
                await lease_.release()
                lease_.close()

    asyncio.run(scenario())
