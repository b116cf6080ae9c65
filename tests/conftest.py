"""Fixtures shared across test folders: the real Kubernetes control plane.

`kube_cluster` (session): etcd + kube-apiserver + kube-controller-manager built from Go modules
by scripts/k8s-binaries, CRDs installed. `kube_namespace` (per test): a fresh namespace on it,
with an admin kubeconfig pointing there, ServiceAccount tokens and a test kubelet. Both skip,
saying what to run, when the binaries have not been built on this machine.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

if TYPE_CHECKING:  # imported in the fixtures: the kubernetes client is slow to import
    from tests.support.kube_cluster import ControlPlane
    from tests.support.kube_namespace import KubeNamespace

# A loaded 2-core CI machine (8 sessions' tests beside each other) runs one example now and then
# far slower than on a quiet one: a per-example deadline or the too-slow health check then fails
# a property that holds. Property tests bound their work by example counts, never by time.
settings.register_profile("releasedeck", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("releasedeck")


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A real control plane on 127.0.0.1 for the whole session (started on first use)."""
    from tests.support.kube_cluster import built_binaries, control_plane

    bin_dir = os.environ.get("RELEASEDECK_K8S_BIN") or built_binaries()
    if not bin_dir:
        pytest.skip("Kubernetes control plane not built: run scripts/k8s-binaries "
                    "(Go >= 1.21 and the Go module proxy; scripts/test does it)")
    with control_plane(Path(bin_dir), tmp_path_factory.mktemp("kube")) as plane:
        yield plane


@pytest.fixture
def kube_namespace(kube_cluster: ControlPlane, request: pytest.FixtureRequest) -> Iterator[KubeNamespace]:
    """A namespace of this test's own on the shared control plane."""
    from tests.support.kube_namespace import KubeNamespace

    slug = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower().removeprefix("test_"))[:40].strip("-")
    namespace = KubeNamespace(kube_cluster, slug or "test")
    try:
        yield namespace
    finally:
        namespace.close()


RERUN_LINES = 12  # the end of a rerun failure's report: the assertion and where it was


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """A test that failed and passed on its rerun is still a defect (a flaky test loses a whole
    CI run on an unlucky day), but pytest-rerunfailures keeps only the word RERUN in a quiet
    log. Say why it failed, so the cause can be found from the CI log alone."""
    if report.outcome != "rerun" or report.longrepr is None:
        return
    tail = str(report.longrepr).rstrip().splitlines()[-RERUN_LINES:]
    print(f"\nRERUN {report.nodeid} ({report.when}) failed with:\n" + "\n".join(tail), flush=True)
