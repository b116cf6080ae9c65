"""`releasedeck watch SPEC --headless` as a pipeline runs it: a subprocess over the real local
stack (processes, router, load, scrape source), alerts to a real Alertmanager."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.headless.conftest import am_alerts

ROOT = Path(__file__).resolve().parents[2]

SPEC = """
[release]
service = "checkout"
baseline = "v1"
candidate = "v2"

[platform]
kind = "local"
replicas = 1
behaviour = {{ v1 = {{ latency_ms = 2 }}, v2 = {{ latency_ms = 2, error_ratio = {ratio} }} }}

[metrics]
interval = "250ms"
window = "2s"
stale_after = "3s"

[strategy]
kind = "canary"
steps = [50, 100]
hold = "1500ms"
scale_down_delay = "0s"

[[gate]]
name = "errors"
metric = "error_rate"
max = 0.05
min_requests = 10
severity = "critical"

[[alert]]
kind = "alertmanager"
url = "{am}"
min_severity = "critical"
"""


def watch(tmp_path: Path, ratio: float, am: str) -> tuple[int, list[str], str]:
    spec = tmp_path / "release.toml"
    spec.write_text(SPEC.format(ratio=ratio, am=am))
    proc = subprocess.run(
        [sys.executable, "-m", "tui.cli", "watch", str(spec), "--headless", "--timeout", "60"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
        text=True, timeout=120, check=False)
    events = [json.loads(line)["event"] for line in proc.stdout.splitlines()]
    return proc.returncode, events, proc.stderr


@pytest.mark.alertmanager
def test_watch_headless_faulty_candidate_exits_1_and_alertmanager_has_it(tmp_path, alertmanager):
    code, events, err = watch(tmp_path, 0.5, alertmanager)
    assert code == 1, err
    assert "rolling_back" in events and "promoted" not in events
    assert "gate errors" in err and "0 undelivered" in err
    [alert] = am_alerts(alertmanager, filter='alertname="ReleaseRolledBack"')
    assert (alert["labels"]["severity"], alert["labels"]["version"]) == ("critical", "v2")
    assert (tmp_path / ".release.releasedeck.journal").exists()


@pytest.mark.alertmanager
def test_watch_headless_healthy_candidate_exits_0(tmp_path, alertmanager):
    code, events, err = watch(tmp_path, 0.0, alertmanager)
    assert code == 0, err
    assert events.index("started") < events.index("promoted")
    assert am_alerts(alertmanager) == []  # nothing critical happened
