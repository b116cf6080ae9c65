"""A real Kubernetes control plane for tests: etcd, kube-apiserver, kube-controller-manager.

Built from the projects' Go modules by `scripts/k8s-binaries` (versions pinned in
tests/k8s/*/go.mod) and started the way controller-runtime's envtest starts one: no nodes, no
containers, every process on 127.0.0.1 with its own temp dirs, certificates made here. The
controller-manager runs the Deployment, ReplicaSet, ServiceAccount and garbage-collector
controllers, so a Deployment really grows ReplicaSets and Pods; a test kubelet
(tests/support/kubelet.py) plays the node. CRDs (Gateway API HTTPRoute, Argo Rollouts Rollout)
are installed from their projects' own YAML.

    plane = ControlPlane(bin_dir, workdir)
    plane.start()                      # bounded waits; raises ControlPlaneError with log tails
    plane.admin_kubeconfig             # system:masters client certificate
    plane.kubeconfig_for_token(token)  # e.g. a ServiceAccount's TokenRequest token
    plane.stop()
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

from tests.support.kube_certs import CertificateAuthority, KeyPair, service_account_keys
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "scripts" / "k8s-binaries"
START_TIMEOUT = 300.0  # a cold API server on a busy 2-core machine takes minutes (seen: 70-170 s at load 15-20)
CONTROLLERS = ("deployment-controller", "replicaset-controller", "serviceaccount-controller",
               "garbage-collector-controller")


class ControlPlaneError(RuntimeError):
    """The control plane could not start; the message carries the failing process's log tail."""


