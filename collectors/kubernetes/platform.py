"""The Kubernetes platform: one object that is both the release's Platform and its router.

It reports what runs (pods grouped by the version label, with their Deployments or Rollout)
and pulls the lever named in the spec. Connection happens on first use, so a missing
kubeconfig or an unreachable API server shows up as the snapshot's error line while the app
keeps running; levers raise `PlatformError` with one line for the driver to show.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence

from collectors.kubernetes.api import Kube, connect
from collectors.kubernetes.discovery import group_pods, percents, pod_usage, version_statuses
from collectors.kubernetes.errors import KubeError, describe
from collectors.kubernetes.levers import LEVERS, Lever
from collectors.usage import Usage
from strategies.cohorts import Route
from strategies.model import PlatformSnapshot, frozen_map
from strategies.ports import PlatformError
from strategies.spec import ReleaseSpec

DEFAULT_LEVER = "replicas"
METRICS_API_RETRY = 300.0


class KubernetesPlatform:
    """Platform and TrafficRouter for `[platform] kind = "kubernetes"`."""

    kind = "kubernetes"

    def __init__(self, spec: ReleaseSpec, kube: Kube | None = None):
        self.spec = spec
        self.lever_name = str(spec.platform.options.get("lever") or DEFAULT_LEVER)
        self._kube = kube
        self._lever: Lever | None = None
        self._lock = asyncio.Lock()
        self._metrics_api_missing_until = 0.0  # metrics.k8s.io absent: asked again after a while

    async def lever(self) -> Lever:
        """The lever, connecting to the API server on first use."""
        async with self._lock:
            if self._lever is None:
                if self._kube is None:
                    # In a thread: reading the kubeconfig may run an exec credential plugin, and the
                    # client's API classes take seconds to import on first use.
                    self._kube = await asyncio.to_thread(self._connect)
                self._lever = LEVERS[self.lever_name](self._kube, self.spec)
            return self._lever

    def _connect(self) -> Kube:
        options = self.spec.platform.options
        api, namespace, server = connect(options)
        timeout = float(options.get("request_timeout") or max(1.0, self.spec.metrics.timeout))
        return Kube(api, namespace, timeout=timeout, server=server)

    # ------------------------------------------------------------------ Platform

    async def snapshot(self, versions: Sequence[str], now: float) -> PlatformSnapshot:
        """Pods and the lever's objects, read concurrently; any failure is the snapshot's error."""
        try:
            lever = await self.lever()
            selector = self.spec.platform.selector
            results = await asyncio.gather(lever.kube.list_pods(selector), lever.view(), return_exceptions=True)
            for result in results:  # report the first failure in a fixed order, not the fastest one
                if isinstance(result, BaseException):
                    raise result
            items, view = results
        except PlatformError as exc:
            return PlatformSnapshot(at=now, error=str(exc), weight_note=self._note())
        except Exception as exc:  # a bug or an odd object must not take the app down
            return PlatformSnapshot(at=now, error=str(describe(exc, "read the release", self._where())),
                                    weight_note=self._note())
        usage = await self._pod_usage(lever, selector, now)
        pods = group_pods(items, self.spec.platform.version_label, selector, self.spec.metrics.metrics_path,
                          usage)
        weights = view.weights
        if weights is None:
            weights = percents({v: float(sum(1 for i in pods.get(v, ()) if i.ready))
                                for v in dict.fromkeys([*versions, *pods])})
        statuses = version_statuses(list(versions), pods, view.workloads,
                                    str(self.spec.platform.options.get("container") or ""), view.desired)
        return PlatformSnapshot(at=now, versions=frozen_map(statuses), weights=frozen_map(weights),
                                weight_note=self._note(), status=view.status)

    async def _pod_usage(self, lever: Lever, selector: str, now: float) -> dict[str, Usage]:
        """CPU and memory per pod from metrics-server; a cluster without it shows none (no error),
        and is asked again only every METRICS_API_RETRY seconds."""
        if now < self._metrics_api_missing_until:
            return {}
        try:
            return pod_usage(await lever.kube.list_pod_metrics(selector))
        except KubeError:
            self._metrics_api_missing_until = now + METRICS_API_RETRY
            return {}

    async def scale(self, version: str, replicas: int) -> None:
        await self._act(f"scale {version} to {replicas}", lambda lever: lever.scale(version, replicas))

    # ------------------------------------------------------------------ TrafficRouter

    async def set_weights(self, weights: Mapping[str, int]) -> None:
        cand = self.spec.release.candidate
        base = self.spec.release.baseline
        weight = int(weights[cand]) if cand in weights else 100 - int(weights.get(base, 100))
        await self._act(f"set candidate weight to {weight}%", lambda lever: lever.set_weight(weight))

    async def set_route(self, route: Route) -> None:
        """`CohortRouter`: a ring's cohort rules and a dark step's mirror (httproute lever only)."""
        what = f"set {len(route.cohorts)} cohort rule(s) and mirror " \
            f"{route.mirror.percent if route.mirror else 0:g}%"
        await self._act(what, lambda lever: lever.set_route(route))

    async def route_differences(self, route: Route, weights: Mapping[str, int] | None
                                ) -> tuple[str, ...]:
        """`RouteReadback`: the lever's rules read back against `route` (the httproute lever
        reuses the route this tick's snapshot read). `weights` are unused: an HTTPRoute has no
        sticky slots."""
        try:
            return await (await self.lever()).route_differences(route)
        except PlatformError:
            raise
        except Exception as exc:  # one line, never a traceback
            raise describe(exc, "read the cohort route back", self._where()) from None

    async def weights(self) -> Mapping[str, float]:
        snap = await self.snapshot(self.spec.versions, 0.0)
        if snap.error:
            raise PlatformError(snap.error)
        return snap.weights

    async def close(self) -> None:
        if self._kube is not None:
            await asyncio.to_thread(self._kube.close)

    # ------------------------------------------------------------------ helpers

    async def _act(self, what: str, call: Callable[[Lever], Awaitable[None]]) -> None:
        try:
            await call(await self.lever())
        except PlatformError:
            raise
        except Exception as exc:  # one line, never a traceback
            raise describe(exc, what, self._where()) from None

    def _note(self) -> str:
        return LEVERS[self.lever_name].weight_note

    def _where(self) -> str:
        return self._kube.where if self._kube is not None else "the cluster"


def open_kubernetes(spec: ReleaseSpec) -> KubernetesPlatform:
    """The adapter for a spec with `kind = "kubernetes"`; use it as platform and as router."""
    return KubernetesPlatform(spec)
