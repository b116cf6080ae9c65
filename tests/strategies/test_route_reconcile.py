"""Cohort routes held each tick (strategies.reconcile): the route the journal wants, how map
tables are compared, and the engine's one `reconcile` record per drift episode. Pure."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import jsonschema
from hypothesis import given
from hypothesis import strategies as st

from strategies.cohorts import Mirror, Route, UserKey
from strategies.engine import Engine
from strategies.journal import MemoryJournal
from strategies.model import LeverTarget, RouteReading, Snapshot
from strategies.plans import build_plan
from strategies.reconcile import (
    COHORT_LEVER,
    DETAIL_LINES,
    MIRROR_LEVER,
    WEIGHT_LEVER,
    DriftTracker,
    compare_routes,
    detail_of,
    route_target,
    table_differences,
)
from tests.strategies.brain_kit import STRATEGIES, T0, World, make_spec, tick
from tests.strategies.test_cohort_plans import DARK, RINGS

keys = st.text("abc", min_size=1, max_size=2)
tables = st.dictionaries(st.sampled_from(["staff.map", "beta.map", "sticky.map"]),
                         st.dictionaries(keys, st.sampled_from(["b1", "b2"]), max_size=4),
                         max_size=3)


@given(tables, tables)
def test_tables_differ_exactly_where_an_entry_or_a_table_is_not_the_wanted_one(
        desired: dict[str, dict[str, str]], observed: dict[str, dict[str, str]]) -> None:
    lines = table_differences(desired, observed)
    off = sorted(n for n in desired if observed.get(n) != desired[n])
    assert [line.split(":")[0] for line in lines] == off
    for line in lines:
        name = line.split(":")[0]
        if name not in observed:
            assert line == f"{name}: missing"


@given(st.lists(st.sampled_from(["staff.map", "beta.map"]), unique=True))
def test_a_table_wanted_empty_must_be_present_not_missing(names: list[str]) -> None:
    desired: dict[str, dict[str, str]] = {n: {} for n in names}
    assert table_differences(desired, dict(desired)) == ()
    assert table_differences(desired, {n: None for n in names}) == tuple(
        f"{n}: missing" for n in sorted(names))
    assert table_differences(desired, {}) == tuple(f"{n}: missing" for n in sorted(names))


def test_counts_name_what_is_off() -> None:
    lines = table_differences({"m": {"a": "b1", "b": "b1", "c": "b2"}}, {"m": {"a": "b2", "d": "b1"}})
    assert lines == ("m: 2 missing, 1 wrong, 1 extra of 3 entries",)


@given(st.lists(st.text("xyz", min_size=1, max_size=3), max_size=8))
def test_a_detail_names_the_first_differences_and_counts_the_rest(lines: list[str]) -> None:
    detail = detail_of(lines)
    hidden = len(lines) - DETAIL_LINES
    assert detail.startswith("; ".join(lines[:DETAIL_LINES]))
    assert detail.endswith(f"; {hidden} more") == (hidden > 0)


def _target(kind: str, value: int, at: float = T0) -> LeverTarget:
    return LeverTarget(kind, "", value, at)


@given(st.integers(0, 2), st.one_of(st.none(), st.integers(0, 100)),
       st.sets(st.sampled_from([COHORT_LEVER, MIRROR_LEVER, WEIGHT_LEVER])),
       st.one_of(st.none(), st.integers(0, 100)))
def test_the_route_to_check_comes_from_confirmed_targets_only(
        cohorts: int, weight: int | None, pending: set[str], live: int | None) -> None:
    plan = build_plan(make_spec(RINGS))
    targets = {COHORT_LEVER: _target("set_cohorts", cohorts)}
    if weight is not None:
        targets[WEIGHT_LEVER] = _target("set_weight", weight)
    split = {"v1": 100.0 - live, "v2": float(live)} if live is not None else None
    got = route_target(plan, targets, pending, "v1", "v2", split)
    if {COHORT_LEVER, MIRROR_LEVER} & pending:
        assert got is None  # the route is on its way: nothing to judge
        return
    assert got is not None and got.route == plan.route_for(cohorts, 0, "v2")
    if WEIGHT_LEVER in pending:
        assert got.weights is None  # moving weights: the sticky slots are not compared
    elif weight is not None:
        assert got.weights == {"v1": 100 - weight, "v2": weight}  # the journal's, not the live split
    else:
        assert got.weights == ({"v1": 100 - live, "v2": live} if live is not None else None)


def test_no_route_to_check_without_cohort_routing_or_a_confirmed_route() -> None:
    canary = build_plan(make_spec(STRATEGIES["canary"]))
    rings = build_plan(make_spec(RINGS))
    cohorts = {COHORT_LEVER: _target("set_cohorts", 1)}
    assert route_target(canary, cohorts, (), "v1", "v2") is None
    assert route_target(rings, {}, (), "v1", "v2") is None
    dark = build_plan(make_spec(DARK))
    got = route_target(dark, {COHORT_LEVER: _target("set_cohorts", 0),
                              MIRROR_LEVER: _target("set_mirror", 50)}, (), "v1", "v2")
    assert got is not None and got.route.mirror is not None and got.route.mirror.percent == 50.0


@given(st.lists(st.booleans(), min_size=1, max_size=40), st.sampled_from([0.25, 0.5, 1.0, 3.0]))
def test_an_off_route_is_corrected_on_a_backoff_and_never_while_in_place(
        offs: list[bool], spacing: float) -> None:
    tracker = DriftTracker("v2")
    target = _target("set_cohorts", 1)
    last: float | None = None
    for i, off in enumerate(offs):
        now = T0 + 1 + i * spacing
        reading = RouteReading(1, 0, ("staff.map: missing",) if off else ())
        drift, corrections = tracker.observe({COHORT_LEVER: target}, {COHORT_LEVER: reading},
                                             (), now, now)
        if not off:
            assert corrections == []
            continue
        assert drift and drift[0].detail == "staff.map: missing"
        assert "cohort routes differ from the journal's: staff.map: missing" in drift[0].describe()
        if corrections:
            assert corrections == [("set_cohorts", 1, "")]
            assert last is None or now - last >= 1.0  # backoff: 1 s, 2 s, 4 s ...
            last = now


def test_the_engine_journals_one_reconcile_per_episode_with_the_drift_found() -> None:
    journal = MemoryJournal()
    spec = make_spec(RINGS)
    engine, world = Engine(spec, journal=journal), World.for_spec(spec)
    tick(engine, world, T0)
    assert engine.state.targets[COHORT_LEVER].value == 1

    def snap(now: float, reading: RouteReading | None) -> Snapshot:
        healthy = world.healthy(now)
        assert healthy.platform is not None
        return replace(healthy, platform=replace(healthy.platform, route=reading))

    off = RouteReading(1, 0, ("checkout.header.x-user-group.map: 1 missing of 1 entries",))
    assert [d.kind for d in tick(engine, world, T0 + 1, snap(T0 + 1, replace(off, cohorts=2)))
            if d.kind == "reconcile"] == []  # a reading of another route is not judged
    decisions = tick(engine, world, T0 + 2, snap(T0 + 2, off))
    fixes = [d for d in decisions if d.kind == "reconcile"]
    assert len(fixes) == 1 and [(a.kind, a.value) for a in fixes[0].actions] == [("set_cohorts", 1)]
    assert fixes[0].evidence[0]["detail"] == off.differences[0]
    assert fixes[0].evidence[0]["lever"] == COHORT_LEVER
    assert engine.state.step == 0  # a correction, not a decision that moves the rollout
    for i in range(3, 6):  # back in place: nothing more
        assert not [d for d in tick(engine, world, T0 + i, snap(T0 + i, replace(off, differences=())))
                    if d.kind == "reconcile"]
    records = [r for r in journal.records if r["kind"] == "reconcile"]
    assert len(records) == 1 and records[0]["evidence"][0]["detail"] == off.differences[0]


def test_a_cohort_reconcile_line_validates_against_the_event_schema() -> None:
    schema = json.loads((Path(__file__).resolve().parents[2] / "tui" / "schemas" /
                         "events.schema.json").read_text())
    spec = make_spec(RINGS)
    engine, world = Engine(spec), World.for_spec(spec)
    tick(engine, world, T0)
    healthy = world.healthy(T0 + 1)
    assert healthy.platform is not None
    off = RouteReading(1, 0, ("checkout.sticky.map: missing",))
    snapshot = replace(healthy, platform=replace(healthy.platform, route=off))
    fix = next(d for d in engine.tick(snapshot, T0 + 1) if d.kind == "reconcile")
    line = json.loads(engine.event_for(fix).to_json())
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(line))
    assert not errors, errors[0].message
    assert line["evidence"][0]["detail"] == "checkout.sticky.map: missing"


RULES = build_plan(make_spec(RINGS)).cohorts
whole_routes = st.builds(
    lambda n, sticky, salt, mirror: Route(cohorts=RULES[:n], sticky=UserKey(header="X-User-Id") if sticky else None,
                                          salt=salt, mirror=Mirror("v2", mirror) if mirror else None),
    st.integers(0, len(RULES)), st.booleans(), st.sampled_from(["", "checkout/v2"]),
    st.sampled_from([0, 12.5, 50.0]))


@given(whole_routes, whole_routes)
def test_a_whole_route_read_back_differs_only_where_it_matters(have: Route, want: Route) -> None:
    lines = compare_routes(have, want, "router")
    salt_only = have.sticky is None and want.sticky is None  # no sticky key: the salt is unused
    same = have == want or (salt_only and replace(have, salt=want.salt) == want)
    assert (lines == ()) == same, (have, want, lines)
    assert len(lines) <= 3 and all(line.startswith("router: ") for line in lines)
