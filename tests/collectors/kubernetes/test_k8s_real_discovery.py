"""`fleet --discover kubernetes` on a real kube-apiserver: the example manifests' Deployment pair
and HTTPRoute carry releasedeck's labels and become one row; unlabelled workloads do not; a
platform the fleet cannot reach says why in the "who drives" column's words."""

from __future__ import annotations

import copy
import json
import socket
import time
from pathlib import Path

import pytest

from collectors.fleet_discovery import discover_kubernetes, discovery_trouble
from collectors.kubernetes.errors import KubeError
from strategies.fleet import Driver, FleetRow
from tests.collectors.kubernetes.real_cluster import manifest, run

pytestmark = pytest.mark.timeout(600)  # the first test also waits for the control plane to start


def discover_until_answered(options: dict[str, str], seconds: float = 60.0) -> list[FleetRow]:
    """Discovery, asked again (bounded) while a loaded API server answers 429/503 with
    Retry-After (API priority and fairness; seen here on the Rollout list at load ~10)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return run(discover_kubernetes(options))
        except KubeError as exc:
            busy = "Max retries exceeded" in str(exc)  # the 429/503 itself is cut from the line
            if time.monotonic() > deadline or not busy:
                raise
        time.sleep(1.0)


def test_labelled_deployment_pair_and_httproute_are_one_row(kube_namespace) -> None:
    ns = kube_namespace
    docs = manifest("deployments.yaml") + manifest("httproute.yaml")
    other = copy.deepcopy(docs[0])  # the same workload without releasedeck's labels: not ours
    other["metadata"]["name"] = "other-v1"
    other["metadata"]["labels"] = {"app": "other", "version": "v1"}
    ns.create([*docs, other])

    rows = discover_until_answered({"kubeconfig": str(ns.kubeconfig), "namespace": ns.name})

    assert [r.release for r in rows] == ["checkout"]
    row = rows[0]
    assert (row.driver, row.environment, row.source) == \
        (Driver.DISCOVERED, ns.name, f"kubernetes {ns.name}")
    # desired replicas as the manifests say (no kubelet here: none ready), and the route's split
    assert "v1 0/4 ready, v2 0/0 ready" in row.problem
    assert "route checkout: checkout-v1 100%, checkout-v2 0%" in row.problem


def test_an_unreachable_platform_says_what_is_wrong(kube_namespace, tmp_path: Path) -> None:
    ns = kube_namespace
    with pytest.raises(Exception) as missing:
        run(discover_kubernetes({"kubeconfig": str(tmp_path / "absent.yaml"), "namespace": "x"}))
    assert discovery_trouble(missing.value) == "no kubeconfig"

    with socket.socket() as sock:  # a port nothing listens on (held bound, never listening)
        sock.bind(("127.0.0.1", 0))
        config = json.loads(ns.kubeconfig.read_text())
        for cluster in config["clusters"]:
            cluster["cluster"]["server"] = f"https://127.0.0.1:{sock.getsockname()[1]}"
        dead = tmp_path / "dead.kubeconfig"
        dead.write_text(json.dumps(config))
        with pytest.raises(Exception) as unreachable:
            run(discover_kubernetes({"kubeconfig": str(dead), "namespace": ns.name}))
    assert discovery_trouble(unreachable.value) == "API unreachable"
