"""Gates: the bounds that hold, pause or roll back a rollout, decided on evidence.

A gate on counts (error rate against `max` or `max_ratio` × baseline, a latency quantile as the
share of requests slower than the bound, latency against the baseline) is an anytime-valid
sequential test over everything the step has counted (`step_evidence`, `evidence`): it fails
only once the evidence of a breach reaches 1/(1 - confidence), which keeps wrong rollbacks
under 1 - confidence however often it is looked at; it passes once it has `min_requests` and no
such evidence (or, with require = "evidence", once the evidence shows the bound holds); in
between it is UNKNOWN (inconclusive), which never lets a step advance. Throughput, `min` and
custom metrics keep a point comparison of this tick's window (`judge`), labelled as such.

`GateTracker` (pure) carries when each gate started failing, so a `for` duration still works
as an extra debounce, the way a Prometheus alert's `for` does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from strategies.evidence import Bounds, RatioEvidence, ShareEvidence, bounds, log_threshold
from strategies.model import GateResult, GateStatus, MetricSample, Tally
from strategies.rates import parse_bound
from strategies.spec import GateSpec
from strategies.step_evidence import (
    QUANTILE,
    StepEvidence,
    boundary_for,
)

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
    test: str = "point"  # "sequential": anytime-valid test on the step's counts; "point": this window
    estimate: float | None = None  # what the test is about, on its own scale (`scale`)
    low: float | None = None  # confidence bounds of the estimate
    high: float | None = None
    bound: float | None = None  # the bound on that scale
    scale: str = ""  # "share" (of requests) | "ratio" (candidate / baseline) | "" (the metric)
    toward_fail: float = 0.0  # 0..1: how far the evidence of a breach is toward deciding
    toward_pass: float = 0.0  # 0..1: how far the gate is toward passing
    note: str = ""  # e.g. which histogram boundary a latency bound is tested at
    limit: float | None = None  # a latency share's latency bound (seconds), see GateResult


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
    readings = _point_readings(gate, candidate, stale=stale)
    if isinstance(readings, Verdict):
        return readings
    requests, value = readings
    base_value = baseline.value(gate.metric) if baseline is not None else None
    checks = _absolute_checks(gate, value, base_value)
    relative = gate.max_ratio is not None or gate.compare != "none"
    if relative and baseline_expected:
        checks += _relative_checks(gate, value, base_value, candidate, baseline)
    elif relative and not checks:
        # The baseline takes no traffic (e.g. at 100%): a relative bound cannot apply, and the
        # gate still needed enough candidate requests to get here.
        return Verdict(GateStatus.PASS, value, base_value, None, "n/a", samples=requests,
                       reason="baseline takes no traffic; relative bound not applicable")
    return replace(_worst(checks), samples=requests, value=value, baseline=base_value)


def _point_readings(gate: GateSpec, candidate: MetricSample | None, *,
                    stale: bool) -> tuple[float, float] | Verdict:
    """The candidate's request count and metric value, or why the gate cannot judge this window
    at all (stale metrics, no data, too few requests, no value): then it is unknown, not passing."""
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
    return requests, value


def _absolute_checks(gate: GateSpec, value: float, base_value: float | None) -> list[Verdict]:
    """The gate's fixed bounds (max, min) on this window's value: no baseline needed."""
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
    return checks


def _relative_checks(gate: GateSpec, value: float, base_value: float | None,
                     candidate: MetricSample, baseline: MetricSample | None) -> list[Verdict]:
    """The bounds relative to the baseline (ratio, proportion, rank test): unknown while the
    baseline has too few requests to compare against."""
    base_requests = baseline.requests if baseline is not None else None
    if base_value is None or base_requests is None or base_requests < gate.min_requests:
        return [Verdict(GateStatus.UNKNOWN, value, base_value, None, "baseline",
                        "not enough baseline data to compare")]
    checks: list[Verdict] = []
    if gate.max_ratio is not None:
        checks.append(_ratio_check(gate, value, base_value, candidate))
    if gate.compare == "proportion":
        checks.append(_proportion_check(gate, candidate, baseline))
    if gate.compare == "mannwhitney":
        checks.append(_mann_whitney_check(gate, candidate, baseline))
    return checks


def _worst(checks: list[Verdict]) -> Verdict:
    """A gate is as bad as its worst bound: a failing one, else an unknown one, else the first."""
    failing = [c for c in checks if c.status is GateStatus.FAIL]
    unknown = [c for c in checks if c.status is GateStatus.UNKNOWN]
    return failing[0] if failing else unknown[0] if unknown else checks[0]


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


# --------------------------------------------------------------------------- sequential tests


def _progress(log_e: float, threshold: float) -> float:
    if threshold <= 0 or log_e == math.inf:
        return 1.0
    return max(0.0, min(1.0, log_e / threshold))


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.2g}%" if x < 0.1 else f"{x * 100:.1f}%"


def _times(x: float | None) -> str:
    return "n/a" if x is None else "∞" if math.isinf(x) else f"{x:.2f}×"


def sequential_metric(gate: GateSpec) -> bool:
    """Whether a gate is decided by a sequential test (on counts) rather than a point check."""
    if gate.metric == "error_rate":
        return gate.max is not None or gate.max_ratio is not None or gate.compare == "proportion"
    if gate.metric in QUANTILE:
        return gate.max is not None or gate.max_ratio is not None or gate.compare == "mannwhitney"
    return False


PROMETHEUS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                      10.0)
"""The Prometheus clients' default latency buckets: where `check` says a latency bound lands
(the real boundaries are only known once the service is scraped; the screen shows those)."""


def describe_test(gate: GateSpec) -> str:
    """How a gate decides, in one line, for `check`."""
    at = f"at {gate.confidence:g}" + (", require evidence" if gate.require == "evidence" else "")
    if not sequential_metric(gate):
        return "point comparison of the window"
    parts = []
    if gate.metric == "error_rate":
        if gate.max is not None:
            parts.append(f"≤ {gate.max * 100:g}% of requests fail")
        if gate.max_ratio is not None:
            parts.append(f"error rate ≤ {gate.max_ratio:g}× baseline (conditional binomial)")
        if gate.compare == "proportion":
            parts.append("error rate ≤ baseline (conditional binomial)")
    else:
        share = 1.0 - QUANTILE[gate.metric]
        if gate.max is not None:
            where = ""
            if gate.max not in PROMETHEUS_BUCKETS:
                up = next((b for b in PROMETHEUS_BUCKETS if b >= gate.max), None)
                down = next((b for b in reversed(PROMETHEUS_BUCKETS) if b <= gate.max), None)
                where = (f" ({gate.max:g}s is not a default bucket boundary: with default buckets "
                         f"a breach is tested at le={up if up is not None else '+Inf'}, "
                         f"holds at le={down if down is not None else 'none'})")
            parts.append(f"≤ {share:.0%} of requests slower than {gate.max * 1000:.0f}ms{where}")
        if gate.max_ratio is not None:
            parts.append(f"≤ {share:.0%} of requests slower than {gate.max_ratio:g}× the "
                         f"baseline's {gate.metric.removeprefix('latency_')}")
        if gate.compare == "mannwhitney":
            parts.append("share above the baseline's median ≤ 1.12× the baseline's")
    return f"sequential {at}: " + "; ".join(parts)


def _share_check(gate: GateSpec, evidence: ShareEvidence | None, comparison: str, what: str,
                 note: str = "", *, explain: bool = True, limit: float | None = None) -> Verdict:
    """Test of "share of bad requests ≤ p0" on the step's counts."""
    if evidence is None:
        return Verdict(GateStatus.UNKNOWN, test="sequential", comparison=comparison,
                       scale="share", note=note, reason=f"{what}: nothing counted yet",
                       limit=limit)
    p0, bad, total = evidence.p0, evidence.bad, evidence.total
    shown: Bounds = bounds(bad, total, gate.confidence) if explain else \
        Bounds(bad / total if total > 0 else None, None, None)
    if explain and evidence.bad_holds != bad and total > 0:  # the upper bound belongs to the "holds" boundary
        shown = Bounds(shown.estimate, shown.low,
                       bounds(evidence.bad_holds, total, gate.confidence).high)
    interval = f"{_pct(shown.estimate)} [{_pct(shown.low)}–{_pct(shown.high)}]"
    return _sequential_verdict(
        gate, evidence.log_e_breach, evidence.log_e_holds, total,
        claim=f"{what} {interval}", bound=_pct(p0), counted=f"{bad:.0f} of {total:.0f}",
        seen=f"{total:.0f} requests", too_few=f"only {total:.0f} requests this step",
        common={"estimate": shown.estimate, "low": shown.low, "high": shown.high, "bound": p0,
                "scale": "share", "comparison": comparison, "note": note, "threshold": p0,
                "limit": limit})


