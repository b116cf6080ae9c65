"""Which replica count a `scale` target is judged against (strategies/reconcile.py).

A controller's wanted count (a Deployment's `spec.replicas`) is what a replicas lever sets, so
it is compared when the platform reports one; its pods coming and going are the controller's
business. Docker keeps no wanted count and restores nothing someone stopped, so there the
containers it keeps alive are compared, and a killed one reads as missing.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from strategies.model import Instance, LeverTarget, PlatformSnapshot, VersionStatus
from strategies.reconcile import DriftTracker, observed_values

TARGET = LeverTarget(kind="scale", version="v2", value=2, at=0.0)


def _snapshot(*, desired: int | None, running: int | None, ready: int = 0) -> PlatformSnapshot:
    instances = tuple(Instance(f"v2-{i}", "v2", i < ready) for i in range(max(ready, running or 0)))
    return PlatformSnapshot(at=1.0, versions={
        "v2": VersionStatus("v2", instances, desired=desired, running=running)})


@given(desired=st.integers(0, 5), running=st.one_of(st.none(), st.integers(0, 5)))
def test_a_controllers_wanted_count_wins_over_what_runs(desired: int, running: int | None) -> None:
    seen = observed_values(_snapshot(desired=desired, running=running), "v1", "v2",
                           {TARGET.key: TARGET})
    assert seen == {TARGET.key: float(desired)}


@given(running=st.integers(0, 5))
def test_without_a_wanted_count_what_runs_is_judged(running: int) -> None:
    seen = observed_values(_snapshot(desired=None, running=running), "v1", "v2",
                           {TARGET.key: TARGET})
    assert seen == {TARGET.key: float(running)}


def test_a_platform_that_reports_neither_is_not_judged() -> None:
    assert observed_values(_snapshot(desired=None, running=None), "v1", "v2",
                           {TARGET.key: TARGET}) == {}


def test_a_killed_container_is_started_again_by_one_correction() -> None:
    tracker = DriftTracker("v2")
    killed = observed_values(_snapshot(desired=None, running=1, ready=1), "v1", "v2",
                             {TARGET.key: TARGET})
    drift, corrections = tracker.observe({TARGET.key: TARGET}, killed, (), 1.0, 1.0)
    assert corrections == [("scale", 2, "v2")]
    assert [d.what for d in drift] == ["replicas of v2"]
    back = observed_values(_snapshot(desired=None, running=2, ready=2), "v1", "v2",
                           {TARGET.key: TARGET})
    assert tracker.observe({TARGET.key: TARGET}, back, (), 2.0, 2.0)[1] == []
