"""The fault table (issue 12): one test per fault an operator injected by hand, each asserting
the exact outcome — exit code, journal lines, router weights read back, processes alive.

Every test runs `releasedeck watch SPEC --headless` as a real subprocess over the real local
stack (demo service processes, the built-in router on a known port, a load generator)."""

from __future__ import annotations

import signal

import pytest

from tests.faults.support import (
    Release,
    confirmed,
    decision_actions,
    free_port,
    kill,
    port_closed,
    wait_for,
)
from tui import exitcodes


@pytest.fixture
def release(tmp_path):
    return Release(tmp_path, free_port()).write()


# ---------------------------------------------------------------- 1. a resumed release moves


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_1_resumed_canary_restores_the_weight_and_promotes(release, sig):
    first = release.start()
    wait_for("step 1 (20%) applied", lambda: confirmed(release, "set_weight", 20), proc=first)
    assert release.weights()["weights"]["v2"] == 20
    kill(first, sig)
    wait_for("the router to die with releasedeck", lambda: port_closed(release.port))

    code, events, err = release.run("--timeout", "60")

    assert code == exitcodes.PROMOTED, err
    records = release.records()
    kinds = [r["kind"] for r in records if r["kind"] != "gate"]
    assert kinds.count("started") == 1 and kinds.count("promoted") == 1
    # The restarted router came back at v2 0 %: the first tick found the drift and re-applied
    # the journal's weight, as a reconcile record (not a decision) carrying the drift it saw.
    fixes = [r for r in records if r["kind"] == "reconcile"]
    assert fixes, kinds
    drift = fixes[0]["evidence"][0]
    assert (drift["lever"], drift["desired"], drift["observed"]) == ("set_weight:", 20, 0.0)
    assert [(a["kind"], a["value"]) for a in fixes[0]["actions"]] == [("set_weight", 20)]
    assert kinds.index("reconcile") < kinds.index("step")
    # Each decision was journaled once (the resume did not decide step 1 again) and no
    # action id was confirmed twice.
    weights = [a[1] for a in decision_actions(records) if a[0] == "set_weight"]
    assert weights == [20, 50, 100]
    done = [e["action"] for r in records if r["kind"] == "action_done" for e in r["evidence"]]
    assert len(done) == len(set(done))
    assert [e["event"] for e in events].count("reconcile") == len(fixes)
