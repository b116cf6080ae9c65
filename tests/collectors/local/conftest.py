"""Fixtures for the local collectors: real processes on 127.0.0.1, always stopped."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.collectors.local.procs import python_env, wait_until
from tests.support.ports import free_port


@pytest.fixture
def demo_service() -> Iterator[str]:
    """One demo service process (v1, 2 ms latency); yields its base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "collectors.local.demo_service", "--service", "checkout",
         "--version", "v1", "--port", str(port), "--latency-ms", "2"],
        env=python_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200,
                   what="demo service /healthz")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _start_demo(version: str, latency_ms: float) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "collectors.local.demo_service", "--version", version,
         "--port", str(port), "--latency-ms", str(latency_ms)],
        env=python_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return proc, f"127.0.0.1:{port}"


@pytest.fixture(scope="module")
def backends() -> Iterator[dict[str, list[str]]]:
    """Demo services for router tests: v1 twice, v2 once, 5 ms latency; yields version -> addresses."""
    started = [("v1", *_start_demo("v1", 5)), ("v1", *_start_demo("v1", 5)), ("v2", *_start_demo("v2", 5))]
    try:
        table: dict[str, list[str]] = {}
        for version, _, address in started:
            wait_until(lambda a=address: httpx.get(f"http://{a}/healthz", timeout=0.5).status_code == 200,
                       what=f"demo {version} at {address}")
            table.setdefault(version, []).append(address)
        yield table
    finally:
        for _, proc, _ in started:
            proc.terminate()
        for _, proc, _ in started:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
