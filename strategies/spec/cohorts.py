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


def check_cohort_router(problems: list, router: RouterSpec, strategy: StrategySpec) -> None:
    """Rings with cohorts, sticky users and dark steps need the built-in router (for now)."""
    wants = [("sticky", "sticky users")] if strategy.sticky is not None else []
    for i, step in enumerate(strategy.steps):
        if step.match is not None:
            wants.append((f"rings[{i}].match", "a ring's cohort"))
        if step.mirror is not None:
            wants.append((f"steps[{i}].dark", "a dark step (mirroring)"))
    if wants and router.kind != "local":
        key, what = wants[0]
        problems.append((f"strategy.{key}", f"{what} needs the built-in router "
                         f"([router] kind = \"local\"); router {router.kind!r} routes by "
                         "weight only (HAProxy and Kubernetes cohorts are not built yet)"))
