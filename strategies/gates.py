"""Gates: the automatic alert thresholds that hold, pause or roll back a rollout.

Evaluation is split in two. `judge` compares one tick's numbers (pure, stateless). `GateTracker`
(also pure) carries when each gate started failing, so a gate only acts after failing for its
whole `for` duration, the way a Prometheus alert's `for` works. Missing, thin or stale data is
UNKNOWN, which never lets a step advance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from strategies.model import GateResult, GateStatus, MetricSample
from strategies.spec import GateSpec

LOWER_IS_BETTER = frozenset({"error_rate", "latency_p50", "latency_p95", "latency_p99"})


SMALL_EFFECT = 0.56
"""Vargha-Delaney A at which a latency difference counts as real ("small" effect): with enough
traffic any difference is significant, so significance alone would fail a candidate that is
slower by a hair. A = P(candidate request slower than baseline request), ties counted half."""


@dataclass(frozen=True)
class Verdict:
    status: GateStatus
    value: float | None = None
    baseline: float | None = None
    threshold: float | None = None
    comparison: str = ""
    reason: str = ""
    samples: float | None = None


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if metric == "error_rate":
        return f"{value * 100:.2f}%"
    if metric.startswith("latency"):
        return f"{value * 1000:.0f}ms"
    if metric == "throughput":
        return f"{value:.1f}/s"
    return f"{value:.4g}"


def proportion_p_value(bad_a: float, total_a: float, bad_b: float, total_b: float) -> float:
    """One-sided two-proportion z-test: p-value that A's failure ratio exceeds B's by chance."""
    if total_a <= 0 or total_b <= 0:
        return 1.0
    p_a, p_b = bad_a / total_a, bad_b / total_b
    pooled = (bad_a + bad_b) / (total_a + total_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / total_a + 1 / total_b))
    if spread == 0:
        return 1.0 if p_a <= p_b else 0.0
    z = (p_a - p_b) / spread
    return 0.5 * math.erfc(z / math.sqrt(2))


def _cumulative(buckets: Mapping[str, float]) -> dict[float, float]:
    out: dict[float, float] = {}
    for bound, count in buckets.items():
        try:
            upper = float(bound)  # "+Inf" parses to inf
        except (TypeError, ValueError):
            continue
        if count is not None and math.isfinite(count) and count >= 0:
            out[upper] = float(count)
    return out


def mann_whitney(candidate: Mapping[str, float], baseline: Mapping[str, float]
                 ) -> tuple[float, float, float, float] | None:
    """One-sided Mann-Whitney U on two binned latency samples (Prometheus cumulative buckets).

    Returns (p-value that the candidate is slower by chance, effect A, candidate count,
    baseline count), or None without a common, non-empty histogram. Requests in one bucket are
    ties; the variance carries the usual tie correction, and the normal approximation is fine at
    the sample sizes gates require.
    """
    a, b = _cumulative(candidate), _cumulative(baseline)
    bounds = sorted(set(a) & set(b))  # common bounds: both histograms coarsened alike
    if not bounds:
        return None

    def per_bucket(cumulative: dict[float, float]) -> list[float]:
        counts, below = [], 0.0
        for upper in bounds:
            counts.append(max(0.0, cumulative[upper] - below))
            below = max(below, cumulative[upper])
        return counts

    ca, cb = per_bucket(a), per_bucket(b)
    na, nb = sum(ca), sum(cb)
    if na <= 0 or nb <= 0:
        return None
    u, base_below = 0.0, 0.0
    for x, y in zip(ca, cb, strict=True):
        u += x * (base_below + 0.5 * y)  # candidate requests above, or tied with, baseline ones
        base_below += y
    n = na + nb
    effect = u / (na * nb)
    ties = sum((x + y) ** 3 - (x + y) for x, y in zip(ca, cb, strict=True))
    variance = na * nb / 12 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    if variance <= 0:
        return (1.0 if effect <= 0.5 else 0.0), effect, na, nb
    z = (u - na * nb / 2) / math.sqrt(variance)
    return 0.5 * math.erfc(z / math.sqrt(2)), effect, na, nb


def judge(
    gate: GateSpec,
    candidate: MetricSample | None,
    baseline: MetricSample | None,
    *,
    stale: bool,
    baseline_expected: bool,
) -> Verdict:
    """Compare this tick's candidate sample against the gate's bounds and the baseline."""
    if stale:
        return Verdict(GateStatus.UNKNOWN, reason="metrics are stale")
    if candidate is None:
        return Verdict(GateStatus.UNKNOWN, reason="no data for the candidate")
    requests = candidate.requests
    if requests is None or requests < gate.min_requests:
        seen = 0 if requests is None else requests
        return Verdict(GateStatus.UNKNOWN, samples=requests,
                       reason=f"only {seen:.0f} requests, need {gate.min_requests:.0f}")
    value = candidate.value(gate.metric)
    if value is None or not math.isfinite(value):
        return Verdict(GateStatus.UNKNOWN, samples=requests, reason=f"no {gate.metric} value")
    base_value = baseline.value(gate.metric) if baseline is not None else None
    checks: list[Verdict] = []
    if gate.max is not None:
        ok = value <= gate.max
        checks.append(Verdict(
            GateStatus.PASS if ok else GateStatus.FAIL, value, base_value, gate.max, "max",
            f"{_fmt(gate.metric, value)} {'≤' if ok else '>'} max {_fmt(gate.metric, gate.max)}"))
    if gate.min is not None:
        ok = value >= gate.min
        checks.append(Verdict(
            GateStatus.PASS if ok else GateStatus.FAIL, value, base_value, gate.min, "min",
            f"{_fmt(gate.metric, value)} {'≥' if ok else '<'} min {_fmt(gate.metric, gate.min)}"))
    relative = gate.max_ratio is not None or gate.compare != "none"
    if relative and baseline_expected:
        base_requests = baseline.requests if baseline is not None else None
        if base_value is None or base_requests is None or base_requests < gate.min_requests:
            checks.append(Verdict(GateStatus.UNKNOWN, value, base_value, None, "baseline",
                                  "not enough baseline data to compare"))
        else:
            if gate.max_ratio is not None:
                checks.append(_ratio_check(gate, value, base_value, candidate))
            if gate.compare == "proportion":
                checks.append(_proportion_check(gate, candidate, baseline))
            if gate.compare == "mannwhitney":
                checks.append(_mann_whitney_check(gate, candidate, baseline))
    elif relative and not checks:
        # The baseline takes no traffic (e.g. at 100%): a relative bound cannot apply, and the
        # gate still needed enough candidate requests to get here.
        return Verdict(GateStatus.PASS, value, base_value, None, "n/a", samples=requests,
                       reason="baseline takes no traffic; relative bound not applicable")
    failing = [c for c in checks if c.status is GateStatus.FAIL]
    unknown = [c for c in checks if c.status is GateStatus.UNKNOWN]
    pick = failing[0] if failing else unknown[0] if unknown else checks[0]
    return replace(pick, samples=requests, value=value, baseline=base_value)


def binomial_tail(successes: float, trials: float, p: float) -> float:
    """P(X >= successes) for X ~ Binomial(trials, p): how surprising that many errors are."""
    n, k = round(trials), round(successes)
    if k <= 0:
        return 1.0
    if k > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    if n * p * (1 - p) > 25:  # normal approximation with continuity correction
        z = (k - 0.5 - n * p) / math.sqrt(n * p * (1 - p))
        return 0.5 * math.erfc(z / math.sqrt(2))
    log_p, log_q = math.log(p), math.log1p(-p)
    below = 0.0
    for i in range(k):
        below += math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                          + i * log_p + (n - i) * log_q)
    return max(0.0, 1.0 - below)


def _ratio_check(gate: GateSpec, value: float, base_value: float,
                 candidate: MetricSample | None = None) -> Verdict:
    assert gate.max_ratio is not None
    # A tiny floor keeps "0 errors on baseline" from making any single candidate error a failure
    # of an infinite ratio; absolute bounds are the tool for that case.
    floor = 0.001 if gate.metric == "error_rate" else 1e-6
    bound = max(base_value, floor) * gate.max_ratio
    ok = value <= bound
    word = "≤" if ok else ">"
    reason = (f"{_fmt(gate.metric, value)} {word} {gate.max_ratio:g}× baseline "
              f"{_fmt(gate.metric, base_value)} = {_fmt(gate.metric, bound)}")
    if not ok and gate.metric == "error_rate" and candidate is not None \
            and candidate.errors is not None and candidate.requests:
        # Error counts are small numbers: 1 error in 30 requests is 3% but says little. The
        # ratio fails only when that many errors would be unlikely at the bound itself.
        p_value = binomial_tail(candidate.errors, candidate.requests, min(bound, 1.0))
        alpha = 1 - gate.confidence
        if p_value >= alpha:
            ok = True
            reason += (f", but {candidate.errors:.0f} error(s) in {candidate.requests:.0f} "
                       f"requests is within noise (p={p_value:.2f} ≥ {alpha:g})")
    return Verdict(
        GateStatus.PASS if ok else GateStatus.FAIL, value, base_value, bound, "max_ratio", reason)


def _proportion_check(gate: GateSpec, candidate: MetricSample,
                      baseline: MetricSample | None) -> Verdict:
    if baseline is None or candidate.errors is None or baseline.errors is None \
            or candidate.requests is None or baseline.requests is None:
        return Verdict(GateStatus.UNKNOWN, comparison="proportion",
                       reason="error counts missing for the comparison")
    p = proportion_p_value(candidate.errors, candidate.requests, baseline.errors, baseline.requests)
    alpha = 1 - gate.confidence
    ok = p >= alpha
    return Verdict(
        GateStatus.PASS if ok else GateStatus.FAIL, threshold=alpha, comparison="proportion",
        reason=(f"candidate errors {'not ' if ok else ''}significantly above baseline "
                f"(p={p:.4f}, alpha={alpha:g})"))


def _mann_whitney_check(gate: GateSpec, candidate: MetricSample,
                        baseline: MetricSample | None) -> Verdict:
    found = mann_whitney(candidate.latency_buckets, baseline.latency_buckets) \
        if baseline is not None else None
    if found is None:
        return Verdict(GateStatus.UNKNOWN, comparison="mannwhitney",
                       reason="latency histograms missing for the comparison")
    p, effect, na, nb = found
    if min(na, nb) < gate.min_requests:
        return Verdict(GateStatus.UNKNOWN, comparison="mannwhitney",
                       reason=f"only {min(na, nb):.0f} requests in a latency histogram, "
                              f"need {gate.min_requests:.0f}")
    alpha = 1 - gate.confidence
    slower = p < alpha and effect >= SMALL_EFFECT
    return Verdict(
        GateStatus.FAIL if slower else GateStatus.PASS, threshold=alpha, comparison="mannwhitney",
        reason=(f"candidate {'' if slower else 'not '}slower than baseline: a candidate request is "
                f"the slower one in {effect:.0%} of pairs (p={p:.4f}, alpha={alpha:g}, "
                f"needs ≥{SMALL_EFFECT:.0%})"))


@dataclass(frozen=True)
class GateTracker:
    """Remembers when each failing gate started failing. Pure: every update returns a new one."""

    failing_since: Mapping[str, float]

    def results(
        self,
        gates: tuple[GateSpec, ...],
        candidate: MetricSample | None,
        baseline: MetricSample | None,
        now: float,
        *,
        stale: bool,
        baseline_expected: bool,
    ) -> tuple[GateResult, ...]:
        out: list[GateResult] = []
        for gate in gates:
            verdict = judge(gate, candidate, baseline, stale=stale,
                            baseline_expected=baseline_expected)
            since = self.failing_since.get(gate.name)
            if verdict.status is GateStatus.FAIL and since is None:
                since = now
            elif verdict.status is GateStatus.PASS:
                since = None
            # UNKNOWN keeps a running failure clock, but cannot breach by itself.
            breached = (verdict.status is GateStatus.FAIL and since is not None
                        and now - since >= gate.for_seconds)
            out.append(GateResult(
                name=gate.name, metric=gate.metric, severity=gate.severity,
                status=verdict.status, value=verdict.value, baseline=verdict.baseline,
                threshold=verdict.threshold, comparison=verdict.comparison,
                reason=verdict.reason, failing_since=since, for_seconds=gate.for_seconds,
                breached=breached, samples=verdict.samples))
        return tuple(out)
