"""Plans: each strategy kind unrolled into one list of steps the engine walks through.

A step states a target (candidate weight, replicas per version), how long to hold it, whether
the gates must pass to leave it, and whether it waits for the operator. The engine knows nothing
about canary versus blue-green: it only walks steps.

Rings and dark launches add *who* to *how much*: a step may open the next ring's cohort rule
(`cohorts`: how many of the plan's rules are in force) or mirror a share of live traffic to the
candidate (`mirror`). Both are targets, like the weight, and `route_for` turns them into the
router's `Route` (see `strategies.cohorts`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from strategies.cohorts import CohortRule, Mirror, Route, UserKey
from strategies.model import EMPTY, frozen_map, no_entries
from strategies.spec import ReleaseSpec, StepSpec


@dataclass(frozen=True)
class PlanStep:
    label: str
    weight: int | None  # candidate traffic percent to set on entry; None keeps the current one
    hold: float = 0.0  # seconds to stay before the step may be left
    pause: bool = False  # wait for the operator (promote or resume)
    analysis: bool = True  # gates must pass to leave the step
    replicas: Mapping[str, int] = field(default_factory=no_entries)  # scale targets on entry, applied in this order
    cohorts: int | None = None  # cohort rules of the plan in force on entry (rings open); None keeps
    mirror: int | None = None  # percent of live traffic mirrored to the candidate; None keeps
    experiment: bool = False  # an A/B step: left when the experiment names a winner (hold = its limit)


@dataclass(frozen=True)
class Plan:
    kind: str
    steps: tuple[PlanStep, ...]
    full: Mapping[str, int]  # replicas per version once promoted (old side scaled to 0 after)
    rollback: Mapping[str, int]  # replicas per version after a rollback
    scale_down_delay: float
    cohorts: tuple[CohortRule, ...] = ()  # every ring's cohort rule, in ring order
    sticky: UserKey | None = None  # the user key that makes weighted shares sticky
    salt: str = ""

    @property
    def routes_cohorts(self) -> bool:
        """The plan needs a cohort router (rules, sticky users or a mirror), not weights only."""
        return bool(self.cohorts) or self.sticky is not None or self.mirrors

    @property
    def mirrors(self) -> bool:
        """Some step mirrors traffic to the candidate (a dark launch)."""
        return any(s.mirror for s in self.steps)

    def cohorts_at(self, index: int) -> int:
        """Cohort rules in force at step `index` (the last explicit count so far)."""
        return _last(self.steps[: index + 1], "cohorts")

    def mirror_at(self, index: int) -> int:
        """Mirror percent in force at step `index`."""
        return _last(self.steps[: index + 1], "mirror")

    def route_for(self, cohorts: int, mirror: int, candidate: str) -> Route:
        """The router's cohort table for `cohorts` rules open and `mirror` percent mirrored."""
        return Route(cohorts=self.cohorts[:cohorts], sticky=self.sticky, salt=self.salt,
                     mirror=Mirror(candidate, float(mirror)) if mirror > 0 else None)

    def labels(self) -> tuple[str, ...]:
        return tuple(s.label for s in self.steps)

    def weight_at(self, index: int) -> int:
        """Candidate weight in force at step `index` (the last explicit weight so far)."""
        weight = 0
        for step in self.steps[: index + 1]:
            if step.weight is not None:
                weight = step.weight
        return weight


def _last(steps: tuple[PlanStep, ...], attr: str) -> int:
    value = 0
    for step in steps:
        got = getattr(step, attr)
        if got is not None:
            value = got
    return value


def build_plan(spec: ReleaseSpec) -> Plan:
    strategy = spec.strategy
    base, cand = spec.release.baseline, spec.release.candidate
    n = max(1, spec.platform.replicas)
    builders = {
        "canary": _weighted, "ring": _weighted, "ab": _ab, "flag": _flag,
        "blue-green": _blue_green, "rolling": _rolling,
    }
    steps = builders[strategy.kind](spec, base, cand, n)
    if strategy.workload:  # a flag lever: one workload holds both variants, nothing is scaled
        return Plan(kind=strategy.kind, steps=steps, full=EMPTY, rollback=EMPTY,
                    scale_down_delay=strategy.scale_down_delay)
    rules = tuple(CohortRule(item.name or f"ring {i + 1}", item.match, cand)
                  for i, item in enumerate(strategy.steps) if item.match is not None)
    return Plan(
        kind=strategy.kind,
        steps=steps,
        full=frozen_map({cand: n, base: 0}),
        rollback=frozen_map({base: n, cand: 0}),
        scale_down_delay=strategy.scale_down_delay,
        cohorts=rules,
        sticky=strategy.sticky,
        salt=f"{spec.release.service}/{cand}",
    )


