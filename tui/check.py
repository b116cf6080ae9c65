"""`releasedeck check SPEC...`: validate specs and show the plan they unroll to."""

from __future__ import annotations

from typing import TextIO

from strategies.duration import format_duration
from strategies.gates import describe_test
from strategies.model import RolloutState
from strategies.plans import build_plan
from strategies.ring_view import ring_views
from strategies.spec import ReleaseSpec, SpecError, load_runnable_spec
from tui import exitcodes


def run_check(paths: list[str], out: TextIO, err: TextIO) -> int:
    """Print every problem of every spec; exit 2 if any spec is bad, else 0."""
    worst = exitcodes.PROMOTED
    for path in paths:
        try:
            spec = load_runnable_spec(path)  # what `watch` would refuse too
        except SpecError as exc:
            for line in exc.lines():
                print(line, file=err)
            count = len(exc.problems)
            print(f"{path}: {count} problem{'s' if count != 1 else ''}", file=err)
            worst = exitcodes.USAGE
            continue
        plan = build_plan(spec)
        steps = ", ".join(
            s.label + (f" (hold {format_duration(s.hold)})" if s.hold else "") for s in plan.steps)
        print(f"{path}: ok — {spec.release.service} {spec.release.baseline} → "
              f"{spec.release.candidate}, {spec.strategy.kind} on {spec.platform.kind}, "
              f"metrics from {spec.metrics.source}, {_count(len(spec.gates), 'gate')}", file=out)
        print(f"  steps: {steps}", file=out)
        for row in ring_views(plan, RolloutState(), None):
            print(f"  ring {row.name}: {row.who}", file=out)
        experiment = spec.strategy.experiment
        if experiment is not None:
            print(f"  experiment: {experiment.success} per {experiment.trials}, winner named at "
                  f"{experiment.confidence:g} (sequential, anytime-valid); none after "
                  f"{format_duration(spec.strategy.duration)}: {spec.release.baseline} stays",
                  file=out)
        _haproxy_lines(spec, out)
        for gate in spec.gates:
            bounds = [f"{k} {v:g}" for k, v in
                      (("max", gate.max), ("min", gate.min), ("max_ratio", gate.max_ratio))
                      if v is not None]
            if gate.compare != "none":
                bounds.append(f"compare {gate.compare} @ {gate.confidence:g}")
            debounce = f" for {format_duration(gate.for_seconds)}" if gate.for_seconds else ""
            print(f"  gate {gate.name}: {gate.metric} {', '.join(bounds)}{debounce} → "
                  f"{gate.severity.value}; {describe_test(gate)}", file=out)
    return worst


def _haproxy_lines(spec: ReleaseSpec, out: TextIO) -> None:
    """HAProxy cohorts: the frontend lines and map files haproxy.cfg must have (the runtime API
    can change a map's entries, not create a map or a rule)."""
    if spec.router.kind != "haproxy" or not spec.router.options.get("maps"):
        return
    from collectors.haproxy import HAProxyError, HAProxyRouter

    try:
        maps = HAProxyRouter.from_spec(spec).cohorts
    except HAProxyError as exc:
        print(f"  haproxy: {exc}", file=out)
        return
    if maps is None:
        return
    print(f"  haproxy frontend lines (before default_backend {maps.backend}; create the map files "
          "empty):", file=out)
    for line in maps.frontend_lines():
        print(f"    {line}", file=out)


def _count(n: int, word: str) -> str:
    """'1 gate', '2 gates': no 'gate(s)'."""
    return f"{n} {word}{'' if n == 1 else 's'}"
