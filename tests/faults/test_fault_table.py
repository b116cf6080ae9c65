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
    steps = [(r["kind"], r["weight"]) for r in records if r["kind"] in ("started", "step")]
    assert steps == [("started", 20), ("step", 50), ("step", 100)]
    weights = [a[1] for a in decision_actions(records) if a[0] == "set_weight"]
    assert weights == [20, 50, 100, 100]  # the last: promoting confirms 100 %
    done = [e["action"] for r in records if r["kind"] == "action_done" for e in r["evidence"]]
    assert len(done) == len(set(done))
    assert [e["event"] for e in events].count("reconcile") == len(fixes)


# ---------------------------------------------------------------- 2. a spec edited between runs


def test_2_a_changed_plan_stops_with_one_line_then_adopt_spec_continues(release):
    first = release.start()
    wait_for("step 2 (50%) applied", lambda: confirmed(release, "set_weight", 50), proc=first)
    kill(first)
    wait_for("the router to die with releasedeck", lambda: port_closed(release.port))
    before = release.records()
    release.write(strategy='steps = [30, 100]\nhold = "2s"')

    code, events, err = release.run("--timeout", "30")

    assert code == exitcodes.USAGE and events == []
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "the plan changed since this release started (steps 20% 50% 100% → 30% 100%)" \
        in lines[0] and "--fresh" in lines[0] and "--adopt-spec" in lines[0]
    assert release.records() == before  # nothing decided, nothing journaled

    code, events, err = release.run("--timeout", "60", "--adopt-spec")

    assert code == exitcodes.PROMOTED, err
    kinds = [r["kind"] for r in release.records() if r["kind"] != "gate"]
    assert kinds.count("started") == 1 and kinds.count("adopted") == 1
    adopted = next(r for r in release.records() if r["kind"] == "adopted")
    assert (adopted["step"], adopted["weight"]) == (0, 30)
    promoting = next(r for r in release.records() if r["kind"] == "promoting")
    assert promoting["at"] - adopted["at"] >= 2.0  # the adopted step's hold, from scratch
    assert [e["event"] for e in events].index("adopted") < \
        [e["event"] for e in events].index("promoted")


# ---------------------------------------------------------------- 3. holds count observed time


def test_3_a_resume_restarts_the_step_hold_instead_of_counting_the_downtime(release):
    release.write(strategy='steps = [20, 50, 100]\nhold = "4s"')
    first = release.start()
    wait_for("step 1 (20%) applied", lambda: confirmed(release, "set_weight", 20), proc=first)
    kill(first)
    wait_for("the router to die with releasedeck", lambda: port_closed(release.port))
    entered = next(r for r in release.records() if r["kind"] == "started")
    journaled = len(release.records())

    code, _, err = release.run("--timeout", "60")

    assert code == exitcodes.PROMOTED, err
    resumed = release.records()[journaled:]
    first_seen = resumed[0]["at"]  # the resumed process's first record (its reconcile)
    step2 = next(r for r in resumed if r["kind"] == "step")
    assert step2["step"] == 1
    # The whole 4 s hold was observed by the resumed process, after the weight was restored;
    # the time the step spent with nobody watching (before and during the restart) is not in it.
    assert step2["at"] - first_seen >= 4.0
    assert first_seen - entered["at"] > 0  # there was downtime to (not) count
