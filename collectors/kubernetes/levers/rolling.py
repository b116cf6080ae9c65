"""Rolling update of one Deployment, driven batch by batch with `spec.paused`.

Entering the candidate: a strategic-merge patch sets the container image and the version label
of the pod template (so new pods group under the candidate), the RollingUpdate maxSurge /
maxUnavailable from the spec, and unpauses. The Deployment controller then replaces pods; when
the updated replicas reach the step's share, the lever pauses the Deployment to hold the batch
(it may overshoot by one controller batch). Progress is read with the checks of
`kubectl rollout status`. Weight 0 undoes the rollout the way `kubectl rollout undo` does:
the previous ReplicaSet's template and annotations are written back with a JSON patch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collectors.kubernetes.api import JSON_PATCH
from collectors.kubernetes.discovery import labels_of, rollout_status, template_labels
from collectors.kubernetes.levers.base import Lever, LeverView
from strategies.ports import PlatformError

REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
# Annotations that belong to the Deployment and are never copied back from a ReplicaSet.
SKIP_ANNOTATIONS = frozenset({
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
})


class RollingUpdate(Lever):
    name = "rolling"
    weight_note = "weight ≈ ready pods"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._hold_at: int | None = None  # updated replicas at which to pause the Deployment

    async def deployment(self) -> dict[str, Any]:
        name = self.options.get("deployment")
        if name:
            return await self.kube.get_deployment(str(name))
        found = await self.kube.list_deployments(self.spec.platform.selector)
        if len(found) != 1:
            raise PlatformError(f"kubernetes: lever 'rolling' needs exactly one Deployment, found {len(found)} "
                                f"with selector {self.spec.platform.selector!r} in {self.kube.where}; "
                                "set platform.deployment")
        return found[0]

    async def view(self) -> LeverView:
        dep = await self.deployment()
        spec = dep.get("spec") or {}
        status = dep.get("status") or {}
        updated = int(status.get("updatedReplicas") or 0)
        current = template_labels(dep).get(self.label, "")
        if self._hold_at is not None and updated >= self._hold_at and not spec.get("paused") \
                and current == self.cand:
            dep = await self.pause()
            spec = dep.get("spec") or {}
        _, message = rollout_status(dep)
        if spec.get("paused"):
            message = f'deployment "{dep["metadata"]["name"]}" paused: {message}'
        total = int(spec.get("replicas") or 0)
        new = min(total, self._hold_at) if self._hold_at is not None and current == self.cand else total
        desired = {current: new} if current else {}
        old = self.base if current == self.cand else self.cand
        if current and old != current:
            desired[old] = total - new
        return LeverView(workloads={current: dep} if current else {}, status=message, desired=desired)

    async def set_weight(self, weight: int) -> None:
        dep = await self.deployment()
        current = template_labels(dep).get(self.label)
        if weight <= 0:
            self._hold_at = None
            if current == self.cand:
                await self.undo(dep)
            return
        replicas = int((dep.get("spec") or {}).get("replicas") or self.size)
        self._hold_at = batch_target(replicas, weight)
        if current != self.cand:
            await self.kube.patch_deployment(dep["metadata"]["name"], self.update_patch(dep))
        elif (dep.get("spec") or {}).get("paused"):
            await self.resume()

    async def scale(self, version: str, replicas: int) -> None:
        """No-op: in a rolling update the Deployment controller owns both ReplicaSets' sizes."""

    def update_patch(self, dep: Mapping[str, Any]) -> dict[str, Any]:
        """The strategic-merge patch that starts the rollout towards the candidate."""
        images = self.options.get("images") or {}
        image = images.get(self.cand)
        if not image:
            raise PlatformError(f"kubernetes: lever 'rolling' needs platform.images.{self.cand} "
                                "(the candidate's container image)")
        containers = ((dep.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
        container = str(self.options.get("container") or (containers[0]["name"] if containers else ""))
        if not container:
            raise PlatformError(f"kubernetes: deployment {dep['metadata']['name']} has no container to update")
        s = self.spec.strategy
        return {"spec": {
            "paused": False,
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": s.max_surge, "maxUnavailable": s.max_unavailable}},
            "template": {
                "metadata": {"labels": {self.label: self.cand}},
                "spec": {"containers": [{"name": container, "image": str(image)}]},
            },
        }}

    async def pause(self) -> dict[str, Any]:
        """`kubectl rollout pause`."""
        dep = await self.deployment()
        return await self.kube.patch_deployment(dep["metadata"]["name"], {"spec": {"paused": True}})

    async def resume(self) -> dict[str, Any]:
        """`kubectl rollout resume`."""
        dep = await self.deployment()
        return await self.kube.patch_deployment(dep["metadata"]["name"], {"spec": {"paused": None}})

    async def undo(self, dep: Mapping[str, Any] | None = None) -> None:
        """`kubectl rollout undo`: back to the previous revision's ReplicaSet template.

        kubectl refuses a paused Deployment; releasedeck is undoing on purpose, so it resumes first.
        """
        dep = dict(dep or await self.deployment())
        name = dep["metadata"]["name"]
        if (dep.get("spec") or {}).get("paused"):
            dep = await self.resume()
        previous = await self.previous_replicaset(dep)
        template = dict(previous["spec"]["template"])
        template["metadata"] = dict(template.get("metadata") or {})
        labels = {k: v for k, v in (template["metadata"].get("labels") or {}).items() if k != HASH_LABEL}
        template["metadata"]["labels"] = labels
        if _same_template(template, (dep.get("spec") or {}).get("template") or {}):
            return
        await self.kube.patch_deployment(name, undo_patch(dep, previous, template), content_type=JSON_PATCH)

    async def previous_replicaset(self, dep: Mapping[str, Any]) -> dict[str, Any]:
        match = ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(match.items()))
        uid = (dep.get("metadata") or {}).get("uid")
        owned = [rs for rs in await self.kube.list_replicasets(selector)
                 if any(ref.get("uid") == uid and ref.get("controller")
                        for ref in (rs.get("metadata") or {}).get("ownerReferences") or [])]
        ranked = sorted(owned, key=_revision, reverse=True)
        if len(ranked) < 2 or _revision(ranked[1]) <= 0:
            raise PlatformError(f'kubernetes: no rollout history found for deployment "{dep["metadata"]["name"]}" '
                                "(nothing to undo to)")
        return ranked[1]


def batch_target(replicas: int, weight: int) -> int | None:
    """Updated pods at which to hold a batch; None for the last one (let the rollout finish).

    The plan's weights are rounded shares of whole batches, so rounding back gives the batch.
    """
    return max(1, round(replicas * weight / 100)) if weight < 100 else None


def undo_patch(dep: Mapping[str, Any], previous: Mapping[str, Any], template: Mapping[str, Any]) -> list[dict]:
    """kubectl's rollback patch: replace the template, and the annotations (keeping the
    Deployment's own bookkeeping, taking everything else from the ReplicaSet)."""
    mine = (dep.get("metadata") or {}).get("annotations") or {}
    theirs = (previous.get("metadata") or {}).get("annotations") or {}
    annotations = {k: v for k, v in mine.items() if k in SKIP_ANNOTATIONS}
    annotations.update({k: v for k, v in theirs.items() if k not in SKIP_ANNOTATIONS})
    return [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]


def _revision(rs: Mapping[str, Any]) -> int:
    try:
        return int(((rs.get("metadata") or {}).get("annotations") or {}).get(REVISION, 0))
    except ValueError:
        return 0


def _same_template(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    def strip(t: Mapping[str, Any]) -> Mapping[str, Any]:
        meta = dict(t.get("metadata") or {})
        meta["labels"] = {k: v for k, v in labels_of(t).items() if k != HASH_LABEL}
        return {**t, "metadata": meta}

    return strip(a) == strip(b)
