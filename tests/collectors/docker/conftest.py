"""Real engines for the Docker tests: a private dockerd, locally built images, HAProxy.

dockerd runs with its own data/exec roots and socket in a temp dir and ALWAYS with
--bridge=none --iptables=false --ip-forward=false (no bridge, no firewall change); containers use
the host network and bind 127.0.0.1. No registry is reachable, so images are made here: a
busybox-static rootfs through `docker import`, and the host's Python plus this project
bind-mounted read-only to run the demo service.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.collectors.docker.helpers import HAProxy, wait_until
from tests.support.ports import free_port, free_ports, retry_on_taken_port

ROOT = Path(__file__).resolve().parents[3]
BUSYBOX_IMAGE = "releasedeck-test/busybox:1"
APPLETS = ("sh", "httpd", "sleep", "wget", "cat", "echo", "test", "touch", "ls", "true", "false")


@pytest.fixture(scope="session")
def dockerd() -> Iterator[str]:
    """A private Docker engine; yields its base URL (unix://...). Stopped and wiped at the end."""
    binary = shutil.which("dockerd")
    if binary is None:
        pytest.skip("dockerd not installed (Debian package docker.io)")
    tmp = Path(tempfile.mkdtemp(prefix="rd-dockerd-"))
    sock = tmp / "docker.sock"
    tls_args: list[str] = []
    certs = _make_certs(tmp / "certs")
    if certs is not None:  # also a TLS endpoint on 127.0.0.1, as a remote engine would be
        TLS_ENDPOINT.update(url=f"tcp://127.0.0.1:{free_port()}", certs=certs)
        tls_args = ["--host", TLS_ENDPOINT["url"], "--tlsverify",
                    "--tlscacert", str(certs / "ca.pem"), "--tlscert", str(certs / "server.pem"),
                    "--tlskey", str(certs / "server-key.pem")]
    log = open(tmp / "dockerd.log", "wb")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [binary, "--data-root", str(tmp / "data"), "--exec-root", str(tmp / "exec"),
         "--pidfile", str(tmp / "dockerd.pid"), "--host", f"unix://{sock}", *tls_args,
         "--bridge=none", "--iptables=false", "--ip-forward=false", "--ip-masq=false",
         "--userland-proxy=false"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"unix://{sock}"
    try:
        deadline = time.monotonic() + 30
        client = None
        while client is None:
            if proc.poll() is not None:
                tail = (tmp / "dockerd.log").read_text(errors="replace").strip().splitlines()[-3:]
                pytest.skip(f"dockerd cannot start as this user: {' | '.join(tail)}")
            if time.monotonic() > deadline:
                pytest.fail("dockerd did not answer within 30s")
            try:
                client = docker.DockerClient(base_url=url, timeout=5)
                client.ping()
            except docker.errors.DockerException:
                client = None
                time.sleep(0.1)
        client.close()
        yield url
    finally:
        _remove_all(url)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
        TLS_ENDPOINT.clear()
        _unmount_under(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        assert not tmp.exists(), f"could not remove dockerd's temp dir {tmp}"


def _unmount_under(tmp: Path) -> None:
    """dockerd leaves exec-root/netns/default (a bind of the host netns) mounted: undo what
    our own daemon mounted under its temp dir, deepest first, so the dir can be removed."""
    prefix = str(tmp) + "/"
    with open("/proc/self/mounts") as fh:
        points = [line.split()[1] for line in fh if line.split()[1].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True, timeout=10)


TLS_ENDPOINT: dict[str, Any] = {}
"""Filled by the dockerd fixture when openssl could make certificates: url and certs dir."""


def _make_certs(where: Path) -> Path | None:
    """A throw-away CA, a server cert for 127.0.0.1 and a client cert (openssl CLI)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    where.mkdir(parents=True)

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=where, check=True, capture_output=True, timeout=30)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
        "-keyout", "ca-key.pem", "-out", "ca.pem")
    (where / "server.ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    (where / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, subject in (("server", "/CN=127.0.0.1"), ("client", "/CN=releasedeck")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject,
            "-keyout", f"{name}-key.pem", "-out", f"{name}.csr")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
            "-CAcreateserial", "-days", "1", "-extfile", f"{name}.ext", "-out", f"{name}.pem")
    return where


@pytest.fixture(scope="session")
def dockerd_tls(dockerd: str) -> dict[str, Any]:
    """The same engine over tcp://127.0.0.1 with mutual TLS: url and certs directory."""
    if not TLS_ENDPOINT:
        pytest.skip("openssl not installed: no certificates for the TLS endpoint")
    return dict(TLS_ENDPOINT)


def _remove_all(url: str) -> None:
    try:
        client = docker.DockerClient(base_url=url, timeout=10)
        for c in client.containers.list(all=True):
            c.remove(force=True)
        client.close()
    except docker.errors.DockerException:
        pass


@pytest.fixture(scope="session")
def docker_client(dockerd: str) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=dockerd, timeout=20)
    yield client
    client.close()


@pytest.fixture(scope="session")
def busybox_image(docker_client: docker.DockerClient) -> str:
    """A busybox-static rootfs imported as an image, with empty /usr/lib{,64} mount points
    (lib and lib64 link there) so the host's Python can be bind-mounted in."""
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("busybox not installed (Debian package busybox-static)")
    with tempfile.TemporaryDirectory(prefix="rd-rootfs-") as tmp:
        root = Path(tmp) / "root"
        for d in ("bin", "usr/lib", "usr/lib64", "tmp", "etc", "www"):
            (root / d).mkdir(parents=True)
        shutil.copy2(busybox, root / "bin/busybox")
        for applet in APPLETS:
            (root / "bin" / applet).symlink_to("busybox")
        (root / "lib").symlink_to("usr/lib")
        (root / "lib64").symlink_to("usr/lib64")
        (root / "tmp").chmod(0o1777)
        tarball = Path(tmp) / "rootfs.tar"
        with tarfile.open(tarball, "w") as tar:
            for item in sorted(root.iterdir()):
                tar.add(item, arcname=item.name)
        repo, tag = BUSYBOX_IMAGE.split(":")
        docker_client.api.import_image_from_file(str(tarball), repository=repo, tag=tag)
    return BUSYBOX_IMAGE


def python_volumes() -> dict[str, dict[str, str]]:
    """Read-only mounts that let the host's interpreter, venv and this project run inside."""
    paths = {"/usr/lib", "/usr/lib64", sys.base_prefix, sys.prefix, str(ROOT)}
    return {p: {"bind": p, "mode": "ro"} for p in sorted(paths) if os.path.isdir(p)}


def demo_command(latency_ms: float = 2.0) -> list[str]:
    return [sys.executable, "-m", "collectors.local.demo_service", "--service", "{service}",
            "--version", "{version}", "--port", "{port}", "--latency-ms", f"{latency_ms:g}"]


DEMO_ENV = {"PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def haproxy_factory(tmp_path: Path) -> Iterator:
    """Start HAProxy 2.6 on 127.0.0.1 with an admin socket and the Prometheus exporter."""
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy not installed (Debian package haproxy)")
    started: list[HAProxy] = []

    def start(servers: dict[str, tuple[str, int, int]], *, backend: str = "checkout",
              check: bool = True) -> HAProxy:
        def attempt() -> HAProxy:
            # distinct ports below the ephemeral range (tests/support/ports.py): two frontends
            # on one port would share it silently (HAProxy binds with SO_REUSEPORT)
            traffic, stats = free_ports(2)
            proxy = HAProxy(tmp_path / f"haproxy{len(started)}", traffic, stats,
                            backend, servers, check=check)
            started.append(proxy)
            proxy.start()
            return proxy

        return retry_on_taken_port(attempt)

    yield start
    for proxy in started:
        proxy.stop()


__all__ = ["DEMO_ENV", "demo_command", "python_volumes", "wait_until"]
