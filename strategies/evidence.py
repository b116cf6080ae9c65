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

A breach that starts late in a step is diluted by the clean counts before it: the mixture has
to climb back from what those counts cost its alternatives. So the breach evidence is the
average of that mixture and `Onset`, a Shiryaev-Roberts-style mixture over when the breach
began: a test started at every interval, each weighted in advance (the weights sum to one, so
the sum is still a test supermartingale and Ville's bound holds). A late onset then costs
log(2 × horizon) nats, the price of not knowing when it began, instead of the whole clean past.

Everything works on log scale and accepts fractional counts (extrapolated increases).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

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


@functools.lru_cache(maxsize=1024)
def _alternative_logs(p0: float, above: bool) -> tuple[tuple[float, float], ...]:
    """Per alternative: log-likelihood ratio of one bad and of one good event (a gate's bound
    is the same at every tick, so this is computed once per bound)."""
    return tuple((math.log(p1) - math.log(p0), math.log1p(-p1) - math.log1p(-p0))
                 for p1 in _alternatives(p0, above))


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
    return _log_mean_exp([bad * per_bad + good * per_good
                          for per_bad, per_good in _alternative_logs(p0, above)])


@dataclass(frozen=True)
class Bounds:
    """An estimate with the range neither one-sided test at the confidence would reject."""

    estimate: float | None
    low: float | None
    high: float | None


@functools.lru_cache(maxsize=8192)
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

    # Bracket the edges in log-odds a few widths of the expected half-width away, so a
    # dozen halvings give the two digits shown.
    center = math.log(_odds(_clamp(estimate)))
    spread = 4.0 * math.sqrt(2.0 * (threshold + _LOG_GRID)
                             / max(total * _clamp(estimate) * (1 - _clamp(estimate)), 1e-9))
    spread = min(spread, 60.0)
    near_low = _prob(math.exp(max(center - spread, -700.0))) if estimate > 0 else 0.0
    near_high = _prob(math.exp(min(center + spread, 700.0))) if estimate < 1 else 1.0
    start_low = near_low if rejected_above(_clamp(near_low)) else 0.0
    start_high = near_high if rejected_below(_clamp(near_high)) else 1.0
    low = _search(rejected_above, start_low, estimate, want_rejected_below=True)
    high = _search(rejected_below, estimate, start_high, want_rejected_below=False)
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
    for _ in range(14):  # ample for a bound shown with two digits
        mid = (a + b) / 2
        inside = rejected(_prob(math.exp(mid)))
        if inside == want_rejected_below:
            a = mid
        else:
            b = mid
    edge = _prob(math.exp((a + b) / 2))
    return min(max(edge, lo), hi)


@dataclass(frozen=True)
class Onset:
    """Evidence of a breach that began at some interval of the step, not knowing which.

    For every alternative j, `log_r[j]` = log Σ_s w_s Π_{i=s..t} LR_ij over the starts s seen
    so far (the Shiryaev-Roberts recursion R ← (R + w_t)·LR_t); the e-value adds the weight of
    the starts still to come. Weights: 1/(2·horizon) for each of the first `horizon` intervals
    (the step's expected length), then 1/(2k(k+1)) for the k-th one after, so a step that runs
    long keeps its guarantee.
    """

    horizon: int = 30
    intervals: int = 0
    log_r: tuple[float, ...] = (-math.inf,) * len(ODDS_MULTIPLIERS)

    def _weight(self, index: int) -> float:
        if index <= self.horizon:
            return 1.0 / (2 * self.horizon)
        k = index - self.horizon
        return 1.0 / (2 * k * (k + 1))

    def _started(self) -> float:
        t, h = self.intervals, self.horizon
        if t <= h:
            return t / (2 * h)
        k = t - h
        return 0.5 + 0.5 * (1.0 - 1.0 / (k + 1))

    def add(self, log_lrs: Sequence[float]) -> Onset:
        """One more interval with information: its log likelihood ratio per alternative."""
        index = self.intervals + 1
        log_w = math.log(self._weight(index))
        log_r = tuple(_log_add(r, log_w) + lr for r, lr in zip(self.log_r, log_lrs, strict=True))
        return Onset(self.horizon, index, log_r)

    @property
    def log_e(self) -> float:
        started = _log_mean_exp(self.log_r) + _LOG_GRID - math.log(len(self.log_r))
        unstarted = 1.0 - self._started()
        return _log_add(started, math.log(unstarted)) if unstarted > 0 else started


def _log_add(a: float, b: float) -> float:
    top = max(a, b)
    if top == -math.inf:
        return -math.inf
    if top == math.inf:
        return math.inf
    return top + math.log(math.exp(a - top) + math.exp(b - top))


def _log_average(a: float, b: float) -> float:
    top = max(a, b)
    if top == math.inf:
        return math.inf
    return top + math.log(math.exp(a - top) + math.exp(b - top)) - math.log(2.0)


@dataclass(frozen=True)
class ShareEvidence:
    """Evidence on "share of bad requests ≤ p0" over a step: totals plus `Onset`.

    `bad_holds` counts the bad events for the "holds" side, which a latency bound between two
    histogram boundaries tests at the lower one (see step_evidence.boundary_for).
    """

    p0: float
    bad: float = 0.0
    total: float = 0.0
    bad_holds: float = 0.0
    onset: Onset = field(default_factory=Onset)

    def add(self, bad: float, total: float, bad_holds: float | None = None) -> ShareEvidence:
        if total <= 0 or bad < 0:
            return self
        bad = min(bad, total)
        holds = bad if bad_holds is None else min(max(bad_holds, 0.0), total)
        onset = self.onset
        if 0.0 < self.p0 < 1.0:
            good = total - bad
            onset = onset.add([bad * per_bad + good * per_good
                               for per_bad, per_good in _alternative_logs(self.p0, True)])
        return ShareEvidence(self.p0, self.bad + bad, self.total + total, self.bad_holds + holds,
                             onset)

    @property
    def log_e_breach(self) -> float:
        mixture = bernoulli_log_e(self.bad, self.total, self.p0, above=True)
        if not 0.0 < self.p0 < 1.0:
            return mixture
        return _log_average(mixture, self.onset.log_e)

    @property
    def log_e_holds(self) -> float:
        return bernoulli_log_e(self.bad_holds, self.total, self.p0, above=False)


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
    onset: Onset = field(default_factory=Onset)

    def add(self, candidate_total: float, candidate_bad: float, baseline_total: float,
            baseline_bad: float) -> RatioEvidence:
        """Fold in one interval in which both versions took traffic."""
        if candidate_total < 0 or baseline_total < 0 or candidate_bad < 0 or baseline_bad < 0:
            return self
        above, below, onset = self.above, self.below, self.onset
        bad = candidate_bad + baseline_bad
        if candidate_total > 0 and baseline_total > 0 and bad > 0:
            p0 = _prob(self.ratio * candidate_total / baseline_total)
            if 0.0 < p0 < 1.0:
                odds = _odds(p0)
                step_above = [_log_lr(candidate_bad, baseline_bad, _prob(odds * m), p0)
                              for m in ODDS_MULTIPLIERS]
                above = tuple(a + x for a, x in zip(above, step_above, strict=True))
                below = tuple(b + _log_lr(candidate_bad, baseline_bad, _prob(odds / m), p0)
                              for b, m in zip(below, ODDS_MULTIPLIERS, strict=True))
                onset = onset.add(step_above)
        return RatioEvidence(self.ratio, above, below,
                             self.candidate_total + candidate_total,
                             self.candidate_bad + candidate_bad,
                             self.baseline_total + baseline_total,
                             self.baseline_bad + baseline_bad, onset)

    @property
    def log_e_breach(self) -> float:
        return _log_average(_log_mean_exp(self.above), self.onset.log_e)

    @property
    def log_e_holds(self) -> float:
        return _log_mean_exp(self.below)

    def point(self) -> Bounds:
        """The ratio of the two rates, without bounds."""
        n_c, n_b = self.candidate_total, self.baseline_total
        if n_c <= 0 or n_b <= 0 or self.baseline_bad <= 0:
            return Bounds(None, None, None)
        return Bounds((self.candidate_bad / n_c) / (self.baseline_bad / n_b), None, None)

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
