"""The e-processes behind the gates: exact values, validity under continuous monitoring, bounds."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.evidence import (
    ODDS_MULTIPLIERS,
    RatioEvidence,
    bernoulli_log_e,
    bounds,
    log_threshold,
    wald_expected_samples,
)


def binomial_pmf(k: int, n: int, p: float) -> float:
    return math.comb(n, k) * p**k * (1 - p) ** (n - k)


def test_each_alternative_is_the_plain_likelihood_ratio() -> None:
    # 3 errors in 10 requests against 25 %: mixture of (p1/p0)^3 ((1-p1)/(1-p0))^7 over the grid
    p0 = 0.25
    expected = 0.0
    for m in ODDS_MULTIPLIERS:
        p1 = (p0 / (1 - p0) * m) / (1 + p0 / (1 - p0) * m)
        expected += (p1 / p0) ** 3 * ((1 - p1) / (1 - p0)) ** 7
    expected /= len(ODDS_MULTIPLIERS)
    assert math.isclose(math.exp(bernoulli_log_e(3, 10, p0)), expected, rel_tol=1e-12)


def test_threshold_is_one_over_alpha() -> None:
    assert math.isclose(math.exp(log_threshold(0.99)), 100.0)
    assert math.isclose(math.exp(log_threshold(0.95)), 20.0)


def test_wald_expected_sample_size_matches_a_hand_computation() -> None:
    # p0 = 10 %, p1 = 20 %, α = β = 5 %: KL = 0.2 ln 2 + 0.8 ln(8/9) = 0.044403...,
    # drift = 0.95 ln 19 + 0.05 ln(1/19) = 2.64997... → 59.68 requests
    assert math.isclose(wald_expected_samples(0.1, 0.2, 0.05, 0.05), 59.68, abs_tol=0.01)


@given(st.integers(1, 60), st.floats(0.01, 0.9), st.floats(0.0, 1.0))
def test_the_evidence_is_at_most_one_on_average_where_the_bound_holds(
        n: int, p0: float, shrink: float) -> None:
    """E[e-value] ≤ 1 for every share on the null side, both directions (exact sums)."""
    p_low = p0 * shrink  # a share that keeps "≤ p0"
    mean = sum(binomial_pmf(k, n, p_low) * math.exp(bernoulli_log_e(k, n, p0))
               for k in range(n + 1))
    assert mean <= 1 + 1e-9
    p_high = p0 + (1 - p0) * shrink  # a share that keeps "≥ p0"
    mean = sum(binomial_pmf(k, n, p_high) * math.exp(bernoulli_log_e(k, n, p0, above=False))
               for k in range(n + 1))
    assert mean <= 1 + 1e-9


def crossing_probability(p0: float, p: float, steps: int, confidence: float) -> float:
    """Exact chance that the breach test ever decides within `steps` requests, one look per
    request (the strictest continuous monitoring), when the true share is p."""
    threshold = log_threshold(confidence)
    alive = {0: 1.0}  # errors so far -> probability of not having decided yet
    crossed = 0.0
    for n in range(1, steps + 1):
        nxt: dict[int, float] = {}
        for k, mass in alive.items():
            for bad, weight in ((k + 1, p), (k, 1 - p)):
                if bernoulli_log_e(bad, n, p0) >= threshold:
                    crossed += mass * weight
                else:
                    nxt[bad] = nxt.get(bad, 0.0) + mass * weight
        alive = nxt
    return crossed


def test_looking_after_every_request_keeps_false_alarms_under_alpha() -> None:
    assert crossing_probability(0.05, 0.05, 400, 0.95) <= 0.05
    assert crossing_probability(0.02, 0.02, 400, 0.99) <= 0.01


def test_a_real_breach_is_found() -> None:
    assert crossing_probability(0.02, 0.08, 400, 0.99) > 0.95


def test_bounds_line_up_with_the_decision() -> None:
    found = bounds(30, 400, 0.99)
    assert found.estimate == 0.075
    assert found.low is not None and found.high is not None
    assert found.low < 0.075 < found.high
    # the breach test rejects a bound just under `low` and not one just over it
    assert bernoulli_log_e(30, 400, found.low * 0.99) >= log_threshold(0.99)
    assert bernoulli_log_e(30, 400, found.low * 1.01) < log_threshold(0.99)
    assert bernoulli_log_e(30, 400, found.high * 1.01, above=False) >= log_threshold(0.99)


@given(st.integers(0, 500), st.integers(1, 500), st.sampled_from([0.9, 0.95, 0.99]))
@settings(max_examples=60)
def test_bounds_hold_the_estimate(bad: int, total: int, confidence: float) -> None:
    bad = min(bad, total)
    found = bounds(bad, total, confidence)
    assert found.low is not None and found.high is not None and found.estimate is not None
    assert 0 <= found.low <= found.estimate <= found.high <= 1


def test_more_data_narrows_the_bounds() -> None:
    few, many = bounds(2, 100, 0.99), bounds(200, 10_000, 0.99)
    assert few.high - few.low > many.high - many.low


def test_no_errors_allowed_means_one_error_is_a_breach() -> None:
    assert bernoulli_log_e(1, 5, 0.0) == math.inf
    assert bernoulli_log_e(0, 500, 0.0) == 0.0


def healthy_ratio_run(rng: random.Random, ratio: float, weight: float, steps: int,
                      confidence: float) -> bool:
    """One simulated step where the candidate's error rate is exactly the bound's ratio."""
    evidence = RatioEvidence(ratio)
    threshold = log_threshold(confidence)
    base_rate = 0.01
    for _ in range(steps):
        total = rng.randint(50, 150)
        n_c = sum(rng.random() < weight for _ in range(total))
        n_b = total - n_c
        k_c = sum(rng.random() < base_rate * ratio for _ in range(n_c))
        k_b = sum(rng.random() < base_rate for _ in range(n_b))
        evidence = evidence.add(n_c, k_c, n_b, k_b)
        if evidence.log_e_breach >= threshold:
            return True
    return False


def test_ratio_evidence_keeps_false_alarms_under_alpha_when_looked_at_every_interval() -> None:
    rng = random.Random(7)
    runs = 300
    alarms = sum(healthy_ratio_run(rng, 1.5, 0.2, 60, 0.95) for _ in range(runs))
    # α = 5 %; 300 runs: allow the sampling noise of a 5 % rate (3 sd ≈ 3.8 %)
    assert alarms / runs < 0.05 + 0.038


def test_ratio_evidence_finds_a_tripled_error_rate() -> None:
    evidence = RatioEvidence(1.5)
    for _ in range(30):  # 30 intervals of 90 candidate / 900 baseline requests
        evidence = evidence.add(90, 3.6, 900, 12)  # 4 % vs 1.33 %: 3× the baseline
    assert evidence.log_e_breach >= log_threshold(0.99)
    assert evidence.log_e_holds < log_threshold(0.99)
    found = evidence.estimate(0.99)
    assert found.estimate is not None and math.isclose(found.estimate, 3.0)
    assert found.low is not None and found.low > 1.5


def test_ratio_evidence_shows_a_healthy_candidate_holds() -> None:
    evidence = RatioEvidence(1.5)
    for _ in range(60):
        evidence = evidence.add(100, 1, 900, 9)  # same 1 % rate on both
    assert evidence.log_e_holds >= log_threshold(0.95)
    assert evidence.log_e_breach < 0


def test_ratio_evidence_ignores_intervals_without_errors_or_traffic() -> None:
    evidence = RatioEvidence(2.0).add(100, 0, 100, 0).add(0, 0, 50, 3)
    assert evidence.log_e_breach == 0.0 and evidence.log_e_holds == 0.0
    assert evidence.baseline_total == 150 and evidence.candidate_total == 100