def _ratio_evidence_check(gate: GateSpec, evidence: RatioEvidence | None, comparison: str,
                          what: str, note: str = "", *, explain: bool = True) -> Verdict:
    """Conditional-binomial test of "candidate rate ≤ ratio × baseline rate"."""
    if evidence is None:
        return Verdict(GateStatus.UNKNOWN, test="sequential", comparison=comparison, scale="ratio",
                       note=note, reason=f"{what}: not enough baseline data yet")
    shown = evidence.estimate(gate.confidence) if explain else evidence.point()
    least = min(evidence.candidate_total, evidence.baseline_total)
    interval = f"{_times(shown.estimate)} [{_times(shown.low)}–{_times(shown.high)}]"
    counts = (f"{evidence.candidate_bad:.0f}/{evidence.candidate_total:.0f} vs "
              f"{evidence.baseline_bad:.0f}/{evidence.baseline_total:.0f}")
    return _sequential_verdict(
        gate, evidence.log_e_breach, evidence.log_e_holds, least,
        claim=f"{what} {interval}", bound=f"{evidence.ratio:g}× baseline", counted=counts,
        seen=counts, too_few=f"only {least:.0f} requests this step on one side",
        common={"estimate": shown.estimate, "low": shown.low, "high": shown.high,
                "bound": evidence.ratio, "scale": "ratio", "comparison": comparison, "note": note})


