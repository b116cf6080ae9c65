"""What the screen shows of a plan that routes by cohort: each ring, who is in it, where it stands.

Pure: built from the plan, the rollout state and the candidate's latest sample, so the app, the
wallboard and a follower render the same rows.
"""

from __future__ import annotations

from strategies.model import CohortView, MetricSample, Phase, RolloutState
from strategies.plans import Plan


def ring_views(plan: Plan, state: RolloutState, candidate: MetricSample | None
               ) -> tuple[CohortView, ...]:
    """One row per step of a plan that routes by cohort or mirrors (empty for other plans)."""
    if not plan.routes_cohorts:
        return ()
    sticky = f" (sticky by {plan.sticky.describe()})" if plan.sticky is not None else ""
    closed = state.phase in (Phase.ROLLING_BACK, Phase.ROLLED_BACK, Phase.ABORTED)
    rows: list[CohortView] = []
    opened = 0
    for index, step in enumerate(plan.steps):
        if step.pause:
            continue
        if step.mirror:
            who = f"mirror {step.mirror}% of requests (answers discarded)"
        elif step.cohorts is not None and step.cohorts > opened:
            who = " + ".join(rule.match.describe() for rule in plan.cohorts[opened:step.cohorts])
            if step.weight:
                who += f" + {step.weight}% of everyone{sticky}"
        else:
            who = f"{plan.weight_at(index)}% of everyone{sticky}"
        if step.cohorts is not None:
            opened = max(opened, step.cohorts)
        if state.phase is Phase.PENDING or index > state.step:
            status = "ahead"
        elif index < state.step or state.phase in (Phase.PROMOTING, Phase.SUCCEEDED):
            status = "reached"
        else:
            status = "closed" if closed else "current"
        live = status == "current" and candidate is not None
        rows.append(CohortView(name=step.label, who=who, share=step.weight, status=status,
                               requests=candidate.requests if live and candidate else None,
                               error_ratio=candidate.error_ratio if live and candidate else None))
    return tuple(rows)
