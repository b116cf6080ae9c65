"""Argo Rollouts: releasedeck as a terminal face for a Rollout the Argo controller drives.

The Rollout owns its steps, ReplicaSets and traffic; the lever reads its phase, step, weights
and analysis, and moves it with the same merge patches as `kubectl argo rollouts`: promote,
promote --full, abort, retry, pause, resume. Status fields go to the `status` subresource
first and, if the cluster's CRD has none (Rollouts v0.9), to the object itself, as the plugin
does. The engine's weights map onto those verbs: 0 aborts, 100 promotes fully, a higher
weight than the Rollout's current setWeight promotes past the current pause.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from collectors.kubernetes.api import MERGE, ROLLOUT
from collectors.kubernetes.discovery import template_labels
from collectors.kubernetes.errors import KubeError
from collectors.kubernetes.levers.base import Lever, LeverView


class ArgoRollout(Lever):
    name = "argo"

    @property
    def rollout(self) -> str:
        return str(self.options.get("rollout") or self.spec.release.service)

    async def read(self) -> dict[str, Any]:
        return await self.kube.get_custom(ROLLOUT, self.rollout)

    async def view(self) -> LeverView:
        ro = await self.read()
        current = template_labels(ro).get(self.label, "")
        status = ro.get("status") or {}
        total = int((ro.get("spec") or {}).get("replicas") or 0)
        if status.get("stableRS") and status.get("currentPodHash") == status.get("stableRS") and current:
            weights = {current: 100.0}
            desired = {current: total}
        else:
            weight = set_weight(ro)
            weights = {self.base: float(100 - weight), self.cand: float(weight)}
            canary = math.ceil(total * weight / 100)
            routed = bool(((ro.get("spec") or {}).get("strategy") or {}).get("canary", {}).get("trafficRouting"))
            # Argo's basic canary shrinks the stable side as the canary grows; with a traffic
            # router the stable side stays at full size.
            desired = {self.cand: canary, self.base: total if routed else max(0, total - canary)}
        return LeverView(workloads={current: ro} if current else {}, weights=weights, status=describe(ro),
                         desired=desired)

    async def set_weight(self, weight: int) -> None:
        if weight <= 0:
            await self.abort()
            return
        if weight >= 100:
            await self.promote(full=True)
            return
        ro = await self.read()
        if (ro.get("status") or {}).get("abort"):
            await self.retry()
            return
        if set_weight(ro) < weight and paused(ro):
            await self.promote()

    async def scale(self, version: str, replicas: int) -> None:
        """No-op: the Argo controller sizes the Rollout's ReplicaSets from its own steps."""

    # ------------------------------------------------------------------ the plugin's verbs

    async def promote(self, full: bool = False) -> None:
        """`kubectl argo rollouts promote [--full]`."""
        ro = await self.read()
        spec_patch, status_patch, unified = promote_patches(ro, full)
        if status_patch is not None:
            try:
                await self._patch(status_patch, status=True)
            except KubeError as exc:
                if not exc.not_found:
                    raise
                spec_patch = unified  # no status subresource: one patch carries both
        if spec_patch is not None:
            await self._patch(spec_patch)

    async def abort(self) -> None:
        """`kubectl argo rollouts abort`."""
        await self._status_first({"status": {"abort": True}})

    async def retry(self) -> None:
        """`kubectl argo rollouts retry rollout`."""
        await self._status_first({"status": {"abort": False}})

    async def pause(self) -> None:
        """`kubectl argo rollouts pause`."""
        await self._patch({"spec": {"paused": True}})

    async def resume(self) -> None:
        """Unpause (the plugin's resume clears spec.paused the same way)."""
        await self._patch({"spec": {"paused": False}})

    async def _status_first(self, body: dict[str, Any]) -> None:
        try:
            await self._patch(body, status=True)
        except KubeError as exc:
            if not exc.not_found:
                raise
            await self._patch(body)

    async def _patch(self, body: dict[str, Any], status: bool = False) -> None:
        await self.kube.patch_custom(ROLLOUT, self.rollout, body, status=status, content_type=MERGE)


def promote_patches(ro: Mapping[str, Any], full: bool = False
                    ) -> tuple[dict | None, dict | None, dict | None]:
    """(spec patch, status patch, unified patch) exactly as the plugin decides them."""
    spec = ro.get("spec") or {}
    status = ro.get("status") or {}
    if full:
        if status.get("currentPodHash") != status.get("stableRS"):
            return None, {"status": {"promoteFull": True}}, None
        return None, None, None
    spec_patch = {"spec": {"paused": False}} if spec.get("paused") else None
    unified: dict[str, Any] = {"spec": {"paused": False}, "status": {"pauseConditions": None}}
    status_patch: dict[str, Any] | None = None
    if status.get("pauseConditions"):
        status_patch = {"status": {"pauseConditions": None}}
    else:
        steps = canary_steps(ro)
        if steps is not None and steps:
            index = int(status.get("currentStepIndex") or 0)
            if index < len(steps):
                index += 1
            status_patch = {"status": {"pauseConditions": None, "currentStepIndex": index}}
            unified = {"spec": {"paused": False}, "status": {"pauseConditions": None, "currentStepIndex": index}}
    return spec_patch, status_patch, unified


def canary_steps(ro: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    canary = ((ro.get("spec") or {}).get("strategy") or {}).get("canary")
    return None if canary is None else list(canary.get("steps") or [])


def paused(ro: Mapping[str, Any]) -> bool:
    status = ro.get("status") or {}
    return bool((ro.get("spec") or {}).get("paused") or status.get("pauseConditions")
                or status.get("phase") == "Paused")


def set_weight(ro: Mapping[str, Any]) -> int:
    """The canary weight in force: the traffic router's, else the last setWeight step reached."""
    status = ro.get("status") or {}
    routed = ((status.get("canary") or {}).get("weights") or {}).get("canary") or {}
    if "weight" in routed:
        return int(routed["weight"])
    if status.get("abort"):
        return 0
    steps = canary_steps(ro)
    if steps is None:  # blue-green: all or nothing
        return 0 if status.get("currentPodHash") != status.get("stableRS") else 100
    index = status.get("currentStepIndex")
    if index is None or int(index) >= len(steps):
        return 100
    for step in reversed(steps[: int(index) + 1]):
        if "setWeight" in step:
            return int(step["setWeight"])
    return 0


def describe(ro: Mapping[str, Any]) -> str:
    """One line in the plugin's words: phase, step, setWeight, analysis, message."""
    name = (ro.get("metadata") or {}).get("name", "")
    status = ro.get("status") or {}
    parts = [f"Rollout {name}: {status.get('phase') or 'Unknown'}"]
    steps = canary_steps(ro)
    if steps:
        index = min(int(status.get("currentStepIndex") or 0), len(steps))
        parts.append(f"step {index}/{len(steps)}")
        parts.append(f"setWeight {set_weight(ro)}")
    for key in ("currentStepAnalysisRunStatus", "currentBackgroundAnalysisRunStatus"):
        run = (status.get("canary") or {}).get(key) or {}
        if run.get("status"):
            parts.append(f"analysis {run.get('name', '')} {run['status']}".replace("  ", " "))
    if status.get("abort"):
        parts.append("aborted")
    if status.get("message"):
        parts.append(str(status["message"]))
    return ", ".join(parts)
