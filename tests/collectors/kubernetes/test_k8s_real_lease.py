"""One driver per release on a real kube-apiserver: the coordination.k8s.io/v1 Lease.

The Lease is written by KubeLease exactly as in production (a PUT of the whole Lease with its
resourceVersion, plain JSON bodies with MicroTime stamps), so what the API server refuses here
it would refuse in a cluster: 409 for a stale resourceVersion, 403 from RBAC, 400 for a badly
formatted time (kmock, which these tests replace, accepted all of those). Expiry is judged with
a clock the test moves where it can, so no test depends on how fast a loaded machine runs; the
process test waits for real expiry, with bounded polling and generous limits.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from collectors.lease import Holder, LeaseError, LeaseHeld
from collectors.lease.kube_lease import ANNOTATION, KubeLease, lease_name
from strategies.model import parse_rfc3339
from strategies.spec import SpecError, parse_spec
from tests.collectors.kubernetes.real_cluster import MANIFESTS, manifest, run, spec_for, wait_pods
from tests.support.kube_traffic import ClusterTraffic
from tui import exitcodes

pytestmark = pytest.mark.timeout(600)  # the first test also waits for the control plane to start

ROOT = Path(__file__).resolve().parents[3]
NAME = lease_name("checkout")
MICRO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


class Clock:
    """A clock the test moves: expiry without waiting for it."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def holder(user: str, pid: int, attach: str = "") -> Holder:
    return Holder(release="checkout", host=f"{user}-laptop", pid=pid, user=user, since=time.time(), attach=attach)


def stored(ns) -> dict[str, Any]:
    """The Lease as the API server keeps it (admin credentials, raw JSON)."""
    api = client.CoordinationV1Api(ns.api)
    return json.loads(api.read_namespaced_lease(NAME, ns.name, _preload_content=False).data)


