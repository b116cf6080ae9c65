"""The sections that say what to release and how: [release], [strategy] (steps, rings), [[gate]]."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from strategies.model import BUILTIN_METRICS, Severity
from strategies.spec.cohorts import read_dark_step, read_experiment, read_match, read_sticky
from strategies.spec.model import (
    COMPARISONS,
    REQUIREMENTS,
    STRATEGY_KINDS,
    GateSpec,
    ReleaseInfo,
    StepSpec,
    StrategySpec,
)
from strategies.spec.reader import Reader, check_template, table_readers
from strategies.wording import hint, show

NAME = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
"""What a service or version may be called: the names go into Prometheus label matchers,
Kubernetes label values, Docker labels and journal file names, so they follow the strictest of
them (a Kubernetes label value); a quote or space would otherwise break a query at run time."""


def read_release(problems: list, data: Mapping[str, Any]) -> ReleaseInfo:
    r = Reader(problems, data, "release")
    info = ReleaseInfo(
        service=r.text("service", required=True),
        baseline=r.text("baseline", required=True),
        candidate=r.text("candidate", required=True),
        journal=r.text("journal"),
        environment=r.text("environment"),
    )
    for key, name in (("service", info.service), ("baseline", info.baseline),
                      ("candidate", info.candidate)):
        if name.strip() and not NAME.fullmatch(name):
            r.problem(key, f"{show(name)} cannot name a release: use at most 63 letters, digits, "
                           "'-', '_' or '.', starting and ending with a letter or digit")
    if info.baseline and info.baseline == info.candidate:
        r.problem("candidate", f"must differ from baseline (both are {info.baseline!r})")
    r.finish()
    return info


MAX_STEPS = 100  # a plan people can follow on a screen; thousands of steps are a mistake


def read_steps(r: Reader, default_hold: float) -> tuple[StepSpec, ...]:
    raw = r.raw("steps")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        r.problem("steps", f"must be a list, got {show(raw)}")
        return ()
    if len(raw) > MAX_STEPS:
        r.problem("steps", f"too many steps: {len(raw)} (at most {MAX_STEPS})")
        return ()
    steps: list[StepSpec] = []
    last = -1
    for i, item in enumerate(raw):
        where = f"steps[{i}]"
        step = _read_step(r, where, item, default_hold, served=last > 0)
        if step is None:
            r.problem(where, f"must be a weight, 'pause' or a table, got {show(item)}")
            continue
        steps.append(step)
        if step.weight is not None:
            if not 0 <= step.weight <= 100:
                r.problem(where, f"weight must be between 0 and 100, got {step.weight}")
            elif step.weight < last:
                r.problem(where, f"weights must not go down ({step.weight} after {last})")
            last = max(last, step.weight)
    return tuple(steps)


def _read_step(r: Reader, where: str, item: Any, default_hold: float, *,
               served: bool) -> StepSpec | None:
    """One step as written: 25, "pause", {weight = 25, hold = "1m"}, {pause = "30s"} or a dark
    step; `served`: users already see the candidate (a dark step must come first)."""
    if isinstance(item, bool):
        return None
    if isinstance(item, int):
        return StepSpec(weight=item)
    if item == "pause":
        return StepSpec(pause=True)
    if not isinstance(item, dict):
        return None
    sub = Reader(r.problems, item, r.at(where))
    if "dark" in item:
        step = read_dark_step(sub, item, default_hold, served=served)
    elif "pause" not in item:
        step = StepSpec(weight=sub.get("weight", int, None, required=True),
                        hold=sub.duration("hold", default_hold), name=sub.text("name"))
    else:
        if "weight" in item:
            sub.raw("weight")
            sub.problem("weight", "a step is a weight or a pause, not both; make them two steps")
        pause = sub.raw("pause")
        if pause in (True, "manual"):
            step = StepSpec(pause=True, name=sub.text("name"))
        else:
            step = StepSpec(weight=None, hold=sub.duration("pause", default_hold), name=sub.text("name"))
    sub.finish()
    return step


def read_strategy(problems: list, data: Mapping[str, Any]) -> StrategySpec:
    r = Reader(problems, data, "strategy")
    kind = r.text("kind", "canary", choices=STRATEGY_KINDS)
    hold = r.duration("hold", 30.0)
    steps = read_steps(r, hold)
    rings = r.raw("rings")
    if rings is not None:
        if not isinstance(rings, list) or not all(isinstance(x, dict) for x in rings):
            r.problem("rings", "must be a list of tables like {name = 'internal', weight = 5}")
        else:
            last = max((s.weight for s in steps if s.weight is not None), default=-1)
            for i, ring in enumerate(rings):
                sub = Reader(problems, ring, r.at(f"rings[{i}]"))
                name = sub.text("name", required=True)
                match = read_match(sub)
                if sub.raw("weight") is None and match is None:
                    sub.problem("weight", "is required (percent of everyone this ring adds), or give "
                                          'a cohort: match = { header = "X-User-Group", values = ["staff"] }')
                weight = sub.integer("weight", 0, low=0, high=100) \
                    if sub.raw("weight") is not None or match is None else None
                ring_hold = sub.duration("hold", hold)
                sub.finish(("name", "match", "weight", "hold"))
                if weight is not None and weight < last:
                    sub.problem("weight", f"must not go down from the ring before ({weight} after {last})")
                last = max(last, weight or 0)
                steps = (*steps, StepSpec(weight=weight, hold=ring_hold, name=name, match=match))
    spec = StrategySpec(
        kind=kind,
        steps=steps,
        hold=hold,
        preview_hold=r.duration("preview_hold", 0.0),
        scale_down_delay=r.duration("scale_down_delay", 30.0),
        auto_promote=r.flag("auto_promote", True),
        preview_analysis=r.flag("preview_analysis", True),
        max_surge=r.integer("max_surge", 1, low=0),
        max_unavailable=r.integer("max_unavailable", 0, low=0),
        split=r.integer("split", 50, low=1, high=99),
        duration=r.duration("duration", 300.0),
        flag=r.text("flag"),
        start_weight=r.integer("start_weight", 0, low=0, high=100),
        step_weight=r.integer("step_weight", 10, low=1, high=100),
        max_weight=r.integer("max_weight", 50, low=1, high=100),
        workload=r.text("workload"),
        kill_switch=r.flag("kill_switch", False),
        drop_targeting=r.flag("drop_targeting", False),
        sticky=read_sticky(r),
        experiment=read_experiment(problems, r, kind),
    )
    if kind in ("canary", "ring") and not spec.steps:
        r.problem("steps" if kind == "canary" else "rings", f"a {kind} plan needs at least one step")
    if kind == "rolling" and spec.max_surge == 0 and spec.max_unavailable == 0:
        r.problem("max_surge", "max_surge and max_unavailable cannot both be 0")
    if kind == "flag" and not spec.flag:
        r.problem("flag", "is required for a flag plan (the feature flag's name)")
    if kind == "flag" and spec.start_weight > spec.max_weight:
        r.problem("start_weight", f"is above max_weight ({spec.start_weight} > {spec.max_weight})")
    r.finish()
    return spec


def read_gates(problems: list, items: Any) -> tuple[GateSpec, ...]:
    gates: list[GateSpec] = []
    names: set[str] = set()
    for _i, r in table_readers(problems, items, "gate", "{metric = 'error_rate', max = 0.01}"):
        gate = _read_gate(r)
        if gate.name in names:
            r.problem("name", f"duplicate gate name {gate.name!r}; give each gate a unique name")
        names.add(gate.name)
        r.finish()
        gates.append(gate)
    return tuple(gates)


def _read_gate(r: Reader) -> GateSpec:
    metric = r.text("metric", required=True)
    query = r.text("query")
    if metric and metric not in BUILTIN_METRICS and not query:
        r.problem("metric", f"unknown metric {metric!r}" + hint(metric, tuple(BUILTIN_METRICS))
                  + "; a custom metric needs a 'query'")
    gate = GateSpec(
        name=r.text("name", metric),
        metric=metric,
        query=query,
        max=r.number("max"),
        min=r.number("min"),
        max_ratio=r.number("max_ratio", low=0.0),
        for_seconds=r.duration("for", 0.0),
        severity=r.severity("severity", Severity.CRITICAL),
        min_requests=r.number("min_requests", 20.0, low=0.0) or 0.0,
        compare=r.text("compare", "none", choices=COMPARISONS),
        confidence=r.number("confidence", 0.99, low=0.5, high=0.9999) or 0.99,
        require=r.text("require", "no-breach", choices=REQUIREMENTS),
    )
    _check_gate(r, gate)
    return gate


def _check_gate(r: Reader, gate: GateSpec) -> None:
    """What no single key can say: bounds that fit the metric and each other."""
    metric = gate.metric
    if not any(key in r.table for key in ("max", "min", "max_ratio", "compare")):
        r.problem("", "needs at least one of max, min, max_ratio or compare")
    if gate.compare == "proportion" and metric and metric != "error_rate":
        r.problem("compare", f"'proportion' compares error rates; use it on metric 'error_rate', "
                             f"not {metric!r} (latency: compare = 'mannwhitney')")
    if gate.compare == "mannwhitney" and metric and not metric.startswith("latency_"):
        r.problem("compare", f"'mannwhitney' compares latency histograms; use it on a latency_* "
                             f"metric, not {metric!r} (error rate: compare = 'proportion')")
    if gate.max_ratio is not None and gate.max_ratio <= 0:
        r.problem("max_ratio", f"must be greater than 0, got {gate.max_ratio:g}")
    if gate.query:
        check_template(r, "query", gate.query)
    if gate.max is not None and gate.min is not None and gate.min > gate.max:
        r.problem("min", f"is above max ({gate.min:g} > {gate.max:g})")
