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
@pytest.mark.timeout(240)
def test_short_soak_has_no_wrong_outcome_no_repeated_action_and_no_growth():
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--minutes", "1.75",
         "--fault-every", "12", "--hold", "3s", "--json"],
        capture_output=True, text=True, timeout=230, check=False)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["wrong_outcomes"] == [], done.stderr[-2000:]
    assert report["repeated_actions"] == 0 and report["repeated_decisions"] == 0
    assert set(report["faults"]) == {"instance", "router", "prometheus", "driver"}
    assert report["resumes"] >= 1 and report["releases_promoted"] >= 1
    assert report["growth"]["processes"] <= 0, report["samples"]
    assert report["ok"] and done.returncode == 0
