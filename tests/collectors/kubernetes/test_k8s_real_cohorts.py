"""Ring cohorts and dark-launch mirrors written by the httproute lever, validated by the real
Gateway API CRD schema (v1.6.3 standard channel) on a real kube-apiserver.

What is asserted is what the API server stored (after its defaulting and CEL validation), and
only what our lever wrote: another writer's changes must survive every write of ours.
"""

from __future__ import annotations

import pytest

from collectors.kubernetes import KubernetesPlatform
from collectors.kubernetes.api import HTTPROUTE
from strategies.cohorts import CohortMatch, CohortRule, Mirror, Route, UserKey
from strategies.engine import Engine
from strategies.journal import MemoryJournal
from strategies.ports import PlatformError
from tests.collectors.kubernetes.real_cluster import closing, manifest, run, spec_for
from tests.support.ticking import tick_until
from tui.driver import Driver
from tui.wiring import build_source

BACKENDS = {"v1": "checkout-v1", "v2": "checkout-v2"}
STAFF = CohortRule("staff", CohortMatch(header="X-User-Group", values=("staff", "qa")), "v2")
BETA = CohortRule("beta", CohortMatch(cookie="beta", values=("1",)), "v2")
GROUP_HEADER = "X-User-Group"
ORIGINAL_MATCHES = [{"path": {"type": "PathPrefix", "value": "/"}}]


def _platform(ns) -> KubernetesPlatform:
    ns.create(manifest("deployments.yaml") + manifest("httproute.yaml"))
    return KubernetesPlatform(spec_for(ns, "httproute", httproute="checkout", backends=BACKENDS,
                                       deployments={"v1": "checkout-v1", "v2": "checkout-v2"}))


def _route(ns) -> dict:
    return ns.read(f"{HTTPROUTE.group}/{HTTPROUTE.version}", "HTTPRoute", "checkout")


def _refs(rule: dict) -> list[tuple[str, int]]:
    return [(r["name"], r.get("weight", 1)) for r in rule["backendRefs"]]


def test_ring_cohorts_and_mirror_are_accepted_by_the_real_crd(kube_namespace) -> None:
    ns = kube_namespace
    platform = _platform(ns)

    async def scenario():
        await platform.set_weights({"v1": 80, "v2": 20})
        await platform.set_route(Route(cohorts=(STAFF, BETA), mirror=Mirror("v2", 25)))
        return await platform.snapshot(["v1", "v2"], 1.0)

    snap = run(closing(platform, scenario()))
    assert snap.error is None, snap.error
    assert dict(snap.weights) == {"v1": 80.0, "v2": 20.0}  # a cohort rule is not the weighted split
    rules = _route(ns)["spec"]["rules"]
    assert [r.get("name") for r in rules] == ["releasedeck-cohort-0", "releasedeck-cohort-1", None]
    staff, beta, weighted = rules
    assert [m["headers"] for m in staff["matches"]] == [
        [{"type": "Exact", "name": "X-User-Group", "value": "staff"}],
        [{"type": "Exact", "name": "X-User-Group", "value": "qa"}]]
    assert all(m["path"] == ORIGINAL_MATCHES[0]["path"] for m in staff["matches"])
    assert beta["matches"][0]["headers"] == [
        {"type": "RegularExpression", "name": "Cookie", "value": r"(^|;\s*)beta=1(;|$)"}]
    assert _refs(staff) == _refs(beta) == [("checkout-v2", 1)]
    assert _refs(weighted) == [("checkout-v1", 80), ("checkout-v2", 20)]
    (mirror,) = weighted["filters"]
    assert mirror["type"] == "RequestMirror"
    assert mirror["requestMirror"]["percent"] == 25
    assert mirror["requestMirror"]["backendRef"]["name"] == "checkout-v2"


