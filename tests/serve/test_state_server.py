"""The driver's state server over real HTTP: typed State, the event stream, the token, read-only
routes; and a real Prometheus scraping /metrics, read back with PromQL."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from strategies.model import Phase
from strategies.state_json import state_from_json
from tests.serve.support import ServedDriver, quick_spec
from tests.support.prometheus import prometheus_server  # noqa: F401  (fixture)
from tui import exitcodes

ROOT = Path(__file__).resolve().parents[2]


def test_state_is_the_drivers_state_typed() -> None:
    with ServedDriver(ticking=False) as served:
        for _ in range(3):
            published = served.tick()
        reply = httpx.get(f"{served.url}/state", timeout=10)
        assert reply.status_code == 200
        state = state_from_json(reply.content)
        assert state.rollout == published.rollout
        assert state.versions == published.versions and state.gates == published.gates


def test_every_route_is_read_only() -> None:
    with ServedDriver(quick_spec(hold="1h"), ticking=False) as served:
        served.tick()
        before = served.driver.state.rollout
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            for path in ("/state", "/events", "/metrics", "/", "/command", "/promote"):
                reply = httpx.request(method, f"{served.url}{path}", timeout=10, content=b'{"kind":"abort"}')
                assert reply.status_code in (404, 405), (method, path, reply.status_code)
        served.tick()
        assert served.driver.state.rollout.phase is before.phase is Phase.PROGRESSING
        assert served.router.history == [{"v1": 80, "v2": 20}]  # only the driver's own first step


def test_token_is_required_and_nothing_leaks() -> None:
    with ServedDriver(ticking=False, token="s3cret-token") as served:
        served.tick()
        for path in ("/state", "/events", "/metrics", "/", "/healthz"):
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
                reply = httpx.get(f"{served.url}{path}", headers=headers, timeout=10)
                assert reply.status_code == 401, (path, headers)
                assert "checkout" not in reply.text and "v2" not in reply.text
        good = httpx.get(f"{served.url}/state", headers={"Authorization": "Bearer s3cret-token"}, timeout=10)
        assert good.status_code == 200 and state_from_json(good.content).release == "checkout"
        assert httpx.get(f"{served.url}/metrics?token=s3cret-token", timeout=10).status_code == 200


@pytest.mark.parametrize("address", ["0.0.0.0:0", "[::]:0", "192.0.2.7:9000"])
def test_off_loopback_without_token_file_is_refused_before_anything_starts(tmp_path: Path, address: str) -> None:
    spec = tmp_path / "release.toml"
    spec.write_text((ROOT / "tests/demo/fast_release.toml").read_text())
    done = subprocess.run([sys.executable, "-m", "tui.cli", "watch", str(spec), "--headless", "--serve", address],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == exitcodes.USAGE
    assert done.stderr.strip().splitlines() == [
        f"releasedeck: --serve {address}: a non-loopback address needs --token-file "
        "(anyone who can reach it could read the release)"]
    assert not list(tmp_path.glob(".*journal*"))  # nothing was started or written


@pytest.mark.prometheus
def test_prometheus_scrapes_weight_and_gate_status(prometheus_server) -> None:  # noqa: F811
    with ServedDriver() as served:
        target = served.url.removeprefix("http://")
        prometheus_server.start({"global": {"scrape_interval": "1s"},
                                 "scrape_configs": [{"job_name": "releasedeck",
                                                     "static_configs": [{"targets": [target]}]}]})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            weights = prometheus_server.vector('releasedeck_weight_desired_percent{release="checkout"}',
                                               time.time(), "version")
            status = prometheus_server.vector('releasedeck_gate_status{gate="errors"} == 1', time.time(),
                                              "status")
            state = served.driver.state
            if weights.get("v2", 0) >= 50 and status == {"pass": 1.0}:
                break
            time.sleep(0.5)
        assert weights.get("v2", 0) >= 50 and status == {"pass": 1.0}, (weights, status)
        assert weights["v1"] + weights["v2"] == 100
        assert state.rollout.weight >= weights["v2"]  # Prometheus trails the driver, never leads it
        phase = prometheus_server.vector("releasedeck_phase == 1", time.time(), "phase")
        assert set(phase) <= {"progressing", "promoting", "succeeded"} and len(phase) == 1
        step = prometheus_server.scalar('releasedeck_step{release="checkout"}', time.time())
        assert step is not None and step >= 2
        ticks = prometheus_server.scalar('releasedeck_tick_duration_seconds_count{release="checkout"}', time.time())
        assert ticks is not None and ticks > 0
        assert prometheus_server.scalar('releasedeck_decisions_total{kind="step"}', time.time()) >= 1


@pytest.mark.parametrize(("web", "line"), [
    ("127.0.0.1:0", "releasedeck: --web needs a fixed port (a TV's browser must find it), e.g. 127.0.0.1:8080"),
    ("127.0.0.1:http", "releasedeck: --web '127.0.0.1:http': expected HOST:PORT (port 0-65535)"),
])
def test_web_address_problems_are_one_line(capsys, web: str, line: str) -> None:
    from tui.cli import main

    assert main(["attach", "http://127.0.0.1:9", "--web", web]) == exitcodes.USAGE
    assert capsys.readouterr().err.strip().splitlines() == [line]