def _sequential_verdict(gate: GateSpec, breach: float, holds: float, counted_requests: float, *,
                        claim: str, bound: str, counted: str, seen: str, too_few: str,
                        common: dict[str, Any]) -> Verdict:
    """One sequential test's verdict, the same rule for a share and a ratio: a breach shown at
    the gate's confidence fails; with require = evidence only a shown hold passes (otherwise
    inconclusive); without it, enough requests and no breach shown pass."""
    threshold = log_threshold(gate.confidence)
    toward_pass = _progress(holds, threshold) if gate.require == "evidence" else \
        min(1.0, counted_requests / gate.min_requests) if gate.min_requests > 0 else 1.0
    common = {**common, "test": "sequential", "toward_fail": _progress(breach, threshold),
              "toward_pass": toward_pass}
    if breach >= threshold:
        return Verdict(GateStatus.FAIL, reason=f"{claim} > {bound}: breach shown at "
                       f"{gate.confidence:.4g} confidence ({counted})", **common)
    if gate.require == "evidence":
        if holds >= threshold:
            return Verdict(GateStatus.PASS, reason=f"{claim} ≤ {bound}: shown to hold ({seen})",
                           **common)
        return Verdict(GateStatus.UNKNOWN, reason=f"inconclusive: {claim} vs ≤ {bound} ({seen})",
                       **common)
    if counted_requests < gate.min_requests:
        return Verdict(GateStatus.UNKNOWN, reason=f"{too_few}, need {gate.min_requests:.0f}", **common)
    if _above_bound(common):  # passes (no breach shown), but must not read as "within"
        return Verdict(GateStatus.PASS, reason=f"{claim} vs ≤ {bound}: above it, but no breach "
                       f"shown at {gate.confidence:.4g} confidence ({seen})", **common)
    return Verdict(GateStatus.PASS, reason=f"{claim} ≤ {bound}: no breach shown ({seen})", **common)


def _above_bound(common: dict[str, Any]) -> bool:
    """The point estimate is past the bound while the test has not shown a breach: the pass
    stands (require = "no-breach" asks only for no evidence of a breach), its words say so."""
    estimate, bound = common.get("estimate"), common.get("bound")
    return isinstance(estimate, float | int) and isinstance(bound, float | int) and estimate > bound


def _latency_share_check(gate: GateSpec, evidence: ShareEvidence | None, tally: Tally,
                         limit: float, comparison: str, origin: str = "", *,
                         explain: bool = True) -> Verdict:
    """A latency quantile bound as a share: at most 1 - q of requests slower than `limit`."""
    up = boundary_for(tally, limit, at_or_above=True)
    down = boundary_for(tally, limit, at_or_above=False)
    note = _boundary_note(limit, up, down) if up is not None or down is not None else ""
    if origin:
        note = f"{origin}; {note}" if note else origin
    return _share_check(gate, evidence, comparison, f"share slower than {limit * 1000:.0f}ms",
                        note, explain=explain, limit=limit)


