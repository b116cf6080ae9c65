"""The pure side of HAProxy cohorts: sticky slots, map contents and what `check` accepts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors.haproxy_cohorts import maps_for, update_commands
from strategies.cohorts import (
    BUCKETS,
    SLOTS,
    CohortMatch,
    CohortRule,
    Route,
    UserKey,
    slot_offset,
    sticky_slots,
    sticky_version,
)
from strategies.spec import SpecError, parse_spec


@given(st.integers(0, 100), st.integers(0, 100), st.integers(0, SLOTS - 1))
def test_a_growing_share_only_moves_slots_to_the_candidate(low: int, high: int, offset: int) -> None:
    low, high = sorted((low, high))
    before = sticky_slots({"v1": 100 - low, "v2": low}, offset)
    after = sticky_slots({"v1": 100 - high, "v2": high}, offset)
    moved_back = [s for s, v in before.items() if v == "v2" and after[s] != "v2"]
    assert moved_back == []
    assert sum(v == "v2" for v in after.values()) == high  # exact at percent resolution


@given(st.integers(0, 100), st.integers(0, SLOTS - 1))
def test_slots_agree_with_the_built_in_routers_buckets(share: int, raw: int) -> None:
    weights = {"v1": 100 - share, "v2": share}
    offset = slot_offset("checkout/v2")
    slot = (raw + offset) % SLOTS
    width = BUCKETS // SLOTS
    # every bucket a slot stands for belongs to the version the slot is routed to
    assert {sticky_version(b, weights) for b in range(slot * width, (slot + 1) * width)} == \
        {sticky_slots(weights, offset)[raw]}


def test_map_contents_first_rule_wins_and_closed_rings_empty() -> None:
    maps = maps_for("/m", "checkout", [("header", "X-User-Group"), ("cookie", "beta"),
                                       ("header", "X-User-Group")], UserKey(header="X-User-Id"))
    assert len(maps.sources) == 2
    backends = {"v1": "b1", "v2": "b2"}
    staff = CohortRule("staff", CohortMatch(header="X-User-Group", values=("staff", "ops")), "v2")
    route = Route(cohorts=(staff,), sticky=UserKey(header="X-User-Id"), salt="s")
    got = maps.contents(route, {"v1": 100, "v2": 0}, backends)
    assert got["/m/checkout.header.x-user-group.map"] == {"staff": "b2", "ops": "b2"}
    assert got["/m/checkout.cookie.beta.map"] == {}
    assert set(got[maps.sticky_path].values()) == {"b1"}
    assert maps.sticky_path not in maps.contents(route, None, backends)  # no weights: left alone


def test_update_commands_are_chunked_and_end_with_the_commit() -> None:
    path = "/srv/releasedeck/examples/docker/run/maps/checkout.sticky.map"
    lines = update_commands(path, "3", {str(i): "checkout_v2" for i in range(SLOTS)})
    assert len(lines) > 2 and all(len(line) < 4100 for line in lines)
    assert lines[-1] == f"commit map @3 {path}"
    assert sum(line.count(f"add map @3 {path} ") for line in lines) == SLOTS


def _spec(router: dict, strategy: dict) -> None:
    parse_spec({"release": {"service": "checkout", "baseline": "v1", "candidate": "v2"},
                "platform": {"kind": "docker", "selector": "app=checkout"},
                "router": router, "strategy": strategy}, "t.toml")


HAPROXY = {"kind": "haproxy", "socket": "run/admin.sock", "servers": {"v1": ["v1a"], "v2": ["v2a"]},
           "maps": "run/maps", "version_backends": {"v1": "checkout_v1", "v2": "checkout_v2"}}
RING = {"kind": "ring", "sticky": {"header": "X-User-Id"}, "rings": [
    {"name": "staff", "match": {"header": "X-User-Group", "values": ["staff"]}},
    {"name": "everyone", "weight": 100}]}


def test_check_accepts_rings_and_ab_on_haproxy_with_maps() -> None:
    _spec(HAPROXY, RING)
    _spec(HAPROXY, {"kind": "ab", "split": 50, "sticky": {"cookie": "uid"}})


def test_check_refuses_in_one_line_what_haproxy_cannot_do() -> None:
    with pytest.raises(SpecError) as caught:
        _spec({k: v for k, v in HAPROXY.items() if k != "maps"}, RING)
    assert caught.value.lines() == ["t.toml: router.maps: cohorts and sticky users on HAProxy need "
                                    "the directory of the cohort map files (see README, Docker cohorts)"]
    spaced = {**RING, "rings": [{"name": "s", "match": {"header": "G", "values": ["a b"]}}]}
    with pytest.raises(SpecError) as caught:
        _spec(HAPROXY, spaced)
    assert caught.value.lines() == ["t.toml: strategy.rings[0].match.values: 'a b': HAProxy map "
                                    "keys cannot hold spaces"]
    with pytest.raises(SpecError) as caught:
        _spec(HAPROXY, {"kind": "canary", "steps": [{"dark": 20}, 100]})
    assert caught.value.lines() == ['t.toml: strategy.steps[0].dark: a dark step (mirroring) needs '
                                    "[router] kind = \"local\" or \"nginx\"; router 'haproxy' cannot do it"]


def test_the_docker_examples_haproxy_cfg_has_the_lines_check_prints() -> None:
    from pathlib import Path

    from collectors.haproxy import HAProxyRouter
    from strategies.spec import load_spec

    here = Path(__file__).resolve().parents[2] / "examples" / "docker"
    cfg = (here / "haproxy-cohorts.cfg").read_text().replace("@RUN@", str(here / "run"))
    for name in ("ring.toml", "ab.toml"):
        maps = HAProxyRouter.from_spec(load_spec(here / name)).cohorts
        assert maps is not None
        for line in maps.frontend_lines():
            assert f"    {line}\n" in cfg, (name, line)