def lease_exists(ns) -> bool:
    try:
        stored(ns)
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def wait_for(what: Callable[[], Any], description: str, timeout: float = 90.0, pause: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(pause)
    raise AssertionError(f"not within {timeout:.0f}s: {description}")


def leases_for(ns, *names: str, clock: Callable[[], float] | None = None, duration: int = 8,
               renew_every: float = 3600.0) -> list[KubeLease]:
    """One KubeLease per session, each with its own client, as separate processes would have."""
    spec = spec_for(ns, "replicas", lease_duration=duration)
    extra: dict[str, Any] = {"renew_every": renew_every}
    if clock is not None:
        extra["clock"] = clock
    return [KubeLease.for_spec(spec, **extra) for _ in names]


async def closing(*leases: KubeLease) -> None:
    for lease in leases:
        await lease.release()
        lease.close()


# ---------------------------------------------------------------------------- in-process sessions


def test_two_sessions_one_lease(kube_namespace) -> None:
    """The loser names the holder and the attach command; takeover only after expiry; the old
    holder's renewal finds the new holder and stops driving; a released Lease is free at once."""
    ns = kube_namespace
    clock = Clock()
    alice, bob, carol = leases_for(ns, "alice", "bob", "carol", clock=clock, duration=8)
    assert alice.duration == 8  # [platform] lease_duration

    async def scenario() -> None:
        assert await alice.holder() is None
        await alice.acquire(holder("alice", 11, "http://127.0.0.1:4000"))
        with pytest.raises(LeaseHeld) as refused:
            await bob.acquire(holder("bob", 22))
        line = refused.value.line()
        assert "\n" not in line
        assert "already driven by alice@alice-laptop/11 since " in line
        assert f"(lease Lease {ns.name}/{NAME}); attach with: releasedeck attach http://127.0.0.1:4000" in line
        assert alice.lost() == "" and bob.lost() == "the lease is not held"
        lease = stored(ns)
        assert lease["spec"]["holderIdentity"] == "alice@alice-laptop/11"
        assert lease["spec"]["leaseDurationSeconds"] == 8
        assert lease["spec"]["leaseTransitions"] == 0
        assert MICRO.match(lease["spec"]["renewTime"]) and MICRO.match(lease["spec"]["acquireTime"])
        assert Holder.from_json(lease["metadata"]["annotations"][ANNOTATION]).attach == "http://127.0.0.1:4000"
        seen = await bob.holder()
        assert seen is not None and seen.identity == "alice@alice-laptop/11"

        # alice stops renewing (as if crashed): within the duration bob still loses, after it he wins
        clock.now += 7
        with pytest.raises(LeaseHeld):
            await bob.acquire(holder("bob", 22))
        assert stored(ns)["spec"]["holderIdentity"] == "alice@alice-laptop/11"
        clock.now += 2
        assert await bob.holder() is None
        await bob.acquire(holder("bob", 22))
        lease = stored(ns)
        assert lease["spec"]["holderIdentity"] == "bob@bob-laptop/22"
        assert lease["spec"]["leaseTransitions"] == 1
        # alice comes back: her renewal finds bob's name and she stops driving, writing nothing
        version = lease["metadata"]["resourceVersion"]
        await alice._renew()
        assert "taken over by bob@bob-laptop/22" in alice.lost()
        assert stored(ns)["metadata"]["resourceVersion"] == version
        await alice.release()  # a session that lost the Lease gives up nothing of bob's
        assert stored(ns)["spec"]["holderIdentity"] == "bob@bob-laptop/22"

        # bob leaves in order: the Lease is free at once for the next driver
        await bob.release()
        assert not stored(ns)["spec"].get("holderIdentity")
        assert await carol.holder() is None
        await carol.acquire(holder("carol", 33))
        assert stored(ns)["spec"]["holderIdentity"] == "carol@carol-laptop/33"

    try:
        run(scenario())
    finally:
        run(closing(alice, bob, carol))


def test_renewal_while_held(kube_namespace) -> None:
    """The holder renews in the background on the real clock; meanwhile nobody takes over."""
    ns = kube_namespace
    # a long duration: a loaded machine that delays one renewal by seconds still holds the Lease
    alice, bob = leases_for(ns, "alice", "bob", duration=60, renew_every=0.3)

    async def scenario() -> None:
        await alice.acquire(holder("alice", 11))
        renewals: set[str] = {stored(ns)["spec"]["renewTime"]}
        deadline = time.monotonic() + 90
        while len(renewals) < 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            renewals.add(stored(ns)["spec"]["renewTime"])
        assert len(renewals) >= 4, f"renewTime changed only {len(renewals) - 1} times"
        assert sorted(renewals, key=parse_rfc3339) == sorted(renewals)  # only ever forward
        assert alice.lost() == ""
        with pytest.raises(LeaseHeld):
            await bob.acquire(holder("bob", 22))
        lease = stored(ns)
        assert lease["spec"]["holderIdentity"] == "alice@alice-laptop/11"
        assert lease["spec"]["leaseTransitions"] == 0
        await alice.release()
        assert not stored(ns)["spec"].get("holderIdentity")
        await bob.acquire(holder("bob", 22))  # no need to wait for expiry after a release
        assert stored(ns)["spec"]["holderIdentity"] == "bob@bob-laptop/22"

    try:
        run(scenario())
    finally:
        run(closing(alice, bob))


def barrier_reads(leases: list[KubeLease]) -> None:
    """Every session's next read of the Lease waits until all have read: they all then write on
    the same resourceVersion (or all create), the race the API server must settle."""
    barrier = asyncio.Barrier(len(leases))
    for lease in leases:
        read = lease.kube.get_lease
        armed = [True]

        async def get_lease(name: str, read=read, armed=armed) -> dict[str, Any]:
            try:
                return await read(name)
            finally:
                if armed[0]:
                    armed[0] = False
                    await barrier.wait()

        lease.kube.get_lease = get_lease  # type: ignore[method-assign]


@pytest.mark.parametrize("start", ["no-lease", "expired"])
def test_a_race_for_the_lease_has_exactly_one_winner(kube_namespace, start: str) -> None:
    ns = kube_namespace
    clock = Clock()
    old, alice, bob = leases_for(ns, "old", "alice", "bob", clock=clock, duration=8)

    async def scenario() -> None:
        before = 0
        if start == "expired":
            await old.acquire(holder("old", 5))
            before = stored(ns)["spec"]["leaseTransitions"]
            old._renewer.cancel()  # it crashed
            clock.now += 10
        barrier_reads([alice, bob])
        outcomes = await asyncio.gather(alice.acquire(holder("alice", 11)), bob.acquire(holder("bob", 22)),
                                        return_exceptions=True)
        winners = [who for who, outcome in zip(("alice", "bob"), outcomes, strict=True) if outcome is None]
        losers = [outcome for outcome in outcomes if outcome is not None]
        assert len(winners) == 1, outcomes
        [lost] = losers
        assert isinstance(lost, LeaseHeld), lost
        winner = winners[0]
        identity = f"{winner}@{winner}-laptop/{11 if winner == 'alice' else 22}"
        assert lost.holder is not None and lost.holder.identity == identity  # the loser names the winner
        lease = stored(ns)
        assert lease["spec"]["holderIdentity"] == identity
        assert lease["spec"]["leaseTransitions"] == before + (1 if start == "expired" else 0)

    try:
        run(scenario())
    finally:
        run(closing(alice, bob, old))


def test_a_renewal_meeting_a_concurrent_write_keeps_it(kube_namespace) -> None:
    """Someone annotates the Lease between the holder's read and its write (kubectl annotate):
    the API server refuses the stale write (409), the holder reads again and renews on top of
    it, keeping the other writer's annotation, and still holds the Lease."""
    ns = kube_namespace
    [alice] = leases_for(ns, "alice", duration=30)
    coordination = client.CoordinationV1Api(ns.api)
    reads: list[str] = []

    async def scenario() -> None:
        await alice.acquire(holder("alice", 11))
        first_renewal = stored(ns)["spec"]["renewTime"]
        read = alice.kube.get_lease

        async def get_lease(name: str) -> dict[str, Any]:
            lease = await read(name)
            reads.append(lease["metadata"]["resourceVersion"])
            if len(reads) == 1:  # the other writer, right after the holder's read
                await asyncio.to_thread(
                    coordination.patch_namespaced_lease, NAME, ns.name,
                    {"metadata": {"annotations": {"example.com/note": "on call: bob"}}},
                    _content_type="application/merge-patch+json", _preload_content=False)
            return lease

        alice.kube.get_lease = get_lease  # type: ignore[method-assign]
        await alice._renew()
        assert alice.lost() == ""
        assert len(reads) == 2 and reads[0] != reads[1]  # refused once (409), read again
        lease = stored(ns)
        assert lease["metadata"]["annotations"]["example.com/note"] == "on call: bob"
        assert Holder.from_json(lease["metadata"]["annotations"][ANNOTATION]).identity == "alice@alice-laptop/11"
        assert lease["spec"]["holderIdentity"] == "alice@alice-laptop/11"
        assert parse_rfc3339(lease["spec"]["renewTime"]) >= parse_rfc3339(first_renewal)
        await alice.release()
        assert stored(ns)["metadata"]["annotations"]["example.com/note"] == "on call: bob"

    try:
        run(scenario())
    finally:
        alice.close()


def test_a_driver_that_lost_its_lease_pulls_no_lever(kube_namespace) -> None:
    """Two real Drivers and engines on one real Lease: once bob has taken the expired Lease over,
    alice's driver decides but moves nothing and says so once; bob's driver acts."""
    from strategies.engine import Engine
    from strategies.journal import MemoryJournal
    from tests.doubles import Clock as DriverClock
    from tests.doubles import MemoryPlatform, MemoryRouter, ScriptedSource
    from tests.serve.support import quick_spec
    from tui.driver import Driver

    ns = kube_namespace
    release = quick_spec(hold="1h")
    clock = Clock()
    alice, bob = leases_for(ns, "alice", "bob", clock=clock, duration=8)

    def driver_for(lease: KubeLease) -> tuple[Driver, MemoryRouter]:
        router = MemoryRouter()
        driver = Driver(release, Engine(release, journal=MemoryJournal()), MemoryPlatform(), router,
                        ScriptedSource(), clock=DriverClock(), lease=lease)
        return driver, router

    async def scenario() -> None:
        await alice.acquire(holder("alice", 11))
        alice_driver, alice_router = driver_for(alice)
        await alice_driver.tick()
        assert alice_router.history == [{"v1": 80, "v2": 20}]  # alice drives

        clock.now += 9  # alice could not renew for longer than the Lease lasts
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

    try:
        run(scenario())
    finally:
        run(closing(alice, bob))


def test_lease_duration_is_checked_in_the_spec() -> None:
    base = {"release": {"service": "checkout", "baseline": "v1", "candidate": "v2"},
            "metrics": {"source": "prometheus", "url": "http://127.0.0.1:9"},
            "strategy": {"kind": "canary", "steps": [50, 100]}}
    for bad in (1, 2.5, "15s"):
        with pytest.raises(SpecError) as refused:
            parse_spec({**base, "platform": {"kind": "kubernetes", "lease_duration": bad}}, "r.toml")
        assert any("lease_duration" in line and "whole seconds from 3 to 3600" in line
                   for line in refused.value.lines()), refused.value.lines()
    spec = parse_spec({**base, "platform": {"kind": "kubernetes", "lease_duration": 30}}, "r.toml")
    assert spec.platform.options["lease_duration"] == 30


# ---------------------------------------------------------------------------- real `watch` processes


def role(ns, *, leases: bool = True) -> list[dict[str, Any]]:
    """examples/kubernetes/manifests/rbac.yaml in the test's namespace (optionally without the
    `leases` rule, as a Role written before releasedeck had a Lease)."""
    text = (MANIFESTS / "rbac.yaml").read_text().replace("namespace: shop", f"namespace: {ns.name}")
    docs = [d for d in yaml.safe_load_all(text) if d]
    rules = next(d for d in docs if d["kind"] == "Role")["rules"]
    assert any("leases" in rule["resources"] and {"get", "create", "update"} <= set(rule["verbs"])
               for rule in rules)  # the example grants what the Lease needs
    if not leases:
        rules[:] = [rule for rule in rules if "leases" not in rule["resources"]]
    return docs


SPEC = """
[release]
service = "checkout"
baseline = "v1"
candidate = "v2"

[platform]
kind = "kubernetes"
kubeconfig = "{kubeconfig}"
namespace = "{namespace}"
selector = "app=checkout"
version_label = "version"
replicas = 4
lever = "replicas"
request_timeout = 10
lease_duration = {duration}

[metrics]
source = "scrape"
interval = "300ms"
window = "3s"
stale_after = "5s"
timeout = "2s"

[strategy]
kind = "canary"
steps = [25, 50, 100]
hold = "{hold}"
scale_down_delay = "1s"

[[gate]]
name = "errors"
metric = "error_rate"
max = 0.05
min_requests = 5
severity = "critical"
"""


def write_spec(ns, tmp_path: Path, kubeconfig: Path, *, hold: str = "60s", duration: int = 10) -> Path:
    path = tmp_path / "release.toml"
    path.write_text(SPEC.format(kubeconfig=kubeconfig, namespace=ns.name, hold=hold, duration=duration))
    return path


def watch(spec: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "watch", str(spec), "--headless", *extra],
        cwd=spec.parent, env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def journal(spec: Path) -> list[dict[str, Any]]:
    path = spec.parent / ".release.releasedeck.journal"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def lease_holder(ns) -> Holder | None:
    """The holder the Lease names, once its state server listens (None before)."""
    if not lease_exists(ns):
        return None
    details = (stored(ns)["metadata"].get("annotations") or {}).get(ANNOTATION, "")
    found = Holder.from_json(details) if details else None
    return found if found is not None and found.attach else None


def expired(ns) -> bool:
    spec = stored(ns)["spec"]
    return parse_rfc3339(spec["renewTime"]) + spec["leaseDurationSeconds"] < time.time()


def test_watch_processes_one_driver_kill_9_and_resume(kube_namespace, tmp_path: Path) -> None:
    """Real `watch` processes as the examples' ServiceAccount: the second exits 4 naming the
    holder and the attach command, having written nothing; after kill -9 of the first, no new
    driver before the Lease expires; the next resumes the same journal run, no action twice."""
    ns = kube_namespace
    ns.create(role(ns))
    docs = manifest("deployments.yaml") + manifest("service.yaml")
    for doc in docs:
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "checkout-v1":
            doc["spec"]["replicas"] = 4
    ns.create(docs)
    kubelet = ns.kubelet(serve=True).start()
    wait_pods(ns, {"v1": 4}, kubelet=kubelet)
    spec = write_spec(ns, tmp_path, ns.kubeconfig_for("releasedeck"))
    traffic = ClusterTraffic(ns.api, ns.name)

    with traffic:
        first = watch(spec, "--timeout", "300")
        try:
            held = wait_for(lambda: lease_holder(ns), "the first driver's Lease names its state server")
            assert held.pid == first.pid
            # the first step's weight is set and confirmed: an action the journal shows as done
            wait_for(lambda: any(r["kind"] == "action_done" for r in journal(spec)),
                     "the first driver's first action done", timeout=180)
            lease_before = stored(ns)
            journal_before = journal(spec)

            second = watch(spec, "--timeout", "30")
            out, err = second.communicate(timeout=120)
            assert second.returncode == exitcodes.LEASE_HELD, err
            [line] = err.strip().splitlines()
            assert f"already driven by {held.user}@{held.host}/{first.pid} since " in line
            assert f"(lease Lease {ns.name}/{NAME}); attach with: releasedeck attach {held.attach}" in line
            assert out == ""  # it started nothing and printed no event
            # it wrote nothing: not the Lease (still the first's, never taken over) ...
            lease_after = stored(ns)
            assert lease_after["spec"]["holderIdentity"] == lease_before["spec"]["holderIdentity"]
            assert lease_after["spec"]["acquireTime"] == lease_before["spec"]["acquireTime"]
            assert lease_after["spec"]["leaseTransitions"] == 0
            # ... nor the journal (the first driver may have appended meanwhile; one run, its own)
            records = journal(spec)
            assert records[: len(journal_before)] == journal_before
            assert {r["run"] for r in records} == {journal_before[0]["run"]}

            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
        dead = stored(ns)["spec"]  # the last renewal the killed driver made
        dead_identity = dead["holderIdentity"]
        dead_until = parse_rfc3339(dead["renewTime"]) + dead["leaseDurationSeconds"]
        before = journal(spec)

        third = watch(spec, "--timeout", "20")
        who = wait_for(lambda: third.poll() is not None or (lease_holder(ns) or held).pid == third.pid,
                       "the third watch refused or driving", timeout=120)
        assert who
        if third.poll() is not None and third.returncode == exitcodes.LEASE_HELD:
            # refused while the killed driver's Lease had not expired, naming the dead holder
            out, err = third.communicate(timeout=30)
            assert f"already driven by {dead_identity} since " in err, err
            assert out == ""
            wait_for(lambda: expired(ns), "the killed driver's Lease expired", timeout=120)
            resumer = watch(spec, "--timeout", "20")
        else:
            resumer = third  # a very slow start: it may only have come after expiry
        try:
            wait_for(lambda: (lease_holder(ns) or held).pid == resumer.pid, "the next driver holds the Lease",
                     timeout=120)
            lease = stored(ns)
            assert parse_rfc3339(lease["spec"]["acquireTime"]) > dead_until  # not before expiry
            assert lease["spec"]["leaseTransitions"] == 1
        finally:
            out, err = resumer.communicate(timeout=180)
    assert resumer.returncode in (exitcodes.PROMOTED, exitcodes.ROLLED_BACK), err  # it drove
    records = journal(spec)
    assert records[: len(before)] == before  # the journal was continued, not rewritten
    assert {r["run"] for r in records} == {before[0]["run"]}  # the same run, resumed
    done = Counter(r["evidence"][0]["action"] for r in records if r["kind"] == "action_done")
    assert done and max(done.values()) == 1, done  # no action taken twice
    decided = [a["id"] for r in records for a in r.get("actions", [])]
    assert len(decided) == len(set(decided))  # and none decided twice
    events = [json.loads(line)["event"] for line in out.splitlines() if line.startswith("{")]
    assert "started" not in events  # resumed, not started again
    assert not stored(ns)["spec"].get("holderIdentity")  # released on the way out
    kubelet.stop()


def test_a_role_without_the_leases_rule_is_one_line_and_touches_nothing(kube_namespace, tmp_path: Path) -> None:
    ns = kube_namespace
    ns.create(role(ns, leases=False))
    ns.create(manifest("deployments.yaml") + manifest("service.yaml"))
    generations = {name: ns.deployment(name)["metadata"]["generation"] for name in ("checkout-v1", "checkout-v2")}
    spec = write_spec(ns, tmp_path, ns.kubeconfig_for("releasedeck"))
    done = subprocess.run([sys.executable, "-m", "tui.cli", "watch", str(spec), "--headless", "--timeout", "30"],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True,
                          capture_output=True, timeout=180, check=False)
    assert done.returncode == exitcodes.UNREACHABLE, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"releasedeck: kubernetes: cannot read leases/{NAME} in namespace {ns.name} on "
                           f"{ns.plane.server}: forbidden by RBAC ("), line
    assert 'cannot get resource "leases" in API group "coordination.k8s.io"' in line
    assert done.stdout == ""
    assert journal(spec) == [] and not (tmp_path / ".release.releasedeck.journal").exists()
    assert not lease_exists(ns)
    # nothing else drives here, so the Deployments must be exactly as created
    assert {name: ns.deployment(name)["metadata"]["generation"] for name in generations} == generations


def test_lease_error_is_a_lease_error_without_a_server(tmp_path: Path) -> None:
    """A kubeconfig that cannot be loaded is one line (LeaseError), before any request."""
    spec = parse_spec({"release": {"service": "checkout", "baseline": "v1", "candidate": "v2"},
                       "platform": {"kind": "kubernetes", "kubeconfig": str(tmp_path / "missing")},
                       "metrics": {"source": "prometheus", "url": "http://127.0.0.1:9"},
                       "strategy": {"kind": "canary", "steps": [50, 100]}}, "r.toml")
    with pytest.raises(LeaseError) as refused:
        KubeLease.for_spec(spec)
    assert "\n" not in str(refused.value) and "cannot load kubeconfig" in str(refused.value)
