"""What the tests against the real control plane share: the example manifests, specs, waits.

The objects come from examples/kubernetes/manifests (the files users apply), placed in the
test's own namespace, so every lever test is also a test of the examples.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from collectors.kubernetes import KubernetesPlatform
from collectors.kubernetes.discovery import pod_ready
from strategies.spec import ReleaseSpec, parse_spec
from tests.support.kube_namespace import KubeNamespace

MANIFESTS = Path(__file__).resolve().parents[3] / "examples" / "kubernetes" / "manifests"


def manifest(name: str) -> list[dict[str, Any]]:
    """The documents of one example manifest, as users apply them."""
    return [d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d]


def spec_for(ns: KubeNamespace, lever: str, *, strategy: Mapping[str, Any] | None = None, replicas: int = 4,
             metrics: Mapping[str, Any] | None = None, gates: list[dict[str, Any]] | None = None,
             kubeconfig: Path | None = None, **options: Any) -> ReleaseSpec:
    """A release spec as a user writes it for this namespace, through the real spec loader."""
    return parse_spec({
        "release": {"service": "checkout", "baseline": "v1", "candidate": "v2"},
        "platform": {"kind": "kubernetes", "selector": "app=checkout", "version_label": "version",
                     "replicas": replicas, "kubeconfig": str(kubeconfig or ns.kubeconfig), "namespace": ns.name,
                     "lever": lever, "request_timeout": 10, **options},
        "metrics": dict(metrics or {"source": "prometheus", "url": "http://127.0.0.1:9", "timeout": "2s"}),
        "strategy": dict(strategy or {"kind": "canary", "steps": [25, 50, 100]}),
        **({"gate": gates} if gates else {}),
    }, "release.toml")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def pods_by_version(ns: KubeNamespace, *, ready_only: bool = False) -> dict[str, int]:
    """Live (not terminating) pods per version label."""
    counts: Counter[str] = Counter()
    for pod in ns.pods():
        if pod["metadata"].get("deletionTimestamp"):
            continue
        if pod_ready(pod) or not ready_only:
            counts[pod["metadata"]["labels"].get("version", "")] += 1
    return dict(counts)


def wait_pods(ns: KubeNamespace, want: Mapping[str, int], *, kubelet: Any, timeout: float = 90.0) -> None:
    """Until exactly `want` ready pods run per version (the kubelet syncing in between)."""
    wanted = {k: v for k, v in want.items() if v}
    ns.wait(f"ready pods {wanted}", lambda: pods_by_version(ns, ready_only=True) == wanted
            and pods_by_version(ns) == wanted, timeout=timeout, between=kubelet.sync)


async def closing(platform: KubernetesPlatform, coro: Any) -> Any:
    try:
        return await coro
    finally:
        await platform.close()
