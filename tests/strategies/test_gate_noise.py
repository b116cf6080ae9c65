"""The error-rate ratio bound must not mistake a handful of errors for a regression."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from strategies.gates import binomial_tail, judge
from strategies.model import GateStatus, MetricSample
from strategies.spec import GateSpec

GATE = GateSpec(name="errors", metric="error_rate", max_ratio=5.0, min_requests=20)


def sample(version: str, errors: float, requests: float) -> MetricSample:
    return MetricSample(version=version, at=0.0, requests=requests, errors=errors,
                        error_ratio=errors / requests, throughput=requests / 10)


def verdict(cand_errors: float, cand_requests: float, base_errors: float = 0,
            base_requests: float = 300):
    return judge(GATE, sample("v2", cand_errors, cand_requests),
                 sample("v1", base_errors, base_requests), stale=False, baseline_expected=True)


def test_one_error_in_thirty_is_noise_not_a_regression() -> None:
    result = verdict(1, 30)
    assert result.status is GateStatus.PASS
    assert "within noise" in result.reason and result.threshold == 0.005


def test_a_real_fault_still_fails_at_low_volume() -> None:
    result = verdict(15, 30)
    assert result.status is GateStatus.FAIL and result.comparison == "max_ratio"


def test_at_high_volume_the_plain_ratio_decides() -> None:
    assert verdict(80, 1000, base_errors=10, base_requests=1000).status is GateStatus.FAIL
    assert verdict(45, 1000, base_errors=10, base_requests=1000).status is GateStatus.PASS


def test_binomial_tail_matches_hand_computed_values() -> None:
    assert math.isclose(binomial_tail(1, 30, 0.005), 1 - 0.995 ** 30)
    assert math.isclose(binomial_tail(2, 30, 0.005),
                        1 - 0.995 ** 30 - 30 * 0.005 * 0.995 ** 29)
    assert binomial_tail(0, 10, 0.1) == 1.0 and binomial_tail(11, 10, 0.1) == 0.0


@given(st.integers(1, 400), st.integers(0, 400), st.floats(0.001, 0.5))
def test_binomial_tail_is_a_probability_and_falls_with_more_errors(n: int, k: int, p: float) -> None:
    k = min(k, n)
    tail = binomial_tail(k, n, p)
    assert 0.0 <= tail <= 1.0
    assert binomial_tail(k + 1, n, p) <= tail + 1e-9
