"""Releases the fleet finds on platforms without a spec: Docker services and Argo Rollouts.

A team's releases are not all described by specs on the operator's disk. Docker containers that
releasedeck started carry its labels (service, version); an Argo Rollout carries its own
progress (phase, step, setWeight) in its status. Each becomes a fleet row in the platform's own
words, marked "discovered": shown, never driven from here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import docker

from collectors.docker_platform import SERVICE, VERSION
from collectors.kubernetes.api import ROLLOUT, Kube, connect
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


async def discover_argo(options: Mapping[str, Any]) -> list[FleetRow]:
    """Rows for every Argo Rollout in the namespace the options name (kubeconfig, context)."""
    api, namespace, server = await asyncio.to_thread(connect, options)
    kube = Kube(api, namespace, server=server)
    try:
        return [argo_row(item, namespace) for item in await kube.list_custom(ROLLOUT)]
    finally:
        kube.close()
