"""Releases the fleet finds on platforms without a spec: Docker services, Argo Rollouts, and
Deployment pairs / HTTPRoutes carrying releasedeck's labels.

A team's releases are not all described by specs on the operator's disk. Docker containers that
releasedeck started carry its labels (service, version); an Argo Rollout carries its own
progress (phase, step, setWeight) in its status; on Kubernetes, the Deployments of a release
(one per version) and the HTTPRoute that splits its traffic carry `releasedeck.io/release`
(and each Deployment `releasedeck.io/version`, else its pod template's `version`). Each
release becomes one fleet row in the platform's own words, marked "discovered": shown, never
driven from here. When discovery fails, the row's "who drives" says what is wrong in a word
or two (no kubeconfig, API unreachable, not allowed), the full error beside it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import docker

from collectors.docker_platform import SERVICE, VERSION
from collectors.kubernetes.api import HTTPROUTE, ROLLOUT, Kube, connect
from collectors.kubernetes.discovery import labels_of, template_labels
from collectors.kubernetes.errors import KubeError
from collectors.kubernetes.levers.argo import canary_steps, describe, set_weight
from strategies.fleet import Driver, FleetRow
from strategies.model import Phase

ARGO_PHASES = {"Progressing": Phase.PROGRESSING, "Paused": Phase.PAUSED, "Healthy": Phase.SUCCEEDED}


def docker_rows(containers: list[Mapping[str, Any]], where: str) -> list[FleetRow]:
    """One row per service among containers labelled by releasedeck: what runs, per version.

    `containers` are the engine's container summaries (`Labels`, `State`), as listed.
    """
    running: dict[str, dict[str, int]] = {}
    for item in containers:
        labels = item.get("Labels") or {}
        service = labels.get(SERVICE)
        if not service:
            continue
        versions = running.setdefault(service, {})
        version = labels.get(VERSION) or labels.get("version") or "?"
        if item.get("State") == "running":
            versions[version] = versions.get(version, 0) + 1
        else:
            versions.setdefault(version, 0)
    rows = []
    for service, versions in sorted(running.items()):
        shown = ", ".join(f"{v}×{n}" for v, n in sorted(versions.items()))
        rows.append(FleetRow(release=service, environment="", strategy="", phase=None, step="",
                             desired_weight=None, actual_weight=None, worst_gate=None, since=None,
                             driver=Driver.DISCOVERED, driven_by="",
                             source=f"docker {where}",
                             problem=f"running {shown}; no spec here"))
    return rows


def argo_row(rollout: Mapping[str, Any], namespace: str) -> FleetRow:
    """A Rollout in the fleet's words: Argo's phase, step and setWeight, its message as problem."""
    meta, status = rollout.get("metadata") or {}, rollout.get("status") or {}
    steps = canary_steps(rollout)
    strategy = "canary" if steps is not None else "blue-green"
    phase = Phase.ABORTED if status.get("abort") else ARGO_PHASES.get(str(status.get("phase")))
    step = ""
    weight: int | None = None
    if steps:
        index = min(int(status.get("currentStepIndex") or 0), len(steps))
        step = f"{min(index + 1, len(steps))}/{len(steps)}"
        weight = set_weight(rollout)
    actual = ((status.get("canary") or {}).get("weights") or {}).get("canary", {}).get("weight")
    return FleetRow(
        release=str(meta.get("name") or "?"), environment=namespace, strategy=strategy,
        phase=phase, step=step, desired_weight=weight,
        actual_weight=float(actual) if isinstance(actual, int | float) else None,
        worst_gate=None, since=None, driver=Driver.DISCOVERED, driven_by="argo-rollouts",
        source=f"kubernetes {namespace}", problem="" if phase else describe(rollout))


async def discover_docker(host: str) -> list[FleetRow]:
    """Rows for every service with releasedeck-labelled containers on this engine ("" = env)."""
    def listing() -> list[Mapping[str, Any]]:
        client = docker.DockerClient(base_url=host, timeout=10) if host else docker.from_env(timeout=10)
        try:
            return list(client.api.containers(all=True, filters={"label": SERVICE}))
        finally:
            client.close()

    return docker_rows(await asyncio.to_thread(listing), host or "(DOCKER_HOST)")




# The labels a Kubernetes release carries for the fleet to find it (the example manifests do).
K8S_RELEASE = "releasedeck.io/release"
K8S_VERSION = "releasedeck.io/version"
K8S_ENVIRONMENT = "releasedeck.io/environment"


def kubernetes_rows(deployments: list[Mapping[str, Any]], routes: list[Mapping[str, Any]],
                    namespace: str) -> list[FleetRow]:
    """One row per release among labelled Deployments and HTTPRoutes: which versions run (ready
    of desired replicas) and how the route splits the traffic, in the platform's words."""
    running: dict[str, dict[str, tuple[int, int]]] = {}
    splits: dict[str, list[str]] = {}
    environments: dict[str, str] = {}
    for item in deployments:
        labels = labels_of(item)
        release = labels.get(K8S_RELEASE)
        if not release:
            continue
        version = labels.get(K8S_VERSION) or template_labels(item).get("version") or \
            str((item.get("metadata") or {}).get("name") or "?")
        spec, status = item.get("spec") or {}, item.get("status") or {}
        running.setdefault(release, {})[version] = (int(status.get("readyReplicas") or 0),
                                                    int(spec.get("replicas") or 0))
        environments.setdefault(release, labels.get(K8S_ENVIRONMENT, ""))
    for route in routes:
        labels = labels_of(route)
        release = labels.get(K8S_RELEASE)
        if not release:
            continue
        name = str((route.get("metadata") or {}).get("name") or "?")
        backends = [ref for rule in (route.get("spec") or {}).get("rules") or []
                    for ref in rule.get("backendRefs") or []]
        total = sum(int(ref.get("weight", 1)) for ref in backends) or 1
        shares = ", ".join(f"{ref.get('name', '?')} {100 * int(ref.get('weight', 1)) / total:.0f}%"
                           for ref in backends)
        splits.setdefault(release, []).append(f"route {name}: {shares or 'no backends'}")
        environments.setdefault(release, labels.get(K8S_ENVIRONMENT, ""))
    rows = []
    for release in sorted(set(running) | set(splits)):
        versions = running.get(release, {})
        said = [", ".join(f"{v} {ready}/{want} ready" for v, (ready, want) in sorted(versions.items()))]
        said += splits.get(release, [])
        rows.append(FleetRow(
            release=release, environment=environments.get(release) or namespace, strategy="",
            phase=None, step="", desired_weight=None, actual_weight=None, worst_gate=None,
            since=None, driver=Driver.DISCOVERED, driven_by="",
            source=f"kubernetes {namespace}",
            problem="; ".join(part for part in said if part) + "; no spec here"))
    return rows


