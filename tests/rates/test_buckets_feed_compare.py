"""Window bucket increases reach MetricSample, so a Mann-Whitney latency gate can decide."""

from __future__ import annotations

from strategies.gates import judge
from strategies.model import GateStatus
from strategies.ports import RawCounters
from strategies.rates import sample_from_counters
from strategies.spec import GateSpec

BOUNDS = ("0.01", "0.05", "0.1", "0.5", "+Inf")
GATE = GateSpec(name="p99-vs-base", metric="latency_p99", compare="mannwhitney", min_requests=20)


def series(version: str, per_second: dict[str, float], seconds: int = 11) -> list[RawCounters]:
    """Cumulative counters scraped once a second; `per_second` spreads requests over buckets."""
    out, cumulative = [], dict.fromkeys(BOUNDS, 0.0)
    for t in range(seconds):
        running = 0.0
        for bound in BOUNDS:
            running += per_second.get(bound, 0.0)
            cumulative[bound] += running if t else 0.0
        out.append(RawCounters(version=version, at=float(t), requests_total=cumulative["+Inf"],
                               errors_total=0.0, latency_buckets=dict(cumulative)))
    return out


FAST = {"0.01": 10.0, "0.05": 8.0, "0.1": 2.0}
SLOW = {"0.05": 4.0, "0.1": 6.0, "0.5": 10.0}


def verdict(candidate: dict[str, float], baseline: dict[str, float]):
    cand = sample_from_counters("v2", series("v2", candidate), 10.0, 10.0)
    base = sample_from_counters("v1", series("v1", baseline), 10.0, 10.0)
    return cand, judge(GATE, cand, base, stale=False, baseline_expected=True)


def test_sample_carries_the_window_histogram_by_le_label() -> None:
    cand, _ = verdict(FAST, FAST)
    assert set(cand.latency_buckets) == set(BOUNDS)
    assert cand.latency_buckets["+Inf"] == cand.requests == 200.0
    assert cand.latency_buckets["0.01"] == 100.0


def test_a_slower_candidate_fails_the_histogram_comparison() -> None:
    _, result = verdict(SLOW, FAST)
    assert result.status is GateStatus.FAIL and result.comparison == "mannwhitney"


def test_the_same_distribution_passes() -> None:
    _, result = verdict(FAST, FAST)
    assert result.status is GateStatus.PASS
