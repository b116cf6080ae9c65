"""Fixtures: a real local HTTP receiver (ok / failing / slow), a dead port (both shared from
tests.support.receiver), a real Alertmanager."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.ports import PortTaken, retry_on_taken_port
from tests.support.receiver import Received, Receiver, dead_url, free_port, receiver  # noqa: F401

AM_CONFIG = """\
route:
  receiver: "null"
  group_wait: 1h
receivers:
  - name: "null"
"""


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """A real Alertmanager on 127.0.0.1 with temp storage, clustering off."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.skip("prometheus-alertmanager binary not installed (Debian prometheus-alertmanager)")
    config = tmp_path / "alertmanager.yml"
    config.write_text(AM_CONFIG)
    (tmp_path / "data").mkdir()
    log_path = tmp_path / "alertmanager.log"

    def launch() -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [binary, f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
                 f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
                 "--log.level=warn"], stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60  # returns as soon as it is ready
        while True:
            if proc.poll() is not None:
                text = log_path.read_text(errors="replace")
                if "address already in use" in text:
                    raise PortTaken(f"alertmanager could not bind {port}")
                raise RuntimeError(f"alertmanager exited: {text}")
            try:
                if httpx.get(f"{url}/-/ready", timeout=1.0, trust_env=False).status_code == 200:
                    return proc, url
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait(5)
                raise RuntimeError("alertmanager did not become ready in 60s")
            time.sleep(0.05)

    proc, url = retry_on_taken_port(launch)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def am_alerts(url: str, **filters: str) -> list[dict[str, Any]]:
    """Active alerts as Alertmanager reports them (resolved ones are not listed)."""
    response = httpx.get(f"{url}/api/v2/alerts", params=filters, timeout=5.0, trust_env=False)
    response.raise_for_status()
    return response.json()


def poll(check: Any, timeout: float = 60.0) -> Any:
    """Call `check` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"condition not met in {timeout}s (last: {last!r})")
