"""One driver per release, with real `watch` processes over the real local stack.

The second driver refuses (exit 4) naming the holder and the attach command, and starts nothing;
after the first is killed with SIGKILL, a new one takes the lease and resumes from the journal
without taking any journaled action twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from collectors.lease import Holder
from tui import exitcodes

ROOT = Path(__file__).resolve().parents[2]

SPEC = """
[release]
service = "checkout"
baseline = "v1"
candidate = "v2"

[platform]
kind = "local"
replicas = 1
behaviour = { v1 = { latency_ms = 2 }, v2 = { latency_ms = 2 } }

[metrics]
interval = "250ms"
window = "2s"
stale_after = "3s"

[strategy]
kind = "canary"
steps = [20, 50, 100]
hold = "HOLD"
scale_down_delay = "0s"

[[gate]]
name = "errors"
metric = "error_rate"
max = 0.05
min_requests = 10
severity = "critical"
"""


def release(tmp_path: Path, hold: str) -> Path:
    spec = tmp_path / "release.toml"
    spec.write_text(SPEC.replace("HOLD", hold))
    return spec


def watch(spec: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "watch", str(spec), "--headless", *extra],
        cwd=spec.parent, env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def journal(spec: Path) -> list[dict]:
    path = spec.parent / ".release.releasedeck.journal"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for(what, timeout: float = 60.0, pause: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(pause)
    raise AssertionError(f"not within {timeout}s: {what.__doc__ or what}")


def lock_holder(spec: Path) -> Holder | None:
    """the lock file names a holder with an attach address"""
    path = spec.parent / ".release.releasedeck.journal.lock"
    holder = Holder.from_json(path.read_text()) if path.exists() else None
    return holder if holder is not None and holder.attach else None


def test_second_driver_refuses_then_resumes_after_kill_9(tmp_path: Path) -> None:
    spec = release(tmp_path, "30s")  # the first driver is still mid-rollout when it is killed
    first = watch(spec, "--timeout", "120")
    try:
        holder = wait_for(lambda: lock_holder(spec))
        assert holder.pid == first.pid
        # the first step's weight is set and confirmed: an action the journal shows as done
        wait_for(lambda: any(r["kind"] == "action_done" for r in journal(spec)))

        second = watch(spec, "--timeout", "30")
        out, err = second.communicate(timeout=60)
        assert second.returncode == exitcodes.LEASE_HELD, err
        [line] = err.strip().splitlines()
        assert f"{holder.user}@{holder.host}/{first.pid}" in line
        assert f"attach with: releasedeck attach {holder.attach}" in line
        assert out == ""  # it started nothing and printed no event
        assert {r["run"] for r in journal(spec)} == {journal(spec)[0]["run"]}

        # watch --read-only while someone drives: it follows (the driver's state lines), acts never
        reader = subprocess.run(
            [sys.executable, "-m", "tui.cli", "watch", str(spec), "--read-only", "--headless", "--timeout", "3"],
            cwd=spec.parent, env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True, capture_output=True,
            timeout=60, check=False)
        followed = [json.loads(line) for line in reader.stdout.splitlines()]
        assert followed and followed[0]["event"] == "state" and followed[0]["phase"] == "progressing", reader.stderr
        assert reader.returncode == exitcodes.ROLLED_BACK  # stopped following before the release ended
        assert "stopped following before the release ended" in reader.stderr

        before = journal(spec)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()

    third = watch(spec, "--timeout", "8")
    try:
        # the kernel dropped the killed driver's lock: the new driver holds it and says so
        wait_for(lambda: (lock_holder(spec) or first).pid == third.pid)
    finally:
        out, err = third.communicate(timeout=60)
    assert third.returncode in (exitcodes.PROMOTED, exitcodes.ROLLED_BACK), err  # it drove
    records = journal(spec)
    assert records[: len(before)] == before  # the journal was continued, not rewritten
    assert {r["run"] for r in records} == {before[0]["run"]}  # the same run, resumed
    done = Counter(r["evidence"][0]["action"] for r in records if r["kind"] == "action_done")
    assert done and max(done.values()) == 1, done  # no action taken twice
    decided = [a["id"] for r in records for a in r.get("actions", [])]
    assert len(decided) == len(set(decided))  # and none decided twice
    events = [json.loads(line)["event"] for line in out.splitlines()]
    assert "started" not in events  # resumed, not started again
    assert (spec.parent / ".release.releasedeck.journal.lock").read_text() == ""  # released
