"""The cohort parts of `[strategy]`: ring cohorts, sticky users, dark steps and the A/B experiment.

Kept apart from the other strategy keys because they share one rule: they need a router that
routes by who asks (`strategies.cohorts`), and `check` must say so before `watch` finds out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from strategies.cohorts import CohortError, CohortMatch, UserKey
from strategies.experiment import ExperimentSpec
from strategies.spec.model import RouterSpec, StepSpec, StrategySpec
from strategies.spec.reader import Reader, check_template

T = TypeVar("T")


def _parsed(r: Reader, key: str, parse: Callable[[Any, str], T]) -> T | None:
    """The value at `key` parsed by a `from_dict`; its CohortError becomes one spec problem."""
    raw = r.raw(key)
    if raw is None:
        return None
    try:
        return parse(raw, key)
    except CohortError as exc:
        where, _, why = str(exc).partition(": ")
        r.problem(where, why)
        return None


def read_match(r: Reader) -> CohortMatch | None:
    """A ring's `match = { header = "X-User-Group", values = ["staff"] }` (None when absent)."""
    return _parsed(r, "match", CohortMatch.from_dict)


def read_dark_step(sub: Reader, item: dict[str, Any], default_hold: float, served: bool) -> StepSpec:
    """`{ dark = 50, hold = "1m" }`: mirror 50 % of live traffic to the candidate, serve nobody."""
    if "weight" in item:
        sub.raw("weight")
        sub.problem("weight", "a dark step serves no user: give its mirror share as "
                              "dark = PERCENT, and the weight in the next step")
    if served:
        sub.problem("dark", "dark steps come before any step that serves users")
    return StepSpec(mirror=sub.integer("dark", 0, low=1, high=100),
                    hold=sub.duration("hold", default_hold), name=sub.text("name"))


def read_sticky(r: Reader) -> UserKey | None:
    """`sticky = { header = "X-User-Id" }`: weighted shares by user, not by request."""
    return _parsed(r, "sticky", UserKey.from_dict)


def read_experiment(problems: list, r: Reader, kind: str) -> ExperimentSpec | None:
    """`experiment = { success = "checkout_orders_total", trials = "checkout_visits_total" }`."""
    raw = r.raw("experiment")
    if raw is None:
        return None
    if kind != "ab":
        r.problem("experiment", f"only an 'ab' plan runs an experiment, not {kind!r}")
        return None
    if not isinstance(raw, dict):
        r.problem("experiment", 'must be a table like { success = "checkout_orders_total", '
                                'trials = "checkout_visits_total" }')
        return None
    sub = Reader(problems, raw, r.at("experiment"))
    default = ExperimentSpec()
    spec = ExperimentSpec(
        success=sub.text("success", default.success), trials=sub.text("trials", default.trials),
        success_query=sub.text("success_query"), trials_query=sub.text("trials_query"),
        confidence=sub.number("confidence", default.confidence, low=0.5, high=0.9999),
        min_trials=sub.integer("min_trials", default.min_trials, low=1))
    for key in ("success_query", "trials_query"):
        if getattr(spec, key):
            check_template(sub, key, getattr(spec, key))
    sub.finish()
    return spec


ROUTES_BY_WHO: dict[str, tuple[str, ...]] = {
    "local": ("cohort", "sticky", "dark"),  # the built-in router does all three
    "haproxy": ("cohort", "sticky"),  # maps over the runtime API; HAProxy does not mirror
    "nginx": ("dark",),  # releasedeck's own nginx: `mirror`, no cohorts (collectors.nginx)
}
"""What each router kind can do beside weights (collectors/ implements each)."""

NEEDS = {"cohort": "a ring's cohort", "sticky": "sticky users", "dark": "a dark step (mirroring)"}


def check_cohort_router(problems: list, router: RouterSpec, strategy: StrategySpec) -> None:
    """Rings with cohorts, sticky users and dark steps need a router that routes by who asks."""
    wants = [("sticky", "sticky")] if strategy.sticky is not None else []
    for i, step in enumerate(strategy.steps):
        if step.match is not None:
            wants.append((f"rings[{i}].match", "cohort"))
        if step.mirror is not None:
            wants.append((f"steps[{i}].dark", "dark"))
    can = ROUTES_BY_WHO.get(router.kind, ())
    for key, need in wants:
        if need not in can:
            able = " or ".join(f'"{k}"' for k, does in ROUTES_BY_WHO.items() if need in does)
            problems.append((f"strategy.{key}", f"{NEEDS[need]} needs [router] kind = {able}; "
                             f"router {router.kind!r} cannot do it"))
            return
    if router.kind == "haproxy" and any(need != "dark" for _, need in wants):
        _check_haproxy_cohorts(problems, router, strategy)


def _check_haproxy_cohorts(problems: list, router: RouterSpec, strategy: StrategySpec) -> None:
    """HAProxy routes cohorts through map files and a backend per version
    (collectors.haproxy_cohorts); a map key is one word on its runtime API."""
    for option, why in (("maps", "the directory of the cohort map files"),
                        ("version_backends", "a backend per version")):
        if not router.options.get(option):
            problems.append((f"router.{option}", f"cohorts and sticky users on HAProxy need "
                             f"{why} (see README, Docker cohorts)"))
    for i, step in enumerate(strategy.steps):
        spaced = [v for v in (step.match.values if step.match else ()) if len(v.split()) != 1]
        if spaced:
            problems.append((f"strategy.rings[{i}].match.values", f"{spaced[0]!r}: HAProxy "
                             "map keys cannot hold spaces"))