def test_leaving_dark_and_closing_rings_restore_the_route(kube_namespace) -> None:
    ns = kube_namespace
    platform = _platform(ns)
    before = _route(ns)["spec"]["rules"]

    async def scenario():
        await platform.set_route(Route(mirror=Mirror("v2", 12.5)))  # a share finer than a percent
        fraction = _route(ns)["spec"]["rules"][0]["filters"][0]["requestMirror"]
        await platform.set_route(Route(cohorts=(STAFF,)))  # dark left, a ring opened
        opened = _route(ns)["spec"]["rules"]
        await platform.set_route(Route())  # rollback: every ring closed
        return fraction, opened

    fraction, opened = run(closing(platform, scenario()))
    assert fraction["fraction"] == {"numerator": 1250, "denominator": 10000}
    assert "percent" not in fraction
    assert [r.get("name") for r in opened] == ["releasedeck-cohort-0", None]
    assert "filters" not in opened[1]  # leaving dark removed the mirror
    assert _route(ns)["spec"]["rules"] == before


def test_cohort_write_conflict_is_retried_and_the_other_writer_survives(kube_namespace) -> None:
    """Another writer changes the route between our read and our patch: the real server
    answers 409 on the stale resourceVersion; the lever re-reads, and their change stays."""
    ns = kube_namespace
    platform = _platform(ns)
    answers: list[str] = []

    async def scenario() -> None:
        lever = await platform.lever()
        read, patch = lever.kube.get_custom, lever.kube.patch_custom
        interfered: list[int] = []

        async def read_then_interfere(crd, name):
            obj = await read(crd, name)
            if not interfered:
                ns.custom.patch_namespaced_custom_object(
                    HTTPROUTE.group, HTTPROUTE.version, ns.name, HTTPROUTE.plural, "checkout",
                    {"spec": {"hostnames": ["checkout.example.com", "other.example.com"]}})
                interfered.append(1)
            return obj

        async def patch_and_note(*args, **kwargs):
            try:
                result = await patch(*args, **kwargs)
            except PlatformError as exc:
                answers.append(str(getattr(exc, "code", "")))
                raise
            answers.append("ok")
            return result

        lever.kube.get_custom = read_then_interfere
        lever.kube.patch_custom = patch_and_note
        await platform.set_route(Route(cohorts=(STAFF,), mirror=Mirror("v2", 10)))

    run(closing(platform, scenario()))
    assert answers == ["409", "ok"]
    route = _route(ns)
    assert route["spec"]["hostnames"] == ["checkout.example.com", "other.example.com"]
    assert [r.get("name") for r in route["spec"]["rules"]] == ["releasedeck-cohort-0", None]
    assert route["spec"]["rules"][1]["filters"][0]["requestMirror"]["percent"] == 10


def test_sticky_users_are_refused_in_one_line(kube_namespace) -> None:
    ns = kube_namespace
    platform = _platform(ns)
    with pytest.raises(PlatformError, match="cannot split by a sticky user key"):
        run(closing(platform, platform.set_route(Route(sticky=UserKey(header="X-User-Id")))))


RING = {"kind": "ring", "hold": "10m", "rings": [
    {"name": "staff", "match": {"header": GROUP_HEADER, "values": ["staff", "qa"]}},
    {"name": "everyone", "weight": 100}]}


def _reconciles(journal: MemoryJournal) -> list[dict]:
    return [r for r in journal.records if r.get("kind") == "reconcile"
            and any(e.get("lever") == "set_cohorts:" for e in r.get("evidence") or ())]