def built_binaries() -> Path | None:
    """The directory scripts/k8s-binaries built, or None when it has not been built here."""
    try:
        out = subprocess.run([str(BUILD_SCRIPT), "--check"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    path = Path(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None
    return path if path and path.is_dir() else None


def _die_with_pytest() -> None:
    """In the child before exec: SIGTERM when the test process dies, so nothing outlives it."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager, started and stopped together."""

    def __init__(self, bin_dir: Path, workdir: Path):
        self.bin = Path(bin_dir)
        self.workdir = Path(workdir)
        self.pki = self.workdir / "pki"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.server = ""
        self.versions = dict(line.split(" ", 1) for line in
                             (self.bin / "VERSIONS").read_text().splitlines() if " " in line)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.pki.mkdir(parents=True, exist_ok=True)
        ca = CertificateAuthority(self.pki)
        serving = ca.issue("apiserver", "kube-apiserver", server=True)
        self.admin = ca.issue("admin", "releasedeck-test-admin", orgs=("system:masters",))
        manager = ca.issue("controller-manager", "system:kube-controller-manager")
        sa = service_account_keys(self.pki)
        self.ca_path = ca.cert_path
        try:
            etcd = self._start_etcd()
            port = free_port()
            self.server = f"https://127.0.0.1:{port}"
            self._spawn("kube-apiserver", [
                str(self.bin / "kube-apiserver"),
                f"--etcd-servers={etcd}", "--bind-address=127.0.0.1", f"--secure-port={port}",
                "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
                f"--tls-cert-file={serving.cert}", f"--tls-private-key-file={serving.key}",
                f"--client-ca-file={ca.cert_path}",
                f"--service-account-issuer={self.server}",
                f"--service-account-key-file={sa.cert}", f"--service-account-signing-key-file={sa.key}",
                "--service-cluster-ip-range=10.96.0.0/24", "--authorization-mode=RBAC",
                "--allow-privileged=true", "--profiling=false", "--v=1",
            ])
            self._wait("kube-apiserver", lambda: self._get("/readyz") == 200)
            self.admin_kubeconfig = self._kubeconfig("admin", {
                "client-certificate-data": _b64(self.admin.cert), "client-key-data": _b64(self.admin.key)})
            manager_kubeconfig = self._kubeconfig("controller-manager", {
                "client-certificate-data": _b64(manager.cert), "client-key-data": _b64(manager.key)})
            self._spawn("kube-controller-manager", [
                str(self.bin / "kube-controller-manager"),
                f"--kubeconfig={manager_kubeconfig}", "--leader-elect=false",
                f"--controllers={','.join(CONTROLLERS)}", "--secure-port=0",
                "--use-service-account-credentials=true", f"--root-ca-file={ca.cert_path}",
                f"--service-account-private-key-file={sa.key}", "--v=1",
            ])
            self.install_crds()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            proc = self.processes.pop(name)
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)

    def alive(self) -> dict[str, bool]:
        return {name: proc.poll() is None for name, proc in self.processes.items()}

    # ------------------------------------------------------------------ clients and credentials

    def api_client(self, kubeconfig: Path | None = None) -> client.ApiClient:
        cfg = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig or self.admin_kubeconfig), client_configuration=cfg)
        return client.ApiClient(cfg)

    def kubeconfig_for_token(self, stem: str, token: str, namespace: str = "default") -> Path:
        """A kubeconfig that authenticates with a bearer token (a ServiceAccount's, say)."""
        return self._kubeconfig(stem, {"token": token}, namespace)

    def _kubeconfig(self, stem: str, user: dict[str, str], namespace: str = "default") -> Path:
        path = self.workdir / f"{stem}.kubeconfig"
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": self.server,
                                                      "certificate-authority-data": _b64(self.ca_path)}}],
            "users": [{"name": stem, "user": user}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": stem,
                                                      "namespace": namespace}}],
        }))
        path.chmod(0o600)
        return path

    # ------------------------------------------------------------------ CRDs

    def crd_documents(self) -> list[dict[str, Any]]:
        """The CRDs as their projects ship them (Gateway API standard channel, Argo Rollouts)."""
        docs = []
        for name in ("httproutes.yaml", "rollouts.yaml"):
            docs += [d for d in yaml.safe_load_all((self.bin / "crds" / name).read_text()) if d]
        return docs

    def install_crds(self) -> None:
        api = self.api_client()
        ext = client.ApiextensionsV1Api(api)
        names = []
        for doc in self.crd_documents():
            ext.create_custom_resource_definition(doc, _preload_content=False)
            names.append(doc["metadata"]["name"])

        def established() -> bool:
            for name in names:
                crd = json.loads(ext.read_custom_resource_definition(name, _preload_content=False).data)
                conditions = (crd.get("status") or {}).get("conditions") or []
                if not any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                    return False
            return True

        self._wait("CRDs established", established)
        api.close()

    # ------------------------------------------------------------------ helpers

    def _start_etcd(self) -> str:
        client_port, peer_port = free_port(), free_port()
        url = f"http://127.0.0.1:{client_port}"
        peer = f"http://127.0.0.1:{peer_port}"
        self._spawn("etcd", [
            str(self.bin / "etcd"), f"--data-dir={self.workdir / 'etcd'}", "--name=test",
            f"--listen-client-urls={url}", f"--advertise-client-urls={url}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=test={peer}", "--unsafe-no-fsync", "--log-level=warn",
        ])
        self._wait("etcd", lambda: _http_ok(f"{url}/health"))
        return url

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                cwd=self.workdir, preexec_fn=_die_with_pytest)
        log.close()

    def _wait(self, what: str, ready: Any, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise ControlPlaneError(f"{name} exited with {proc.returncode} while waiting for {what}: "
                                            f"{self.log_tail(name)}")
            try:
                if ready():
                    return
            except Exception as exc:  # not up yet: connection refused, 503, ...
                last = " ".join(str(exc).split())[:200]
            time.sleep(0.25)
        raise ControlPlaneError(f"{what} not ready after {timeout:.0f}s ({last}); "
                                f"{'; '.join(f'{n}: {self.log_tail(n)}' for n in self.processes)}")

    def log_tail(self, name: str, lines: int = 5) -> str:
        path = self.workdir / f"{name}.log"
        text = path.read_text(errors="replace").splitlines() if path.exists() else []
        return " | ".join(text[-lines:])

    def _get(self, path: str) -> int:
        context = ssl.create_default_context(cafile=str(self.ca_path))
        context.load_cert_chain(str(self.admin.cert), str(self.admin.key))
        try:
            with urllib.request.urlopen(f"{self.server}{path}", context=context, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as response:
        return int(response.status) == 200


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


@contextlib.contextmanager
def control_plane(bin_dir: Path, workdir: Path) -> Iterator[ControlPlane]:
    plane = ControlPlane(bin_dir, workdir)
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()
        shutil.rmtree(workdir / "etcd", ignore_errors=True)


__all__ = ["ControlPlane", "ControlPlaneError", "KeyPair", "built_binaries", "control_plane"]