def _has_histogram(tally: Tally) -> bool:
    return any(parse_bound(le) == math.inf for le in tally.latency_buckets)


def _has_histogram_sample(sample: MetricSample | None) -> bool:
    return sample is not None and any(parse_bound(le) == math.inf for le in sample.latency_buckets)


def _boundary_note(limit: float, up: float | None, down: float | None) -> str:
    if up is not None and down is not None and math.isclose(up, limit) and math.isclose(down, limit):
        return ""
    parts = []
    if up is not None:
        parts.append(f"breach tested at le={up:g}")
    else:
        parts.append("no bucket at or above the bound: a breach cannot be shown")
    if down is not None:
        parts.append(f"holds tested at le={down:g}")
    return f"{limit:g}s is not a histogram boundary: " + ", ".join(parts)


def assess(gate: GateSpec, evidence: StepEvidence, candidate: MetricSample | None,
           baseline: MetricSample | None, *, stale: bool, baseline_expected: bool,
           explain: bool = True) -> Verdict:
    """One gate's verdict on the step's evidence (sequential) or this window (point).

    explain=False skips the confidence bounds (they are for people; a batch judge that
    replays thousands of releases does not need them)."""
    if not sequential_metric(gate):
        return judge(gate, candidate, baseline, stale=stale, baseline_expected=baseline_expected)
    cand = evidence.candidate
    if gate.metric in QUANTILE and not _has_histogram(cand) and not _has_histogram_sample(candidate):
        # The source gives quantiles but no histogram (nothing to count): compare the value.
        found = judge(gate, candidate, baseline, stale=stale, baseline_expected=baseline_expected)
        return replace(found, note="point comparison: the source has no latency histogram")
    if gate.metric == "error_rate":
        checks = _error_rate_checks(gate, evidence, baseline_expected=baseline_expected, explain=explain)
    else:
        checks = _latency_checks(gate, evidence, baseline_expected=baseline_expected, explain=explain)
    if gate.min is not None:  # a floor is no breach to count: this window's value against it
        checks.append(judge(replace(gate, max=None, max_ratio=None, compare="none"),
                            candidate, baseline, stale=stale, baseline_expected=baseline_expected))
    if not checks:  # only relative bounds, and the baseline takes no traffic (e.g. at 100%)
        return _relative_not_applicable(gate, cand)
    pick = _qualified(_worst(checks), evidence, candidate, stale=stale)
    value = candidate.value(gate.metric) if candidate is not None else None
    base_value = baseline.value(gate.metric) if baseline is not None else None
    return replace(pick, value=value, baseline=base_value, samples=cand.requests)


def _error_rate_checks(gate: GateSpec, evidence: StepEvidence, *, baseline_expected: bool,
                       explain: bool) -> list[Verdict]:
    """An error-rate gate's sequential tests: the share of failed requests against `max`, and
    the candidate's rate against the baseline's (only while the baseline takes traffic)."""
    checks: list[Verdict] = []
    if gate.max is not None:
        checks.append(_share_check(gate, evidence.shares.get(f"{gate.name}:max"), "max",
                                   "error rate", explain=explain))
    if not baseline_expected:
        return checks
    if gate.max_ratio is not None:
        checks.append(_ratio_evidence_check(gate, evidence.ratios.get(f"{gate.name}:max_ratio"),
                                            "max_ratio", "error rate vs baseline", explain=explain))
    if gate.compare == "proportion":
        checks.append(_ratio_evidence_check(gate, evidence.ratios.get(f"{gate.name}:proportion"),
                                            "proportion", "error rate vs baseline", explain=explain))
    return checks