def test_a_hand_edited_route_gets_its_cohort_rule_back_and_the_other_writers_rule_stays(
        kube_namespace) -> None:
    """Ring 1 open through the Driver; another field manager replaces the rules (our cohort rule
    dropped, a rule of their own added); bounded ticks put our rule back from the journal, keep
    theirs, and journal exactly one `reconcile` record for the cohort lever."""
    ns = kube_namespace
    ns.create(manifest("deployments.yaml") + manifest("httproute.yaml"))
    spec = spec_for(ns, "httproute", httproute="checkout", backends=BACKENDS,
                    deployments={"v1": "checkout-v1", "v2": "checkout-v2"}, strategy=RING)
    platform = KubernetesPlatform(spec)
    journal = MemoryJournal()
    clock = [1000.0]
    driver = Driver(spec, Engine(spec, journal=journal), platform, None, build_source(spec),
                    clock=lambda: clock[0])
    theirs = {"name": "their-admin", "matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
              "backendRefs": [{"name": "admin", "port": 80}]}  # not ours: no cohort rule for it
    seen: dict[str, dict] = {}

    def names() -> list[str | None]:
        return [r.get("name") for r in _route(ns)["spec"]["rules"]]

    async def scenario() -> None:
        await tick_until(driver, clock, seen=names, done=lambda: "releasedeck-cohort-0" in names()
                          and "set_cohorts:" in driver.engine.state.targets)
        for _ in range(2):  # in place: read back, nothing to correct
            clock[0] += 1.0
            await driver.tick()
        assert _reconciles(journal) == []
        seen["ours"] = next(r for r in _route(ns)["spec"]["rules"]
                            if r.get("name") == "releasedeck-cohort-0")
        edited = [theirs, *(r for r in _route(ns)["spec"]["rules"] if r.get("name") is None)]
        ns.custom.patch_namespaced_custom_object(
            HTTPROUTE.group, HTTPROUTE.version, ns.name, HTTPROUTE.plural, "checkout",
            {"spec": {"rules": edited}}, field_manager="other-writer")
        assert "releasedeck-cohort-0" not in names()
        await tick_until(driver, clock, seen=names, done=lambda: "releasedeck-cohort-0" in names())
        for _ in range(3):  # settled: nothing more to correct
            clock[0] += 1.0
            await driver.tick()
        await driver.source.close()

    run(closing(platform, scenario()))
    rules = _route(ns)["spec"]["rules"]
    assert [r.get("name") for r in rules].count("releasedeck-cohort-0") == 1
    assert next(r for r in rules if r.get("name") == "releasedeck-cohort-0") == seen["ours"]
    assert next(r for r in rules if r.get("name") == "their-admin")["matches"] == theirs["matches"]
    found = _reconciles(journal)
    assert len(found) == 1, found
    assert found[0]["evidence"][0]["detail"] == "HTTPRoute checkout: rule releasedeck-cohort-0 missing"
    assert driver.engine.state.step == 0  # a correction, never a new decision


def test_the_read_back_sees_the_stored_route_as_written_and_names_a_lost_mirror(kube_namespace) -> None:
    """What the API server stored (defaults filled in) reads back as in place; a mirror filter
    another writer removed is named, and writing the route again puts it back."""
    ns = kube_namespace
    platform = _platform(ns)
    route = Route(cohorts=(STAFF, BETA), mirror=Mirror("v2", 12.5))

    async def scenario() -> tuple[tuple[str, ...], ...]:
        await platform.set_route(route)
        written = await platform.route_differences(route, None)
        rules = _route(ns)["spec"]["rules"]
        for rule in rules:
            rule.pop("filters", None)
        ns.custom.patch_namespaced_custom_object(
            HTTPROUTE.group, HTTPROUTE.version, ns.name, HTTPROUTE.plural, "checkout",
            {"spec": {"rules": rules}}, field_manager="other-writer")
        lost = await platform.route_differences(route, None)
        closed = await platform.route_differences(Route(), None)
        await platform.set_route(route)
        return written, lost, closed, await platform.route_differences(route, None)

    written, lost, closed, again = run(closing(platform, scenario()))
    assert written == () and again == ()
    assert lost == ("HTTPRoute checkout: rule 1's mirror filter missing",)
    assert closed == ("HTTPRoute checkout: rule releasedeck-cohort-0 not wanted",
                      "HTTPRoute checkout: rule releasedeck-cohort-1 not wanted")