async def discover_kubernetes(options: Mapping[str, Any]) -> list[FleetRow]:
    """Rows for the Argo Rollouts and the labelled Deployment pairs / HTTPRoutes of a namespace.

    An API the cluster does not serve (no Argo, no Gateway API CRDs) is simply not there to
    list; any other failure (unreachable, forbidden) is raised for the row that says so.
    """
    api, namespace, server = await asyncio.to_thread(connect, options)
    kube = Kube(api, namespace, server=server)
    try:
        rollouts, deployments, routes = await asyncio.gather(
            _served(kube.list_custom(ROLLOUT)), kube.list_deployments(K8S_RELEASE),
            _served(kube.list_custom(HTTPROUTE, K8S_RELEASE)))
        return [*(argo_row(item, namespace) for item in rollouts),
                *kubernetes_rows(deployments, routes, namespace)]
    finally:
        kube.close()


async def _served(listing: Any) -> list[dict[str, Any]]:
    """A custom resource's list, or nothing when the cluster does not serve that API (404)."""
    try:
        return await listing
    except KubeError as exc:
        if exc.not_found:
            return []
        raise


def discovery_trouble(exc: BaseException) -> str:
    """A failed discovery in the words of the fleet's "who drives" column (the error in full
    goes beside it): what is wrong, not just that something is."""
    text = str(exc)
    if "cannot load" in text:
        return "no kubeconfig"
    if isinstance(exc, KubeError) and exc.code in (401, 403):
        return "not allowed"
    if (isinstance(exc, KubeError) and exc.code in (429, 503)) \
            or "too many 429" in text or "too many 503" in text:
        return "API busy"
    if isinstance(exc, KubeError):
        return "API unreachable" if exc.code == 0 else f"API error {exc.code}"
    if isinstance(exc, docker.errors.DockerException):
        return "engine unreachable"
    return "discovery failed"
