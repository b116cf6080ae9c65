"""Anytime-valid evidence on counts: e-processes a gate may look at after every scrape.

Why: a gate that re-tests a fixed-sample p-value at every tick fails healthy releases far more
often than its `confidence` promises (every look is another chance to be fooled), and a `for`
debounce only trades that for slowness. An e-process is a running likelihood ratio that, while
the bound holds, stays ≤ 1 on average however often it is read; by Ville's inequality it ever
reaches 1/α with probability at most α. So "reject once E ≥ 1/(1 - confidence)" keeps the
false-alarm rate of a whole step, looked at every second, under 1 - confidence.

The tests here are mixture sequential probability ratio tests (mSPRT: Robbins 1970; Johari et
al., "Peeking at A/B tests", KDD 2017; on counts, Lindon, Sanden & Shirikian, "Rapid regression
detection in software deployments through sequential testing", KDD 2022): each alternative on a
fixed grid (odds 1.25× to 30× away from the bound) is a simple likelihood ratio against the
bound, and the evidence is their equal-weight average, so the test is near-optimal for a
small breach and a large one alike, at the price of log(len(grid)) nats.

- `bernoulli_log_e`: errors among requests (or slow requests among requests) against an
  absolute share. Only the totals matter, so evidence accumulated over a step is two numbers.
- `RatioEvidence`: the conditional binomial for "candidate rate ≤ ratio × baseline rate": given
  the bad events of both versions in one interval, each is the candidate's with probability
  ratio·n_c / (ratio·n_c + n_b) at the bound (a Poisson-process comparison that needs neither
  rate). Intervals multiply, so the traffic split may change between them.
- `bounds`: the confidence bounds shown on screen: the values neither one-sided test rejects.

Everything works on log scale and accepts fractional counts (extrapolated increases).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

ODDS_MULTIPLIERS: tuple[float, ...] = (1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
"""The alternatives mixed over, as odds multiples of the bound (equal weights, fixed a priori)."""

_LOG_GRID = math.log(len(ODDS_MULTIPLIERS))


def log_threshold(confidence: float) -> float:
    """log(1/α): the evidence at which a test decides (Ville's inequality)."""
    alpha = min(max(1.0 - confidence, 1e-12), 1.0)
    return -math.log(alpha)


def _odds(p: float) -> float:
    return p / (1.0 - p)


def _prob(odds: float) -> float:
    return odds / (1.0 + odds)


def _log_mean_exp(values: Sequence[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return -math.inf
    if top == math.inf:
        return math.inf
    return top + math.log(sum(math.exp(v - top) for v in values)) - _LOG_GRID


def _log_lr(bad: float, good: float, p1: float, p0: float) -> float:
    """log of the likelihood ratio of Bernoulli(p1) against Bernoulli(p0) for the counts."""
    out = 0.0
    if bad:
        out += bad * (math.log(p1) - math.log(p0))
    if good:
        out += good * (math.log1p(-p1) - math.log1p(-p0))
    return out


def _alternatives(p0: float, above: bool) -> list[float]:
    odds = _odds(p0)
    return [_prob(odds * m if above else odds / m) for m in ODDS_MULTIPLIERS]


def bernoulli_log_e(bad: float, total: float, p0: float, *, above: bool = True) -> float:
    """log of the mixture e-value against the bound p0 after `bad` of `total` events.

    above=True tests "share ≤ p0" (evidence of a breach); above=False tests "share ≥ p0"
    (evidence that the share is below the bound). Both are valid for the whole composite null,
    not only its edge: each alternative lies beyond p0, so its likelihood ratio is a
    supermartingale for every share on the null side (monotone likelihood ratio).
    """
    bad = max(0.0, bad)
    good = max(0.0, total - bad)
    if p0 <= 0.0:  # "no bad event at all": one is proof of a breach, none proves nothing
        return (math.inf if bad > 0 else 0.0) if above else 0.0
    if p0 >= 1.0:
        return 0.0 if above else (math.inf if good > 0 else 0.0)
    return _log_mean_exp([_log_lr(bad, good, p1, p0) for p1 in _alternatives(p0, above)])


@dataclass(frozen=True)
class Bounds:
    """An estimate with the range neither one-sided test at the confidence would reject."""

    estimate: float | None
    low: float | None
    high: float | None


def bounds(bad: float, total: float, confidence: float) -> Bounds:
    """Estimate bad/total with the confidence bounds that match the decisions.

    `low` is the smallest share the breach test cannot reject yet (a bound below it would
    fail), `high` the largest the "holds" test cannot reject (a bound above it would pass with
    evidence). The breach test rejecting the bound p0 is the same as `low > p0`, so the screen
    shows what the gate decides.
    """
    if total <= 0:
        return Bounds(None, None, None)
    threshold = log_threshold(confidence)
    estimate = min(1.0, max(0.0, bad / total))

    def rejected_above(p: float) -> bool:
        return bernoulli_log_e(bad, total, p, above=True) >= threshold

    def rejected_below(p: float) -> bool:
        return bernoulli_log_e(bad, total, p, above=False) >= threshold

    low = _search(rejected_above, 0.0, estimate, want_rejected_below=True)
    high = _search(rejected_below, estimate, 1.0, want_rejected_below=False)
    return Bounds(estimate, low, high)


def _clamp(p: float) -> float:
    return min(1.0 - 1e-12, max(1e-12, p))


def _search(rejected: Callable[[float], bool], lo: float, hi: float, *, want_rejected_below: bool) -> float:
    """Bisection in log-odds for the edge of the rejected region inside [lo, hi].

    want_rejected_below: shares below the edge are rejected (the breach test's lower bound);
    otherwise shares above it are (the "holds" test's upper bound).
    """
    a, b = math.log(_odds(_clamp(lo))), math.log(_odds(_clamp(hi)))
    if want_rejected_below and not rejected(_prob(math.exp(a))):
        return lo
    if not want_rejected_below and not rejected(_prob(math.exp(b))):
        return hi
    for _ in range(48):
        mid = (a + b) / 2
        inside = rejected(_prob(math.exp(mid)))
        if inside == want_rejected_below:
            a = mid
        else:
            b = mid
    edge = _prob(math.exp((a + b) / 2))
    return min(max(edge, lo), hi)


@dataclass(frozen=True)
class RatioEvidence:
    """Evidence on "candidate rate ≤ ratio × baseline rate", accumulated interval by interval.

    `above[j]` / `below[j]` are the log likelihood ratios of the odds multiple
    ODDS_MULTIPLIERS[j] above / below the bound, summed over the intervals seen; the totals
    feed the estimate and the bounds shown on screen.
    """

    ratio: float
    above: tuple[float, ...] = (0.0,) * len(ODDS_MULTIPLIERS)
    below: tuple[float, ...] = (0.0,) * len(ODDS_MULTIPLIERS)
    candidate_total: float = 0.0
    candidate_bad: float = 0.0
    baseline_total: float = 0.0
    baseline_bad: float = 0.0

    def add(self, candidate_total: float, candidate_bad: float, baseline_total: float,
            baseline_bad: float) -> RatioEvidence:
        """Fold in one interval in which both versions took traffic."""
        if candidate_total < 0 or baseline_total < 0 or candidate_bad < 0 or baseline_bad < 0:
            return self
        above, below = self.above, self.below
        bad = candidate_bad + baseline_bad
        if candidate_total > 0 and baseline_total > 0 and bad > 0:
            p0 = _prob(self.ratio * candidate_total / baseline_total)
            if 0.0 < p0 < 1.0:
                odds = _odds(p0)
                above = tuple(a + _log_lr(candidate_bad, baseline_bad, _prob(odds * m), p0)
                              for a, m in zip(above, ODDS_MULTIPLIERS, strict=True))
                below = tuple(b + _log_lr(candidate_bad, baseline_bad, _prob(odds / m), p0)
                              for b, m in zip(below, ODDS_MULTIPLIERS, strict=True))
        return RatioEvidence(self.ratio, above, below,
                             self.candidate_total + candidate_total,
                             self.candidate_bad + candidate_bad,
                             self.baseline_total + baseline_total,
                             self.baseline_bad + baseline_bad)

    @property
    def log_e_breach(self) -> float:
        return _log_mean_exp(self.above)

    @property
    def log_e_holds(self) -> float:
        return _log_mean_exp(self.below)

    def estimate(self, confidence: float) -> Bounds:
        """The ratio of the two rates with bounds, from the totals of the step.

        The share of bad events that are the candidate's, s, maps to the ratio
        s/(1-s) · n_b/n_c; its bounds map the same way. (The decision itself uses the
        interval-by-interval evidence; these bounds assume a steady split within the step.)
        """
        n_c, n_b = self.candidate_total, self.baseline_total
        bad = self.candidate_bad + self.baseline_bad
        if n_c <= 0 or n_b <= 0:
            return Bounds(None, None, None)
        if bad <= 0:
            return Bounds(None, 0.0, None)
        share = bounds(self.candidate_bad, bad, confidence)

        def to_ratio(s: float | None) -> float | None:
            if s is None:
                return None
            if s >= 1.0:
                return math.inf
            return _odds(s) * n_b / n_c

        return Bounds(to_ratio(share.estimate), to_ratio(share.low), to_ratio(share.high))


def wald_expected_samples(p0: float, p1: float, alpha: float, beta: float) -> float:
    """Wald's approximation of the SPRT's expected sample size under p1 (Bernoulli p0 vs p1).

    E₁[N] ≈ ((1-β)·log((1-β)/α) + β·log(β/(1-α))) / KL(p1 ‖ p0): the fewest requests, on
    average, any sequential test with these error probabilities needs (Wald & Wolfowitz).
    """
    kl = p1 * math.log(p1 / p0) + (1 - p1) * math.log((1 - p1) / (1 - p0))
    drift = (1 - beta) * math.log((1 - beta) / alpha) + beta * math.log(beta / (1 - alpha))
    return drift / kl
