"""DockerPlatform against a real, private dockerd: discovery, scale, health, restarts, errors."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from collectors.docker_platform import (
    MANAGED,
    DockerPlatform,
    DockerPlatformError,
    Template,
    explain,
    parse_selector,
)
from collectors.fleet_discovery import discover_docker
from strategies.fleet import Driver
from strategies.spec import SpecError, parse_spec
from tests.collectors.docker.conftest import ROOT
from tests.collectors.docker.helpers import async_wait_until
from tests.support.ports import free_port, free_run

pytestmark = pytest.mark.docker

HTTPD = ("sh", "-c", "echo {version}-{index} > /tmp/index.html && exec httpd -f -p 127.0.0.1:{port} -h /tmp")


def _service() -> str:
    return f"svc{uuid.uuid4().hex[:8]}"


def _platform(dockerd: str, image: str, service: str, **template) -> DockerPlatform:
    template.setdefault("command", HTTPD)
    template.setdefault("init", True)
    return DockerPlatform(service, selector=f"app={service}", host=dockerd,
                          template=Template(image=image, **template), ready_timeout=15)


def test_selector_parsing() -> None:
    assert parse_selector("app=checkout, tier=web,canary") == \
        {"app": "checkout", "tier": "web", "canary": None}
    assert parse_selector("") == {}


def test_discovers_containers_by_label_and_groups_by_version(dockerd, docker_client,
                                                              busybox_image) -> None:
    service = _service()
    made = []
    for version, n in (("v1", 2), ("v2", 1)):
        for _ in range(n):
            made.append(docker_client.containers.run(
                busybox_image, ["sleep", "60"], detach=True, init=True, network_mode="host",
                labels={"app": service, "version": version}))
    other = docker_client.containers.run(busybox_image, ["sleep", "60"], detach=True, init=True,
                                         network_mode="host",
                                         labels={"app": "someone-else", "version": "v1"})
    platform = DockerPlatform(service, selector=f"app={service}", host=dockerd)
    try:
        snap = asyncio.run(platform.snapshot(["v1", "v2", "v3"], 5.0))
        assert snap.error is None
        assert {v: s.total for v, s in snap.versions.items()} == {"v1": 2, "v2": 1, "v3": 0}
        ids = {i.id for s in snap.versions.values() for i in s.instances}
        assert other.name not in ids and len(ids) == 3
        inst = snap.versions["v2"].instances[0]
        assert (inst.ready, inst.state, inst.image, inst.restarts) == \
            (True, "running", busybox_image, 0)
        assert snap.versions["v1"].image == busybox_image
    finally:
        for c in [*made, other]:
            c.remove(force=True)
        asyncio.run(platform.close())


def test_scale_is_idempotent_ordered_and_serves(dockerd, docker_client, busybox_image) -> None:
    service = _service()
    platform = _platform(dockerd, busybox_image, service)

    async def scenario() -> None:
        await platform.scale("v2", 2)
        snap = await platform.snapshot(["v2"], 1.0)
        first = snap.versions["v2"]
        assert (first.total, first.ready, first.running, first.desired) == (2, 2, 2, None)
        assert [i.id for i in first.instances] == \
            [f"releasedeck-{service}-v2-1", f"releasedeck-{service}-v2-2"]
        for inst in first.instances:  # each instance answers on its own 127.0.0.1 port
            body = httpx.get(f"http://{inst.address}/", timeout=2).text.strip()
            assert body == f"v2-{inst.id.rsplit('-', 1)[1]}"
            assert inst.metrics_url == f"http://{inst.address}/metrics"

        await platform.scale("v2", 2)  # same target: nothing restarts
        again = (await platform.snapshot(["v2"], 2.0)).versions["v2"]
        assert [i.id for i in again.instances] == [i.id for i in first.instances]

        await platform.scale("v2", 1)  # newest goes first, and is removed (it was ours)
        one = (await platform.snapshot(["v2"], 3.0)).versions["v2"]
        assert [i.id for i in one.instances] == [f"releasedeck-{service}-v2-1"]
        assert len(docker_client.containers.list(all=True, filters={"label": f"app={service}"})) == 1

        await platform.scale("v2", 3)  # the free index 2 is reused before 3
        ids = [i.id for i in (await platform.snapshot(["v2"], 4.0)).versions["v2"].instances]
        assert ids == [f"releasedeck-{service}-v2-{n}" for n in (1, 2, 3)]

        await platform.scale("v2", 0)
        assert (await platform.snapshot(["v2"], 5.0)).versions["v2"].total == 0
        assert docker_client.containers.list(all=True, filters={"label": f"app={service}"}) == []

    try:
        asyncio.run(scenario())
    finally:
        asyncio.run(platform.cleanup())
        asyncio.run(platform.close())


def test_docker_healthcheck_decides_readiness(dockerd, busybox_image) -> None:
    service = _service()
    platform = _platform(
        dockerd, busybox_image, service, command=("sleep", "60"),
        healthcheck={"test": ["CMD", "test", "-f", "/tmp/ok"], "interval": 100_000_000,
                     "timeout": 1_000_000_000, "retries": 1})
    platform.ready_timeout = 0  # do not wait: we want to see it unready first

    async def scenario() -> None:
        await platform.scale("v1", 1)
        snap = await platform.snapshot(["v1"], 1.0)
        inst = snap.versions["v1"].instances[0]
        assert not inst.ready and inst.state.startswith("running (")

        async def unhealthy() -> bool:
            i = (await platform.snapshot(["v1"], 1.0)).versions["v1"].instances[0]
            return i.state == "running (unhealthy)" and not i.ready
        await async_wait_until(unhealthy, what="docker to mark the container unhealthy")

        (container,) = await platform.containers("v1")
        await asyncio.to_thread(container.exec_run, ["touch", "/tmp/ok"])

        async def healthy() -> bool:
            i = (await platform.snapshot(["v1"], 2.0)).versions["v1"].instances[0]
            return i.ready and i.state == "running (healthy)"
        await async_wait_until(healthy, what="docker to mark the container healthy")

    try:
        asyncio.run(scenario())
    finally:
        assert asyncio.run(platform.cleanup()) == 1
        asyncio.run(platform.close())


def test_crash_loop_counts_restarts_and_scale_reports_it(dockerd, busybox_image) -> None:
    service = _service()
    platform = _platform(dockerd, busybox_image, service,
                         command=("sh", "-c", "echo boom: missing config; exit 3"))
    platform.ready_timeout = 1.5

    async def scenario() -> None:
        with pytest.raises(DockerPlatformError) as info:
            await platform.scale("v1", 1)
        message = str(info.value)
        assert "0/1 new instance(s) ready" in message and "boom: missing config" in message
        assert "\n" not in message

        async def restarted() -> bool:
            i = (await platform.snapshot(["v1"], 1.0)).versions["v1"].instances[0]
            return i.restarts >= 1 and not i.ready
        await async_wait_until(restarted, what="docker to restart the crashing container")

    try:
        asyncio.run(scenario())
    finally:
        asyncio.run(platform.cleanup())
        asyncio.run(platform.close())


def test_missing_image_and_missing_template_are_clear(dockerd, busybox_image) -> None:
    service = _service()

    async def scenario() -> None:
        missing = _platform(dockerd, "releasedeck-test/nope:{version}", service)
        with pytest.raises(DockerPlatformError) as info:
            await missing.scale("v9", 1)
        assert "image 'releasedeck-test/nope:v9' not found" in str(info.value)
        assert "\n" not in str(info.value)
        await missing.close()

        bare = DockerPlatform(service, selector=f"app={service}", host=dockerd)
        with pytest.raises(DockerPlatformError, match=r"no image for v2: set \[platform\] images.v2"):
            await bare.scale("v2", 1)
        await bare.close()

    asyncio.run(scenario())


def test_engine_down_is_an_error_in_the_snapshot_and_retried(dockerd, tmp_path: Path) -> None:
    sock = tmp_path / "docker.sock"
    platform = DockerPlatform("checkout", host=f"unix://{sock}")

    async def scenario() -> None:
        snap = await platform.snapshot(["v1"], 7.0)
        assert snap.at == 7.0 and snap.versions == {}
        assert snap.error == (f"listing containers: Docker engine not found at unix://{sock}: "
                              "no socket there (is dockerd or podman running?)")
        with pytest.raises(DockerPlatformError, match="scale v1 to 1: Docker engine not found"):
            await platform.scale("v1", 1)
        sock.symlink_to(dockerd.removeprefix("unix://"))  # the engine "comes back"
        snap = await platform.snapshot(["v1"], 8.0)
        assert snap.error is None and "v1" in snap.versions
        await platform.close()

    asyncio.run(scenario())


def test_explain_names_permission_problems() -> None:
    try:
        raise docker.errors.DockerException("Error while fetching server API version") \
            from PermissionError(13, "Permission denied")
    except docker.errors.DockerException as exc:
        text = explain(exc, "unix:///var/run/docker.sock")
    assert text.startswith("permission denied on the Docker socket unix:///var/run/docker.sock")


def test_from_spec_builds_the_template(tmp_path: Path) -> None:
    spec_path = tmp_path / "release.toml"
    spec_path.write_text("")
    data = {
        "release": {"service": "checkout", "baseline": "v1", "candidate": "v2"},
        "platform": {
            "kind": "docker", "selector": "app=checkout", "replicas": 2,
            "host": "tcp://10.0.0.5:2376",
            "tls": {"ca_cert": "ca.pem", "client_cert": "cert.pem", "client_key": "key.pem"},
            "images": {"v1": "shop/checkout:1.0", "v2": "shop/checkout:1.1"},
            "command": ["serve", "--port", "{port}"], "env": {"MODE": "{version}"},
            "base_port": {"v1": 8101, "v2": 8201}, "volumes": ["./app:/app:ro"],
            "healthcheck": {"test": ["CMD", "true"], "interval": "2s", "retries": 3},
            "ready_timeout": "20s", "restart": "no",
        },
        "router": {"kind": "haproxy", "socket": "/run/haproxy/admin.sock",
                   "servers": {"v1": ["v1a"], "v2": ["v2a"]}},
        "strategy": {"kind": "canary", "steps": [10, 100]},
    }
    platform = DockerPlatform.from_spec(parse_spec(data, str(spec_path)))
    t = platform.template
    assert (t.image_for("v1"), t.image_for("v2")) == ("shop/checkout:1.0", "shop/checkout:1.1")
    assert t.base_port == {"v1": 8101, "v2": 8201} and t.restart == "no"
    assert t.volumes == [f"{tmp_path / 'app'}:/app:ro"]
    assert t.healthcheck == {"test": ["CMD", "true"], "interval": 2_000_000_000, "retries": 3}
    assert platform.ready_timeout == 20 and platform.engine_host == "10.0.0.5"
    assert platform.selector == {"app": "checkout"}

    data["platform"]["restart"] = "sometimes"
    data["platform"]["imagez"] = {}
    with pytest.raises(SpecError) as info:
        parse_spec(data, "release.toml")
    assert "platform.restart: has the wrong type: \"sometimes\"" in str(info.value)
    assert "platform.imagez: unknown key for platform kind 'docker' (did you mean 'image'" \
        in str(info.value)


def test_cleanup_finds_everything_releasedeck_started(dockerd, docker_client,
                                                      busybox_image) -> None:
    service = _service()
    platform = _platform(dockerd, busybox_image, service, command=("sleep", "60"))
    asyncio.run(platform.scale("v1", 2))
    asyncio.run(platform.scale("v2", 1))
    ours = docker_client.containers.list(all=True, filters={"label": [f"{MANAGED}=true",
                                                                      f"app={service}"]})
    assert len(ours) == 3
    assert asyncio.run(platform.cleanup()) == 3
    assert docker_client.containers.list(all=True, filters={"label": f"app={service}"}) == []
    asyncio.run(platform.close())


def test_per_version_base_ports_are_fixed_slots(dockerd, busybox_image) -> None:
    """Instance n of a version always listens on base + n - 1 (what a static HAProxy config
    names), also right after a restart when the old port still has TIME_WAIT connections."""

    service = _service()
    bases = {"v1": free_run(3), "v2": free_run(3)}
    platform = _platform(dockerd, busybox_image, service, base_port=bases)

    async def ports(version: str) -> list[str]:
        snap = await platform.snapshot([version], 1.0)
        return [i.address for i in snap.versions[version].instances]

    async def scenario() -> None:
        await platform.scale("v1", 2)
        assert await ports("v1") == [f"127.0.0.1:{bases['v1']}", f"127.0.0.1:{bases['v1'] + 1}"]
        with httpx.Client(timeout=2) as client:  # busybox httpd closes: TIME_WAIT on its port
            for _ in range(5):
                assert client.get(f"http://127.0.0.1:{bases['v1']}/").text.strip() == "v1-1"
        await platform.scale("v1", 0)
        await platform.scale("v1", 1)
        assert await ports("v1") == [f"127.0.0.1:{bases['v1']}"]
        with pytest.raises(DockerPlatformError, match=r"no port for v3: add it to \[platform\] base_port"):
            await platform.scale("v3", 1)

    try:
        asyncio.run(scenario())
    finally:
        asyncio.run(platform.cleanup())
        asyncio.run(platform.close())


def test_remote_engine_over_tcp_with_mutual_tls(dockerd_tls, busybox_image) -> None:
    """The engine as a remote one: tcp:// with client certificates, as the docker SDK does it."""
    certs = dockerd_tls["certs"]
    service = _service()
    tls = {"ca_cert": str(certs / "ca.pem"), "client_cert": str(certs / "client.pem"),
           "client_key": str(certs / "client-key.pem")}
    platform = DockerPlatform(service, selector=f"app={service}", host=dockerd_tls["url"], tls=tls,
                              template=Template(image=busybox_image, command=("sleep", "60"),
                                                init=True, base_port=free_port()))
    stranger = DockerPlatform(service, host=dockerd_tls["url"],  # no client certificate
                              tls={"ca_cert": str(certs / "ca.pem")})

    async def scenario() -> None:
        await platform.scale("v1", 1)
        snap = await platform.snapshot(["v1"], 1.0)
        assert snap.error is None and snap.versions["v1"].ready == 1
        assert snap.versions["v1"].instances[0].address.startswith("127.0.0.1:")
        refused = await stranger.snapshot(["v1"], 1.0)
        assert re.fullmatch(  # the alert's wording depends on the OpenSSL/TLS version
            f"listing containers: TLS handshake with the Docker engine at {dockerd_tls['url']} "
            r"failed \([a-z0-9 ]+\): check \[platform\] tls ca_cert, client_cert and client_key",
            refused.error or ""), refused.error

    try:
        asyncio.run(scenario())
    finally:
        asyncio.run(platform.cleanup())
        asyncio.run(platform.close())
        asyncio.run(stranger.close())


