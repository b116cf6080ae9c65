"""What every lever shares: its view of the cluster and the Deployments it may scale.

The engine only says "candidate weight W" and "scale version V to N". A lever turns those into
the objects a cluster needs (replica counts, a Service selector, HTTPRoute weights, a Deployment
update, an Argo Rollout patch), and reads back what is actually routed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from collectors.kubernetes.api import Kube
from collectors.kubernetes.discovery import deployments_by_version
from collectors.kubernetes.errors import KubeError
from strategies.cohorts import Route
from strategies.model import no_entries
from strategies.ports import PlatformError
from strategies.spec import ReleaseSpec

CONFLICT_RETRIES = 3


@dataclass(frozen=True)
class LeverView:
    """The lever's objects as read now.

    `weights` None means "traffic follows ready pods" (the platform counts them); `desired`
    overrides the replicas wanted per version where the lever, not a Deployment per version,
    sizes them (a rolling update's batch, an Argo canary's share).
    """

    workloads: Mapping[str, Mapping[str, Any]] = field(default_factory=no_entries)
    weights: Mapping[str, float] | None = None
    status: str = ""
    desired: Mapping[str, int] = field(default_factory=no_entries)


class Lever:
    """Base: discovery of per-version Deployments, and scaling them by `spec.replicas`."""

    name = ""
    weight_note = ""

    def __init__(self, kube: Kube, spec: ReleaseSpec):
        self.kube = kube
        self.spec = spec
        self.options = spec.platform.options
        self.base = spec.release.baseline
        self.cand = spec.release.candidate
        self.label = spec.platform.version_label
        self.size = max(1, spec.platform.replicas)

    async def view(self) -> LeverView:
        raise NotImplementedError

    async def set_weight(self, weight: int) -> None:
        raise NotImplementedError

    async def set_route(self, route: Route) -> None:
        """Cohort rules and a mirror; only the httproute lever can write them (`check` says so)."""
        if route.cohorts or route.mirror is not None or route.sticky is not None:
            raise PlatformError(f"kubernetes: lever {self.name!r} routes by weight only; cohorts and "
                                "mirroring need lever = \"httproute\"")

    async def route_differences(self, route: Route) -> tuple[str, ...]:
        """What of `route` is not in place (reconcile's read-back): a lever that routes by weight
        only holds an empty route and nothing else."""
        if route.cohorts or route.mirror is not None or route.sticky is not None:
            return (f"lever {self.name!r} routes by weight only: no cohort rules or mirror",)
        return ()

    async def scale(self, version: str, replicas: int) -> None:
        await self.scale_deployment(version, replicas)

    # ------------------------------------------------------------------ shared helpers

    async def deployments(self) -> dict[str, dict[str, Any]]:
        """Deployments per version: the names in `deployments = {v1 = "..."}`, else by selector."""
        named = self.options.get("deployments") or {}
        if named:
            versions = list(named)
            found = await asyncio.gather(*(self.kube.get_deployment(str(named[v])) for v in versions))
            return dict(zip(versions, found, strict=True))
        items = await self.kube.list_deployments(self.spec.platform.selector)
        return deployments_by_version(items, self.label, self.spec.platform.selector)

    async def deployment_name(self, version: str) -> str:
        named = self.options.get("deployments") or {}
        if version in named:
            return str(named[version])
        found = await self.deployments()
        if version not in found:
            raise PlatformError(f"kubernetes: no Deployment for version {version!r} in {self.kube.where} "
                                f"(selector {self.spec.platform.selector!r}, template label "
                                f"{self.label}={version}); set platform.deployments")
        return str(found[version]["metadata"]["name"])

    async def scale_deployment(self, version: str, replicas: int) -> None:
        """Patch spec.replicas (the scale subresource would do too; this works on every server)."""
        name = await self.deployment_name(version)
        await self.kube.patch_deployment(name, {"spec": {"replicas": int(replicas)}})


async def retry_on_conflict(update: Callable[[], Awaitable[None]], what: str,
                            attempts: int = CONFLICT_RETRIES) -> None:
    """Run a read-modify-write; on 409 (someone wrote in between) re-read and try again, bounded."""
    for attempt in range(1, attempts + 1):
        try:
            await update()
            return
        except KubeError as exc:
            if not exc.conflict:
                raise
            if attempt == attempts:
                raise KubeError(f"kubernetes: gave up updating {what} after {attempts} conflicts "
                                "(another writer keeps changing it)", 409, "Conflict") from None
