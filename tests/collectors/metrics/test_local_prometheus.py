"""The Prometheus releasedeck starts itself (`demo --with-prometheus`, the soak) survives a port
taken between its pick and Prometheus's bind."""

from __future__ import annotations

import asyncio
import shutil
import socket

import httpx
import pytest

from collectors.prometheus_server import LocalPrometheus


@pytest.mark.prometheus
@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed (Debian package)")
def test_a_taken_port_is_replaced_by_a_new_one() -> None:
    async def scenario(taken: int) -> tuple[int, int]:
        prometheus = LocalPrometheus()
        prometheus.port, prometheus.url = taken, f"http://127.0.0.1:{taken}"  # someone took it
        await prometheus.start(ready_timeout=120)
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                ready = (await client.get(f"{prometheus.url}/-/ready")).status_code
            return prometheus.port, ready
        finally:
            await prometheus.stop()

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        port, ready = asyncio.run(scenario(taken))
    assert port != taken and ready == 200