def test_permission_denied_on_the_socket_is_named(dockerd) -> None:
    """A user outside the docker group gets one clear line, not a urllib3 traceback."""
    setpriv, python = shutil.which("setpriv"), "/usr/bin/python3"
    if os.geteuid() != 0 or setpriv is None or not os.access(python, os.X_OK):
        pytest.skip("needs root, setpriv and /usr/bin/python3 to try the socket as 'nobody'")
    paths = [str(ROOT), *(p for p in sys.path if p.endswith("site-packages"))]
    script = (
        f"import sys, asyncio; sys.path[:0] = {paths!r}\n"
        "from collectors.docker_platform import DockerPlatform\n"
        f"print(asyncio.run(DockerPlatform('x', host={dockerd!r}).snapshot(['v1'], 0)).error)\n")
    done = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", python,
                           "-c", script], capture_output=True, text=True, timeout=60, cwd="/")
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.strip() == (
        f"listing containers: permission denied on the Docker socket {dockerd} (join the "
        "'docker' group, or point [platform] host / DOCKER_HOST elsewhere)")


def test_docker_tool_scales_reports_and_cleans_up(dockerd, busybox_image, tmp_path: Path,
                                                  capsys) -> None:
    from collectors.docker_tool import main

    service = _service()
    spec = tmp_path / "release.toml"
    spec.write_text(f"""
[release]
service = "{service}"
baseline = "v1"
candidate = "v2"
[platform]
kind = "docker"
selector = "app={service}"
host = "{dockerd}"
image = "{busybox_image}"
command = ["sleep", "60"]
init = true
[router]
kind = "none"
[strategy]
kind = "canary"
steps = [50, 100]
""")
    assert main([str(spec), "scale", "v1", "2"]) == 0
    assert main([str(spec), "status"]) == 0
    out = capsys.readouterr().out
    assert f"v1: 2/2 ready {busybox_image}" in out and "v2: 0/0 ready" in out
    assert main([str(spec), "cleanup"]) == 0
    assert "removed 2 container(s)" in capsys.readouterr().out
    spec.write_text(spec.read_text().replace(f'host = "{dockerd}"', 'host = "unix:///nonexistent.sock"'))
    assert main([str(spec), "status"]) == 1
    assert capsys.readouterr().err.startswith("error: listing containers: Docker engine not found")