def _from_specs(specs: tuple[StepSpec, ...], default_hold: float, start: Mapping[str, int],
                unit: str = "%") -> tuple[PlanStep, ...]:
    steps: list[PlanStep] = []
    opened = 0
    for i, item in enumerate(specs):
        replicas = start if i == 0 else EMPTY
        if item.mirror is not None:  # dark: the candidate sees copies, no user sees it
            hold = item.hold if item.hold is not None else default_hold
            steps.append(PlanStep(item.name or f"dark {item.mirror}%", 0, hold,
                                  replicas=replicas, mirror=item.mirror))
            continue
        if item.match is not None:
            opened += 1
            hold = item.hold if item.hold is not None else default_hold
            label = item.name or f"ring {opened}"
            if item.weight:
                label = f"{label} +{item.weight}{unit}"
            steps.append(PlanStep(label, item.weight, hold, replicas=replicas, cohorts=opened,
                                  mirror=0 if _last(tuple(steps), "mirror") else None))
            continue
        if item.pause:
            steps.append(PlanStep(item.name or "pause (manual)", None, 0.0, pause=True,
                                  analysis=False, replicas=replicas))
        elif item.weight is None:
            hold = item.hold if item.hold is not None else default_hold
            steps.append(PlanStep(item.name or f"pause {hold:g}s", None, hold, replicas=replicas))
        else:
            hold = item.hold if item.hold is not None else default_hold
            label = item.name or f"{item.weight}{unit}"
            if item.name:
                label = f"{item.name} {item.weight}{unit}"
            mirror = 0 if _last(tuple(steps), "mirror") else None  # a user step ends the dark phase
            steps.append(PlanStep(label, item.weight, hold, replicas=replicas, mirror=mirror))
    return _ensure_full(tuple(steps))


def _ensure_full(steps: tuple[PlanStep, ...]) -> tuple[PlanStep, ...]:
    """Plans that stop short of 100% end with a step that sends all traffic to the candidate."""
    weights = [s.weight for s in steps if s.weight is not None]
    if weights and weights[-1] == 100:
        return steps
    return (*steps, PlanStep("100%", 100, 0.0))


def _weighted(spec: ReleaseSpec, base: str, cand: str, n: int) -> tuple[PlanStep, ...]:
    return _from_specs(spec.strategy.steps, spec.strategy.hold, {cand: n, base: n})


def _ab(spec: ReleaseSpec, base: str, cand: str, n: int) -> tuple[PlanStep, ...]:
    split = spec.strategy.split
    return (
        PlanStep(f"A/B {100 - split}/{split}", split, spec.strategy.duration,
                 replicas=frozen_map({cand: n, base: n}),
                 experiment=spec.strategy.experiment is not None),
        PlanStep("100%", 100, spec.strategy.hold),
    )


def _flag(spec: ReleaseSpec, base: str, cand: str, n: int) -> tuple[PlanStep, ...]:
    s = spec.strategy
    weights: list[int] = []
    weight = s.start_weight if s.start_weight > 0 else s.step_weight
    while weight < s.max_weight:
        weights.append(weight)
        weight += s.step_weight
    weights.append(s.max_weight)
    specs = tuple(StepSpec(weight=w, name=f"{s.flag}") for w in weights)
    return _from_specs(specs, s.hold, EMPTY if s.workload else {cand: n, base: n})


def _blue_green(spec: ReleaseSpec, base: str, cand: str, n: int) -> tuple[PlanStep, ...]:
    s = spec.strategy
    # Preview: green up, no user traffic. Its gates judge the preview traffic (unknown never
    # advances), unless the spec says there is none (preview_analysis = false: time alone).
    steps = [PlanStep("preview", 0, s.preview_hold, analysis=s.preview_analysis,
                      replicas=frozen_map({base: n, cand: n}))]
    if not s.auto_promote:
        steps.append(PlanStep("await promotion", None, 0.0, pause=True, analysis=False))
    steps.append(PlanStep("switch", 100, s.hold))
    return tuple(steps)


def _rolling(spec: ReleaseSpec, base: str, cand: str, n: int) -> tuple[PlanStep, ...]:
    """Replace instances batch by batch, never beyond max_surge extra or max_unavailable missing.

    A step scales each version once, in order. Surging (new up, then old down) briefly runs
    n + batch instances, so its batch is at most max_surge; draining (old down, then new up)
    briefly runs n - batch, so its batch is at most max_unavailable. The larger allowance wins.
    """
    s = spec.strategy
    surge = s.max_surge >= s.max_unavailable
    batch = max(1, s.max_surge if surge else s.max_unavailable)
    batches = math.ceil(n / batch)
    steps: list[PlanStep] = []
    for i in range(1, batches + 1):
        new = min(n, i * batch)
        old = n - new
        order = {cand: new, base: old} if surge else {base: old, cand: new}
        steps.append(PlanStep(f"batch {i}/{batches} ({new}/{n})", round(100 * new / n), s.hold,
                              replicas=frozen_map(order)))
    return tuple(steps)
