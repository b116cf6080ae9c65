"""Reading what runs: pods, Deployments and their rollout status, as the model's objects.

Pure functions over API objects (plain dicts), so they are tested on recorded responses without
any server. Pods are grouped by the release's version label; the words used for pod state are
kubectl's (the STATUS column), which is what our users read in k9s every day.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from collectors.usage import NOT_MEASURED, Usage
from strategies.model import Instance, VersionStatus


def selector_matches(labels: Mapping[str, str], selector: str) -> bool:
    """Equality-based label selectors (a=b, a==b, a!=b, a, !a), checked on our side too.

    The API server filters with `labelSelector`; checking again costs nothing and keeps a stray
    object out of the snapshot if an older server or a proxy ignores the parameter. Set-based
    terms (`in`, `notin`) are left to the server.
    """
    for term in (t.strip() for t in re.split(r",(?![^(]*\))", selector)):
        if not term or " in " in term or " notin " in term:
            continue
        if "!=" in term:
            key, value = (x.strip() for x in term.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = (x.strip() for x in term.replace("==", "=").split("=", 1))
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def template_labels(workload: Mapping[str, Any]) -> dict[str, str]:
    return dict((((workload.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {})


def template_image(workload: Mapping[str, Any], container: str = "") -> str:
    containers = (((workload.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    for item in containers:
        if not container or item.get("name") == container:
            return str(item.get("image") or "")
    return ""


def pod_ready(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def pod_state(pod: Mapping[str, Any]) -> str:
    """kubectl's STATUS column: Terminating, a container's waiting/terminated reason, or the phase."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    status = pod.get("status") or {}
    for item in status.get("containerStatuses") or []:
        state = item.get("state") or {}
        for key in ("waiting", "terminated"):
            reason = (state.get(key) or {}).get("reason")
            if reason:
                return str(reason)
    return str(status.get("phase") or "Unknown")


def pod_usage(items: Iterable[Mapping[str, Any]]) -> dict[str, Usage]:
    """CPU (cores) and memory (bytes) per pod name, summed over its containers, from PodMetrics."""
    found: dict[str, Usage] = {}
    for item in items:
        name = str((item.get("metadata") or {}).get("name") or "")
        try:
            usage = [c.get("usage") or {} for c in item.get("containers") or []]
            cpu = float(sum(parse_quantity(u["cpu"]) for u in usage if "cpu" in u))
            memory = float(sum(parse_quantity(u["memory"]) for u in usage if "memory" in u))
        except (ValueError, TypeError, AttributeError):
            continue  # an odd quantity leaves that pod unmeasured, not the snapshot broken
        if name and usage:
            found[name] = Usage(cpu, memory)
    return found


def image_digest(pod: Mapping[str, Any]) -> str:
    """The immutable image the first container runs (`sha256:…` from its imageID), if reported."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    image_id = str(statuses[0].get("imageID") or "") if statuses else ""
    return image_id.rsplit("@", 1)[-1] if "@" in image_id else image_id


def pod_instance(pod: Mapping[str, Any], version: str, metrics_path: str = "/metrics",
                 usage: Usage = NOT_MEASURED) -> Instance:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    containers = spec.get("containers") or []
    ip = str(status.get("podIP") or "")
    port = next((p.get("containerPort") for c in containers for p in (c.get("ports") or [])
                 if p.get("containerPort")), None)
    address = f"{ip}:{port}" if ip and port else ip
    return Instance(
        id=str(meta.get("name") or ""),
        version=version,
        ready=pod_ready(pod),
        address=address,
        state=pod_state(pod),
        restarts=sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or []),
        image=str(containers[0].get("image") or "") if containers else "",
        metrics_url=f"http://{address}{metrics_path}" if ip and port else "",
        cpu=usage.cpu, memory=usage.memory, digest=image_digest(pod),
    )


def group_pods(pods: Iterable[Mapping[str, Any]], version_label: str, selector: str = "",
               metrics_path: str = "/metrics", usage: Mapping[str, Usage] | None = None
               ) -> dict[str, list[Instance]]:
    """Pods by the value of their version label (pods without the label are not ours to show)."""
    usage = usage or {}
    grouped: dict[str, list[Instance]] = {}
    for pod in pods:
        labels = labels_of(pod)
        version = labels.get(version_label)
        if not version or not selector_matches(labels, selector):
            continue
        name = str((pod.get("metadata") or {}).get("name") or "")
        grouped.setdefault(version, []).append(
            pod_instance(pod, version, metrics_path, usage.get(name, NOT_MEASURED)))
    for items in grouped.values():
        items.sort(key=lambda i: i.id)
    return grouped


def deployments_by_version(deployments: Iterable[Mapping[str, Any]], version_label: str,
                           selector: str = "") -> dict[str, dict[str, Any]]:
    """Deployments keyed by the version label of their pod template (what their pods will carry)."""
    found: dict[str, dict[str, Any]] = {}
    for item in deployments:
        if selector and not selector_matches({**labels_of(item), **template_labels(item)}, selector):
            continue
        version = template_labels(item).get(version_label)
        if version:
            found[version] = dict(item)
    return found


def version_statuses(versions: Sequence[str], pods: Mapping[str, list[Instance]],
                     workloads: Mapping[str, Mapping[str, Any]], container: str = "",
                     desired: Mapping[str, int] | None = None) -> dict[str, VersionStatus]:
    """One VersionStatus per version asked for and per version seen running.

    `desired` (from the lever) wins over a workload's spec.replicas where both exist.
    """
    desired = desired or {}
    names = list(dict.fromkeys([*versions, *pods]))
    result: dict[str, VersionStatus] = {}
    for name in names:
        workload = workloads.get(name) or {}
        spec = workload.get("spec") or {}
        status = workload.get("status") or {}
        instances = tuple(pods.get(name, ()))
        image = template_image(workload, container) if workload else (instances[0].image if instances else "")
        result[name] = VersionStatus(
            version=name,
            instances=instances,
            desired=desired[name] if name in desired else (
                int(spec["replicas"]) if workload and spec.get("replicas") is not None else None),
            image=image,
            updated=int(status.get("updatedReplicas") or 0) if workload else None,
        )
    return result


def rollout_status(deployment: Mapping[str, Any]) -> tuple[bool, str]:
    """Is the Deployment's rollout finished, and kubectl's words for where it stands.

    Same checks, in the same order, as `kubectl rollout status`: spec observed, progress
    deadline, new replicas updated, old replicas gone, updated replicas available.
    """
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    name = meta.get("name", "")
    if int(meta.get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return False, "Waiting for deployment spec update to be observed..."
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return False, f'deployment "{name}" exceeded its progress deadline'
    wanted = spec.get("replicas")
    updated = int(status.get("updatedReplicas") or 0)
    replicas = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if wanted is not None and updated < int(wanted):
        return False, (f'Waiting for deployment "{name}" rollout to finish: '
                       f"{updated} out of {wanted} new replicas have been updated...")
    if replicas > updated:
        return False, (f'Waiting for deployment "{name}" rollout to finish: '
                       f"{replicas - updated} old replicas are pending termination...")
    if available < updated:
        return False, (f'Waiting for deployment "{name}" rollout to finish: '
                       f"{available} of {updated} updated replicas are available...")
    return True, f'deployment "{name}" successfully rolled out'


def percents(counts: Mapping[str, float]) -> dict[str, float]:
    """Shares in percent; empty when nothing counts (no traffic can be said to flow)."""
    total = sum(max(0.0, v) for v in counts.values())
    if total <= 0:
        return {}
    return {k: round(100.0 * max(0.0, v) / total, 2) for k, v in counts.items()}
