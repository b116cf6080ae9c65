"""The plan a journal walks: a fingerprint, so a spec edited between runs is noticed, not mapped.

A run journals `plan_print(plan, gates)` with its `started`/`retried` decision. On resume the
current spec's print is compared with the last one journaled; if they differ, `describe_change`
says what changed in one phrase ("steps 10% 25% 50% 100% → 20% 100%; gate errors changed"), and
the run stops unless the operator chose `--adopt-spec`, which `adopt_step` maps onto the new
plan. Journals written before fingerprints existed carry none: they resume as before.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from strategies.plans import Plan
from strategies.spec import GateSpec

PRINT_KEY = "plan"  # the evidence key that carries a print in a journal record


@dataclass(frozen=True)
class PlanPrint:
    """What a journal remembers of a plan: a digest, and enough to name what changed."""

    digest: str
    kind: str
    steps: tuple[str, ...]  # step labels
    holds: tuple[float, ...]
    gates: Mapping[str, str]  # gate name -> digest of its settings

    def to_dict(self) -> dict[str, Any]:
        return {PRINT_KEY: self.digest, "strategy": self.kind, "steps": list(self.steps),
                "holds": list(self.holds), "gates": dict(self.gates)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanPrint | None:
        try:
            return cls(digest=str(data[PRINT_KEY]), kind=str(data.get("strategy", "")),
                       steps=tuple(str(s) for s in data.get("steps", ())),
                       holds=tuple(float(h) for h in data.get("holds", ())),
                       gates={str(k): str(v) for k, v in dict(data.get("gates", {})).items()})
        except (KeyError, TypeError, ValueError):
            return None


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plan_print(plan: Plan, gates: Sequence[GateSpec]) -> PlanPrint:
    """The fingerprint of what a run walks: every step's target and hold, and every gate."""
    steps = [{"label": s.label, "weight": s.weight, "hold": s.hold, "pause": s.pause,
              "analysis": s.analysis, "replicas": dict(s.replicas)} for s in plan.steps]
    for step, printed in zip(plan.steps, steps, strict=True):
        # cohort fields only where set, so plans without them keep their earlier digests
        for key, value in (("cohorts", step.cohorts), ("mirror", step.mirror),
                           ("experiment", step.experiment or None)):
            if value is not None:
                printed[key] = value
    gate_prints = {g.name: _digest(asdict(g)) for g in gates}
    body = {"kind": plan.kind, "steps": steps, "full": dict(plan.full),
            "rollback": dict(plan.rollback), "gates": gate_prints}
    if plan.cohorts or plan.sticky is not None:
        body["cohorts"] = [rule.to_dict() for rule in plan.cohorts]
        body["sticky"] = plan.sticky.to_dict() if plan.sticky is not None else None
    return PlanPrint(_digest(body), plan.kind, tuple(s.label for s in plan.steps),
                     tuple(s.hold for s in plan.steps), gate_prints)


def journaled_print(records: Iterable[Mapping[str, Any]]) -> PlanPrint | None:
    """The last plan print a run journaled (None for journals older than fingerprints)."""
    found: PlanPrint | None = None
    for record in records:
        for evidence in record.get("evidence", ()) or ():
            if isinstance(evidence, Mapping) and PRINT_KEY in evidence:
                found = PlanPrint.from_dict(evidence) or found
    return found


def describe_change(old: PlanPrint, new: PlanPrint) -> str:
    """One phrase naming what differs between two prints ("" when they are the same plan)."""
    if old.digest == new.digest:
        return ""
    parts: list[str] = []
    if old.kind != new.kind:
        parts.append(f"strategy {old.kind} → {new.kind}")
    if old.steps != new.steps:
        parts.append(f"steps {' '.join(old.steps)} → {' '.join(new.steps)}")
    elif old.holds != new.holds:
        parts.append(f"holds {' '.join(f'{h:g}s' for h in old.holds)} → "
                     f"{' '.join(f'{h:g}s' for h in new.holds)}")
    added = sorted(set(new.gates) - set(old.gates))
    removed = sorted(set(old.gates) - set(new.gates))
    changed = sorted(g for g in set(old.gates) & set(new.gates) if old.gates[g] != new.gates[g])
    for word, names in (("added", added), ("removed", removed), ("changed", changed)):
        if names:
            parts.append(f"gate{'s' if len(names) > 1 else ''} {', '.join(names)} {word}")
    return "; ".join(parts) or "step targets changed"


def adopt_step(plan: Plan, weight: int) -> int:
    """Where a release at candidate `weight` continues on a new plan: the last step whose weight
    is at or below it (never more traffic than the candidate has been judged at), else step 1."""
    chosen = 0
    for index in range(len(plan.steps)):
        if plan.steps[index].pause:
            continue
        if plan.weight_at(index) <= weight:
            chosen = index
    return chosen
