"""LocalPlatform runs real processes: scaling, readiness, faults, restarts, and no orphans."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from collectors.local.platform import LocalPlatform, LocalPlatformError
from strategies.ports import Platform
from strategies.spec import parse_spec
from tests.collectors.local.procs import (
    MARKER_ENV,
    children_of,
    pid_alive,
    processes_with,
    python_env,
    wait_until,
)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 40))


async def codes(address: str, count: int) -> list[int]:
    async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
        return [(await client.get(f"http://{address}/")).status_code for _ in range(count)]


def test_scales_up_and_down_and_reports_readiness() -> None:
    async def scenario() -> None:
        platform = LocalPlatform("checkout", behaviour={"v2": {"ready_delay_ms": 600}})
        assert isinstance(platform, Platform)
        try:
            await platform.scale("v1", 2)
            await platform.scale("v2", 1)
            early = await platform.snapshot(["v1", "v2"], now=1.0)
            assert early.version("v2").total == 1 and early.version("v2").ready == 0
            assert early.version("v2").instances[0].state == "starting"
            await platform.wait_ready(timeout=60)
            snap = await platform.snapshot(["v1", "v2"], now=2.0)
            assert snap.at == 2.0
            assert (snap.version("v1").ready, snap.version("v1").desired) == (2, 2)
            assert (snap.version("v2").ready, snap.version("v2").desired) == (1, 1)
            one = snap.version("v1").instances[0]
            assert one.id == "checkout-v1-1" and one.state == "running" and one.restarts == 0
            assert one.address.startswith("127.0.0.1:") and one.metrics_url == f"http://{one.address}/metrics"
            assert "http_requests_total" in httpx.get(one.metrics_url, timeout=5).text
            pids = platform.pids()
            assert len(pids) == 3 and set(pids) <= set(children_of(os.getpid()))

            await platform.scale("v1", 1)  # the newest goes
            await platform.scale("v1", 1)  # a target, not a delta: nothing happens
            snap = await platform.snapshot(["v1", "v2"], now=3.0)
            assert [i.id for i in snap.version("v1").instances] == ["checkout-v1-1"]
            gone = set(pids) - set(platform.pids())
            assert len(gone) == 1 and not any(pid_alive(p) for p in gone)
            await platform.scale("v2", 0)
            assert (await platform.snapshot(["v2"], now=4.0)).version("v2").total == 0
        finally:
            await platform.close()
        assert not any(pid_alive(p) for p in pids)
        assert not set(pids) & set(children_of(os.getpid()))
        await platform.close()  # twice is fine

    run(scenario())


def test_inject_fault_reaches_running_and_later_instances() -> None:
    async def scenario() -> None:
        platform = LocalPlatform("checkout", behaviour={"v2": {"latency_ms": 1}})
        try:
            await platform.scale("v2", 1)
            await platform.wait_ready(timeout=60)
            first = platform.addresses("v2")[0]
            assert await codes(first, 3) == [200] * 3
            assert await platform.inject_fault("v2", error_ratio=1.0) == 1
            assert await codes(first, 3) == [500] * 3
            await platform.scale("v2", 2)
            await platform.wait_ready(timeout=60)
            later = next(a for a in platform.addresses("v2") if a != first)
            assert await codes(later, 3) == [500] * 3
            assert platform.behaviour("v2")["error_ratio"] == 1.0
            with pytest.raises(LocalPlatformError, match="between 0 and 1"):
                await platform.inject_fault("v2", error_ratio=3)
            with pytest.raises(LocalPlatformError, match="needs error_ratio"):
                await platform.inject_fault("v2")
        finally:
            await platform.close()

    run(scenario())


def test_crashed_instance_is_restarted_and_counted() -> None:
    async def scenario() -> None:
        platform = LocalPlatform("checkout")
        try:
            await platform.scale("v1", 1)
            await platform.wait_ready(timeout=60)
            victim = platform.pids()[0]
            os.kill(victim, signal.SIGKILL)
            deadline = time.monotonic() + 15
            while True:
                snap = await platform.snapshot(["v1"], now=time.time())
                inst = snap.version("v1").instances[0]
                if inst.restarts == 1 and inst.ready:
                    break
                assert time.monotonic() < deadline, f"not restarted: {inst}"
                await asyncio.sleep(0.1)
            assert platform.pids() != [victim]
        finally:
            await platform.close()

    run(scenario())


def test_custom_command_with_placeholders_and_bad_commands() -> None:
    spec = parse_spec({
        "release": {"service": "web", "baseline": "a", "candidate": "b"},
        "platform": {"kind": "local", "replicas": 1, "ready_timeout": "10s",
                     "command": [sys.executable, "-m", "http.server", "{port}", "--bind", "{host}"]},
        "strategy": {"kind": "canary", "steps": [50]},
    })

    async def scenario() -> None:
        platform = LocalPlatform.from_spec(spec)
        try:
            await platform.scale("a", 1)
            await platform.wait_ready()
            snap = await platform.snapshot(["a", "b"], now=1.0)
            assert snap.version("a").ready == 1 and snap.version("a").image.startswith("python")
            assert snap.version("b").total == 0
        finally:
            await platform.close()
        broken = LocalPlatform("web", command=["/nonexistent/releasedeck-test-binary", "{port}"])
        try:
            with pytest.raises(LocalPlatformError, match="cannot start a instance"):
                await broken.scale("a", 1)
        finally:
            await broken.close()
        exits = LocalPlatform("web", command=[sys.executable, "-c", "import sys; sys.exit('boom {port}')"])
        try:
            await exits.scale("a", 1)
            # exited, or already restarting after its backoff: either way the log line says why
            with pytest.raises(LocalPlatformError, match=r"not ready after 2s: web-a-1 \((exited\(1\)|starting): boom"):
                await exits.wait_ready(timeout=2)
        finally:
            await exits.close()

    run(scenario())
    with pytest.raises(LocalPlatformError, match="bad placeholder"):
        LocalPlatform("web", command=["x", "{nope}"])


PARENT = """
import asyncio, json, sys, time
from collectors.local.platform import LocalPlatform
from collectors.local.router import LocalRouter

async def main():
    platform = LocalPlatform("checkout")
    await platform.scale("v1", 2)
    await platform.wait_ready(timeout=60)
    router = await LocalRouter().start()
    print(json.dumps([*platform.pids(), router.pid]), flush=True)
    await asyncio.sleep(60)  # until the test kills us

asyncio.run(main())
"""


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_no_orphans_when_the_parent_dies(how: signal.Signals) -> None:
    marker = f"releasedeck-orphan-test-{uuid.uuid4().hex[:8]}"
    parent = subprocess.Popen([sys.executable, "-c", PARENT], env={**python_env(), MARKER_ENV: marker},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = parent.stdout.readline() if parent.stdout else ""
        assert line, f"parent failed: {parent.stderr.read() if parent.stderr else ''}"
        pids = json.loads(line)
        assert len(pids) == 3 and all(pid_alive(p) for p in pids)  # two instances and the router
        assert set(pids) == set(children_of(parent.pid))
        assert set(processes_with(marker)) == {parent.pid, *pids}
        parent.send_signal(how)
        parent.wait(timeout=10)
        wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=60,
                   what=f"children of the {how.name}-ed parent to exit")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=5)
    assert processes_with(marker) == []