def _latency_checks(gate: GateSpec, evidence: StepEvidence, *, baseline_expected: bool,
                    explain: bool) -> list[Verdict]:
    """A latency gate's sequential tests, each a share of slow requests at a histogram boundary:
    against `max`, against `max_ratio` × the baseline's quantile, and above the baseline's median
    (the rank test's stand-in); the baseline ones only while the baseline takes traffic."""
    cand = evidence.candidate
    checks: list[Verdict] = []
    if gate.max is not None:
        checks.append(_latency_share_check(gate, evidence.shares.get(f"{gate.name}:max"),
                                           cand, gate.max, "max", explain=explain))
    if baseline_expected and gate.max_ratio is not None:
        limit = evidence.boundaries.get(f"{gate.name}:max_ratio")
        if limit is None:
            checks.append(Verdict(GateStatus.UNKNOWN, test="sequential", comparison="max_ratio",
                                  reason="not enough baseline latency data yet"))
        else:
            checks.append(_latency_share_check(
                gate, evidence.shares.get(f"{gate.name}:max_ratio"), cand, limit, "max_ratio",
                f"bound = {gate.max_ratio:g}× baseline {gate.metric} "
                f"{limit / gate.max_ratio * 1000:.0f}ms", explain=explain))
    if baseline_expected and gate.compare == "mannwhitney":
        key = f"{gate.name}:mannwhitney"
        median = evidence.boundaries.get(key)
        note = "" if median is None else (
            f"rank test stand-in: share above the baseline's median boundary le={median:g}")
        checks.append(_ratio_evidence_check(gate, evidence.ratios.get(key) if median is not None
                                            else None, "mannwhitney", "share above baseline median",
                                            note, explain=explain))
    return checks


def _relative_not_applicable(gate: GateSpec, cand: Tally) -> Verdict:
    """A gate with only relative bounds while the baseline takes no traffic: nothing to compare,
    so it passes once the step has counted enough candidate requests."""
    ok = cand.requests >= gate.min_requests
    return Verdict(GateStatus.PASS if ok else GateStatus.UNKNOWN, test="sequential",
                   comparison="n/a", samples=cand.requests,
                   reason="baseline takes no traffic; relative bound not applicable" if ok
                   else f"only {cand.requests:.0f} requests this step, need "
                        f"{gate.min_requests:.0f}")


def _qualified(pick: Verdict, evidence: StepEvidence, candidate: MetricSample | None, *,
               stale: bool) -> Verdict:
    """The step's evidence stands, but not blindly: short of a shown breach, stale metrics or a
    candidate with no traffic now make it unknown, and approximated counts say so."""
    if stale and pick.status is not GateStatus.FAIL:
        pick = replace(pick, status=GateStatus.UNKNOWN, reason=f"metrics are stale; {pick.reason}")
    elif (candidate is None or candidate.requests is None) and pick.status is not GateStatus.FAIL:
        # The step's evidence stands, but a candidate that shows no traffic now is not passing.
        pick = replace(pick, status=GateStatus.UNKNOWN,
                       reason=f"no fresh data for the candidate; {pick.reason}")
    if evidence.approximate and pick.test == "sequential":
        pick = replace(pick, note=("; " if pick.note else "").join(
            x for x in (pick.note, "counts approximated from window samples") if x))
    return pick


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
        evidence: StepEvidence | None = None,
        explain: bool = True,
    ) -> tuple[GateResult, ...]:
        """Every gate's result; without `evidence`, every gate is a point comparison (the
        pre-evidence behaviour, kept for comparison in the judgement benchmark)."""
        out: list[GateResult] = []
        for gate in gates:
            if evidence is None:
                verdict = judge(gate, candidate, baseline, stale=stale,
                                baseline_expected=baseline_expected)
            else:
                verdict = assess(gate, evidence, candidate, baseline, stale=stale,
                                 baseline_expected=baseline_expected, explain=explain)
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
                breached=breached, samples=verdict.samples, test=verdict.test,
                estimate=verdict.estimate, low=verdict.low, high=verdict.high,
                bound=verdict.bound, scale=verdict.scale, toward_fail=verdict.toward_fail,
                toward_pass=verdict.toward_pass, note=verdict.note, require=gate.require,
                confidence=gate.confidence, limit=verdict.limit))
        return tuple(out)


def settle(evidence: StepEvidence, results: tuple[GateResult, ...]) -> StepEvidence:
    """Remember which gates' evidence crossed this step (journaled at once, for the record).

    A gate acts on its current evidence, not on a past crossing: with `for`, the breach must
    stay shown for the whole duration, so a transient one that later data outweigh does not
    act. Either way a wrong fail needs a crossing, which Ville's inequality bounds."""
    failed = evidence.failed | {r.name for r in results
                                if r.status is GateStatus.FAIL and r.test == "sequential"}
    held = evidence.held | {r.name for r in results if r.status is GateStatus.PASS
                            and r.test == "sequential" and r.require == "evidence"}
    if failed == evidence.failed and held == evidence.held:
        return evidence
    return replace(evidence, failed=frozenset(failed), held=frozenset(held))
