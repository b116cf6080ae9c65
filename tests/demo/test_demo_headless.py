"""`releasedeck demo --headless` end to end: real processes, real router, real load.

Each test runs the CLI as a subprocess, as a pipeline would, and reads its JSON lines.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
FAST = str(HERE / "fast_release.toml")


def demo(*args: str, timeout: float = 120) -> tuple[int, list[dict], str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "tui.cli", "demo", "--headless", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    events = []
    for line in proc.stdout.splitlines():
        event = json.loads(line)  # every stdout line is one JSON object
        events.append(event)
    return proc.returncode, events, proc.stderr


def fault_spec(tmp_path: Path) -> str:
    """The fast spec whose steps hold until a gate decides: a fault injected at N seconds must be
    seen by the gates before the rollout could walk on (with 3 s holds a loaded machine's slow
    ticks could reach 100 % first and promote a broken candidate: a flake, not a finding)."""
    text = Path(FAST).read_text()
    assert 'hold = "3s"' in text
    path = tmp_path / "fault_release.toml"
    path.write_text(text.replace('hold = "3s"', 'hold = "1h"'))
    return str(path)


def names(events: list[dict]) -> list[str]:
    return [e["event"] for e in events]


def test_healthy_demo_promotes_and_exits_0() -> None:
    code, events, err = demo("--spec", FAST, "--timeout", "90")
    assert code == 0, err
    seen = names(events)
    assert seen.index("started") < seen.index("promoting") < seen.index("promoted")
    assert "rolling_back" not in seen
    for event in events:
        assert {"ts", "release", "event"} <= event.keys()
        assert event["ts"].endswith("Z") and event["release"] == "checkout"
    steps = [e["weight"] for e in events if e["event"] in ("started", "step", "promoting")]
    assert steps == [20, 50, 100, 100]


def test_fault_rolls_back_by_itself_with_evidence(tmp_path: Path) -> None:
    code, events, err = demo("--spec", fault_spec(tmp_path), "--fault-at", "4", "--timeout", "90")
    assert code == 1, err
    seen = names(events)
    assert "promoted" not in seen
    assert seen.index("fault_injected") < seen.index("rolling_back") < seen.index("rolled_back")
    rolled = next(e for e in events if e["event"] == "rolled_back")
    assert rolled["gate"] in ("error-rate", "latency-p99")
    assert rolled["value"] > rolled["threshold"]
    assert rolled["weight"] == 0


@pytest.mark.prometheus
@pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus binary")
def test_fault_rolls_back_through_a_real_prometheus(tmp_path: Path) -> None:
    code, events, err = demo("--spec", fault_spec(tmp_path), "--with-prometheus", "--fault-at", "6",
                             "--timeout", "90")
    assert code == 1, err
    seen = names(events)
    assert seen.index("fault_injected") < seen.index("rolled_back")


@pytest.mark.prometheus
@pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus binary")
def test_fault_rolls_back_through_your_own_prometheus(tmp_path: Path) -> None:
    """--prometheus URL: a Prometheus we did not start finds the demo through --targets-file."""
    from tests.support.prometheus import PrometheusServer

    targets = tmp_path / "targets.json"
    server = PrometheusServer(tmp_path / "prom")
    url = server.start(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: demo\n"
        f"    file_sd_configs: [{{files: ['{targets}'], refresh_interval: 1s}}]\n")
    try:
        code, events, err = demo("--spec", fault_spec(tmp_path), "--prometheus", url, "--targets-file",
                                 str(targets), "--fault-at", "6", "--timeout", "90")
    finally:
        server.stop()
    assert code == 1, err
    assert "file_sd_configs" in err
    seen = names(events)
    assert seen.index("fault_injected") < seen.index("rolled_back")


def test_second_demo_on_one_prometheus_targets_file_is_refused(tmp_path: Path) -> None:
    """Two `demo --prometheus` runs on one targets file would mix their metrics under one
    service name: the second is refused with one line and exit 4, naming the first, before it
    starts anything (the first here is a lease this test holds, as a running demo does)."""
    import asyncio
    import time

    from collectors.lease import Holder
    from collectors.lease.file_lease import FileLease, lock_path_for

    targets = tmp_path / "targets.json"
    lease = FileLease(lock_path_for(targets), "checkout")
    asyncio.run(lease.acquire(Holder.me("checkout", time.time())))
    try:
        code, events, err = demo("--prometheus", "http://127.0.0.1:1",
                                 "--targets-file", str(targets), timeout=60)
    finally:
        asyncio.run(lease.release())
    assert code == 4, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "already driven by" in lines[0], err
    assert str(lock_path_for(targets)) in lines[0]
    assert events == [] and not targets.exists()
