"""Statistical comparisons of candidate against baseline: error proportions and latency histograms."""

from __future__ import annotations

import math
from dataclasses import replace
from itertools import accumulate

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.gates import SMALL_EFFECT, judge, mann_whitney
from strategies.model import GateStatus
from strategies.spec import GateSpec
from tests.strategies.brain_kit import T0, sample

BOUNDS = ("0.025", "0.05", "0.1", "0.25", "+Inf")


def buckets(counts: list[float], bounds: tuple[str, ...] = BOUNDS) -> dict[str, float]:
    """Per-bucket counts -> Prometheus cumulative buckets."""
    return dict(zip(bounds, accumulate(counts), strict=True))


def by_ranks(ca: list[int], cb: list[int]) -> tuple[float, float]:
    """Textbook Mann-Whitney on the expanded samples: average ranks, tie-corrected variance."""
    values = [(i, "a") for i, c in enumerate(ca) for _ in range(c)] + \
             [(i, "b") for i, c in enumerate(cb) for _ in range(c)]
    values.sort(key=lambda v: v[0])
    ranks: dict[int, float] = {}
    position = 1
    for i in range(len(ca)):
        size = ca[i] + cb[i]
        if size:
            ranks[i] = position + (size - 1) / 2
        position += size
    na, nb = sum(ca), sum(cb)
    u = sum(ranks[i] for i, who in values if who == "a") - na * (na + 1) / 2
    n = na + nb
    ties = sum((x + y) ** 3 - (x + y) for x, y in zip(ca, cb, strict=True))
    var = na * nb / 12 * ((n + 1) - ties / (n * (n - 1)))
    p = 0.5 * math.erfc((u - na * nb / 2) / math.sqrt(var) / math.sqrt(2)) if var > 0 else math.nan
    return u, p


@settings(max_examples=200, deadline=None)
@given(ca=st.lists(st.integers(0, 8), min_size=5, max_size=5),
       cb=st.lists(st.integers(0, 8), min_size=5, max_size=5))
def test_binned_u_matches_the_rank_formula(ca: list[int], cb: list[int]) -> None:
    found = mann_whitney(buckets(ca), buckets(cb))
    if sum(ca) == 0 or sum(cb) == 0:
        assert found is None
        return
    assert found is not None
    p, effect, na, nb = found
    u, p_ranks = by_ranks(ca, cb)
    assert (na, nb) == (sum(ca), sum(cb))
    assert effect == pytest.approx(u / (na * nb))
    if not math.isnan(p_ranks):
        assert p == pytest.approx(p_ranks, abs=1e-9)
    assert 0.0 <= p <= 1.0


def test_identical_histograms_are_no_difference() -> None:
    p, effect, _, _ = mann_whitney(buckets([100, 300, 400, 150, 50]), buckets([100, 300, 400, 150, 50]))
    assert effect == pytest.approx(0.5) and p == pytest.approx(0.5)


def test_shifted_histogram_is_slower() -> None:
    p, effect, _, _ = mann_whitney(buckets([10, 50, 200, 400, 340]), buckets([100, 300, 400, 150, 50]))
    assert p < 1e-6 and effect > 0.7


def test_faster_candidate_is_not_slower() -> None:
    p, effect, _, _ = mann_whitney(buckets([100, 300, 400, 150, 50]), buckets([10, 50, 200, 400, 340]))
    assert p > 0.99 and effect < 0.3


def test_different_bucket_layouts_use_the_common_bounds() -> None:
    fine = {"0.01": 50, "0.025": 100, "0.05": 400, "0.1": 800, "0.25": 950, "+Inf": 1000}
    coarse = {"0.025": 100, "0.1": 800, "+Inf": 1000}
    _p, effect, na, nb = mann_whitney(fine, coarse)
    assert (na, nb) == (1000, 1000) and effect == pytest.approx(0.5)
    assert mann_whitney({"0.3": 5}, {"0.2": 5}) is None
    assert mann_whitney({"x": 5, "+Inf": 5}, {"+Inf": 3}) is not None  # junk bounds ignored


def gate(**kw: object) -> GateSpec:
    base: dict[str, object] = {"name": "p95", "metric": "latency_p95", "compare": "mannwhitney",
                               "min_requests": 50.0}
    base.update(kw)
    return GateSpec(**base)  # type: ignore[arg-type]


def judged(cand_counts: list[float] | None, base_counts: list[float] | None, **kw: object):
    cand = replace(sample("v2", T0, requests=1000),
                   latency_buckets=buckets(cand_counts) if cand_counts else {})
    base = replace(sample("v1", T0, requests=1000),
                   latency_buckets=buckets(base_counts) if base_counts else {})
    return judge(gate(**kw), cand, base, stale=False, baseline_expected=True)


def test_gate_fails_a_clearly_slower_candidate() -> None:
    v = judged([10, 50, 200, 400, 340], [100, 300, 400, 150, 50])
    assert v.status is GateStatus.FAIL and v.comparison == "mannwhitney"
    assert "slower than baseline" in v.reason and "p=0.0000" in v.reason


def test_gate_passes_a_significant_but_tiny_slowdown() -> None:
    # Huge samples make a hair's difference significant; the effect floor keeps it passing.
    base = [40000, 30000, 20000, 8000, 2000]
    cand = [38500, 30500, 20500, 8400, 2100]
    p, effect, _, _ = mann_whitney(buckets(cand), buckets(base))
    assert p < 0.001 and effect < SMALL_EFFECT
    assert judged(cand, base).status is GateStatus.PASS


def test_gate_without_histograms_or_with_too_few_is_unknown() -> None:
    v = judged(None, [100, 300, 400, 150, 50])
    assert v.status is GateStatus.UNKNOWN and "histograms missing" in v.reason
    v = judged([1, 2, 3, 4, 5], [100, 300, 400, 150, 50])
    assert v.status is GateStatus.UNKNOWN and "only 15 requests" in v.reason


def test_gate_combines_with_absolute_bounds() -> None:
    v = judged([100, 300, 400, 150, 50], [100, 300, 400, 150, 50], max=0.01)
    assert v.status is GateStatus.FAIL and v.comparison == "max"
