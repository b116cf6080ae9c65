"""The httproute lever's read-back, pure: `rule_differences` between stored rules and the rules
a route wants (`with_route` of the stored ones), for any mix of rings, mirror and other rules."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from collectors.kubernetes.levers.httproute import rule_differences, with_route
from strategies.cohorts import CohortMatch, CohortRule, Mirror, Route

BACKENDS = {"v1": "checkout-v1", "v2": "checkout-v2"}
RINGS = (CohortRule("staff", CohortMatch(header="X-User-Group", values=("staff",)), "v2"),
         CohortRule("beta", CohortMatch(cookie="beta", values=("1", "yes")), "v2"))
WEIGHTED = {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
            "backendRefs": [{"name": "checkout-v1", "port": 80, "weight": 90},
                            {"name": "checkout-v2", "port": 80, "weight": 10}]}
THEIRS = {"name": "their-admin", "matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
          "backendRefs": [{"name": "admin", "port": 80}]}

routes = st.builds(lambda n, m: Route(cohorts=RINGS[:n], mirror=Mirror("v2", m) if m else None),
                   st.integers(0, 2), st.sampled_from([0, 10, 12.5, 100]))


def _apply(route: Route, others: bool) -> list[dict]:
    rules = with_route([WEIGHTED, *([THEIRS] if others else [])], BACKENDS, "v2", route)
    assert rules is not None
    return rules


@given(routes, routes, st.booleans())
def test_a_route_reads_back_in_place_exactly_when_it_is_the_one_written(
        written: Route, wanted: Route, others: bool) -> None:
    stored = _apply(written, others)
    lines = rule_differences(stored, with_route(stored, BACKENDS, "v2", wanted) or [], "R")
    same = _apply(wanted, others) == stored
    assert (lines == ()) == same, (written, wanted, lines)
    assert all(line.startswith("R: rule ") for line in lines)


@given(routes)
def test_other_writers_rules_and_the_order_of_ours_are_not_judged(route: Route) -> None:
    stored = _apply(route, True)
    reordered = [r for r in stored if r.get("name") == "their-admin"] + \
        [r for r in stored if r.get("name") != "their-admin"][::-1]
    wanted = with_route(reordered, BACKENDS, "v2", route)
    assert wanted is not None and rule_differences(reordered, wanted, "R") == ()
