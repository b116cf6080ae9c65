"""Cohort rules and sticky buckets: the pure rules every router applies alike."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.cohorts import (
    BUCKETS,
    CohortError,
    CohortMatch,
    CohortRule,
    Mirror,
    MirrorPicker,
    Route,
    UserKey,
    bucket,
    first_match,
    sticky_version,
)

users = st.text(min_size=1, max_size=20)
shares = st.integers(min_value=0, max_value=100)


@given(users, shares, shares)
def test_a_user_on_the_candidate_stays_there_while_its_share_grows(user: str, a: int, b: int) -> None:
    low, high = sorted((a, b))
    slot = bucket(user, "salt")
    assert 0 <= slot < BUCKETS
    before = sticky_version(slot, {"v1": 100 - low, "v2": low})
    after = sticky_version(slot, {"v1": 100 - high, "v2": high})
    if before == "v2":
        assert after == "v2"
    if after == "v1":
        assert before == "v1"


@settings(max_examples=8, deadline=None)
@given(shares)
def test_buckets_are_shared_out_exactly_by_weight(share: int) -> None:
    owners = [sticky_version(slot, {"v2": share, "v1": 100 - share}) for slot in range(BUCKETS)]
    assert owners.count("v2") == share * BUCKETS // 100
    assert sticky_version(0, {"v1": 0, "v2": 0}) is None


def test_same_key_same_bucket_and_salt_reshuffles() -> None:
    assert bucket("u0001", "r1") == bucket("u0001", "r1")
    moved = sum(bucket(f"u{i}", "r1") != bucket(f"u{i}", "r2") for i in range(200))
    assert moved > 190  # another release's salt gives other early users


def test_rules_match_headers_or_cookies_first_rule_wins() -> None:
    staff = CohortRule("staff", CohortMatch(header="X-User-Group", values=("staff",)), "v2")
    beta = CohortRule("beta", CohortMatch(cookie="beta", values=("yes", "1")), "v3")
    rules = (staff, beta)
    assert first_match(rules, {"X-User-Group": "staff"}, {"beta": "1"}) is staff
    assert first_match(rules, {"X-User-Group": "users"}, {"beta": "1"}) is beta
    assert first_match(rules, {}, {}) is None
    assert UserKey(cookie="uid").of({}, {"uid": " u7 "}) == "u7"
    assert UserKey(header="X-User-Id").of({}, {}) is None


def test_route_round_trips_and_refuses_bad_input_in_one_line() -> None:
    route = Route(cohorts=(CohortRule("staff", CohortMatch(header="X-User-Group", values=("staff",)),
                                      "v2"),),
                  sticky=UserKey(header="X-User-Id"), salt="checkout/v2", mirror=Mirror("v2", 25.0))
    assert Route.from_dict(route.to_dict()) == route
    for bad, why in [({"cohorts": [{"name": "x", "version": "v2", "match": {"values": ["a"]}}]},
                      "exactly one of header or cookie"),
                     ({"cohorts": [{"name": "x", "version": "v2",
                                    "match": {"header": "H", "values": []}}]}, "non-empty list"),
                     ({"mirror": {"version": "v2", "percent": 120}}, r"0\.\.100"),
                     ({"sticky": {"header": "a", "cookie": "b"}}, "exactly one"),
                     ({"weights": {}}, "unknown key")]:
        with pytest.raises(CohortError, match=why) as caught:
            Route.from_dict(bad)
        assert "\n" not in str(caught.value)


def test_mirror_picker_is_exact_over_each_hundred() -> None:
    picker = MirrorPicker(30)
    assert sum(picker.pick() for _ in range(1000)) == 300
    picker.set(0)
    assert not any(picker.pick() for _ in range(100))