def test_containers_report_memory_cpu_and_image_digest(dockerd, docker_client, busybox_image) -> None:
    """Resources per version from the engine's stats API, on a real container."""
    service = _service()
    platform = _platform(dockerd, busybox_image, service)
    image_id = docker_client.images.get(busybox_image).id

    async def measured() -> Any:
        """Stats are read beside the snapshots: the first ones come a second or two later."""
        for _ in range(40):
            status = (await platform.snapshot(["v2"], 1.0)).versions["v2"]
            if status.instances and status.instances[0].memory is not None:
                return status
            await asyncio.sleep(0.25)
        raise AssertionError("no container stats within 10 s")

    async def scenario() -> None:
        await platform.scale("v2", 1)
        status = await measured()
        inst = status.instances[0]
        assert inst.memory > 0 and inst.cpu is not None and inst.cpu >= 0
        assert inst.digest == image_id and inst.digest.startswith("sha256:")
        assert status.digests == (image_id,)
        assert (status.cpu, status.memory) == (inst.cpu, inst.memory)

    try:
        asyncio.run(scenario())
    finally:
        asyncio.run(platform.cleanup())
        asyncio.run(platform.close())


def test_fleet_discovers_services_releasedeck_started(dockerd, busybox_image) -> None:
    """`fleet --discover docker=HOST`: one row per labelled service, what runs per version."""
    service = _service()
    platform = _platform(dockerd, busybox_image, service)

    async def scenario() -> list:
        await platform.scale("v1", 2)
        await platform.scale("v2", 1)
        return await discover_docker(dockerd)

    try:
        rows = [r for r in asyncio.run(scenario()) if r.release == service]
    finally:
        asyncio.run(platform.cleanup())
        asyncio.run(platform.close())
    assert len(rows) == 1
    assert rows[0].driver is Driver.DISCOVERED and rows[0].problem == "running v1×2, v2×1; no spec here"
