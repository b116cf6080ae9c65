"""Replica-ratio canary: two Deployments behind one Service; traffic follows ready pods.

A Service spreads connections over ready endpoints, so the candidate's share is roughly its
share of ready replicas. That is approximate (and coarse with few replicas), which the screen
says: "weight ≈ replicas". Like Argo Rollouts' basic canary, the total stays near
`platform.replicas`, and each side keeps at least one pod while both are in play.
"""

from __future__ import annotations

from collectors.kubernetes.discovery import percents
from collectors.kubernetes.levers.base import Lever, LeverView


class ReplicaRatio(Lever):
    name = "replicas"
    weight_note = "weight ≈ replicas"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._weight: int | None = None  # last weight set; read from the cluster when unknown

    def split(self, weight: int) -> dict[str, int]:
        """Replicas per version for a candidate weight."""
        n = self.size
        if weight <= 0:
            return {self.base: n, self.cand: 0}
        if weight >= 100:
            return {self.base: 0, self.cand: n}
        if n == 1:  # one pod each: about half the traffic, never all of it too early
            return {self.base: 1, self.cand: 1}
        cand = min(n - 1, max(1, round(n * weight / 100)))
        return {self.base: n - cand, self.cand: cand}

    async def view(self) -> LeverView:
        found = await self.deployments()
        ready = {v: float((found[v].get("status") or {}).get("readyReplicas") or 0)
                 for v in (self.base, self.cand) if v in found}
        return LeverView(workloads=found, weights=percents(ready))

    async def set_weight(self, weight: int) -> None:
        targets = self.split(weight)
        found = await self.deployments()
        current = {v: int((found.get(v, {}).get("spec") or {}).get("replicas") or 0) for v in targets}
        # Grow before shrinking, so capacity never dips below the total while traffic moves.
        for version in sorted(targets, key=lambda v: targets[v] < current[v]):
            if targets[version] != current[version]:
                await self.scale_deployment(version, targets[version])
        self._weight = weight

    async def scale(self, version: str, replicas: int) -> None:
        """Scale within the weight in force: a full-size request never outgrows the ratio."""
        if replicas > 0:
            if self._weight is None:
                self._weight = await self._cluster_weight()
            replicas = min(replicas, self.split(self._weight).get(version, replicas))
        await self.scale_deployment(version, replicas)

    async def _cluster_weight(self) -> int:
        found = await self.deployments()
        reps = {v: int((found.get(v, {}).get("spec") or {}).get("replicas") or 0) for v in (self.base, self.cand)}
        total = sum(reps.values())
        return round(100 * reps[self.cand] / total) if total else 0
