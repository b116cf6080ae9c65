"""The soak in short (the 30-minute one is `benchmarks/soak.py`, figures in the README): back
to back healthy releases on the real local stack, with every kind of fault at least once —
instance kill, router kill, a Prometheus outage, kill -9 of releasedeck and a resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.prometheus
@pytest.mark.timeout(600)
def test_short_soak_has_no_wrong_outcome_no_repeated_action_and_no_growth():
    """Every fault once, then the release running after the last one must promote. Bounded by
    counts, not a wall-clock window: a loaded machine only makes it take longer (the soak's own
    cap is 8 minutes); processes and fds are compared where nothing is in flight (before the
    first release and after each one), so traffic and restarts in progress are not "growth"."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--each-fault-once",
         "--minutes", "8", "--fault-every", "12", "--hold", "3s", "--json"],
        capture_output=True, text=True, timeout=570, check=False)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["finished"], done.stderr[-2000:]
    assert report["wrong_outcomes"] == [], done.stderr[-2000:]
    assert report["repeated_actions"] == 0 and report["repeated_decisions"] == 0
    assert report["faults"] == {"instance": 1, "router": 1, "prometheus": 1, "driver": 1}
    assert report["resumes"] == 1 and report["releases_promoted"] >= 1
    assert report["growth"]["processes"] <= 0, report["samples"]
    assert report["ok"] and done.returncode == 0, report
