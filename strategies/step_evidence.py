"""What a step has seen so far: the counts and interval-by-interval evidence its gates judge.

Why a module: an anytime-valid test is only as good as the counts fed to it. Each tick adds the
requests counted since the previous tick (the difference of two `Tally`s of the same source),
so nothing is counted twice however the analysis window overlaps; a counter reset or a new
source origin re-anchors without adding anything; a scrape gap adds the gap's counts when the
next scrape arrives (they were really served). Entering a step, or retrying, starts from zero.
A source without tallies falls back to the window's counts scaled to the time since the last
tick (approximate; said on screen). The accumulated part is journaled now and then, so a
restart continues the step's evidence instead of starting over.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from strategies.evidence import ODDS_MULTIPLIERS, Onset, RatioEvidence, ShareEvidence
from strategies.model import MetricSample, Tally, frozen_map, no_entries
from strategies.rates import histogram_quantile, parse_bound
from strategies.spec import GateSpec

QUANTILE = {"latency_p50": 0.5, "latency_p95": 0.95, "latency_p99": 0.99}

MEDIAN_SHIFT = 1.12
"""For compare = "mannwhitney": the candidate's share of requests above the baseline's median
may be at most this multiple of the baseline's (≈ a Vargha-Delaney A of 0.56, a "small"
effect, where half the baseline is above its median): a sequential stand-in for the rank test,
which has no anytime-valid form on binned data."""


@dataclass(frozen=True)
class Anchor:
    """The last tally of a version that has been counted, and when it was read."""

    at: float
    tally: Tally | None
    window_sample: MetricSample | None = None


@dataclass(frozen=True)
class StepEvidence:
    """Counts and evidence of the current step (`epoch` = when the step was entered)."""

    epoch: float | None = None
    candidate: Tally = field(default_factory=Tally)
    baseline: Tally = field(default_factory=Tally)
    ratios: Mapping[str, RatioEvidence] = field(default_factory=no_entries)  # gate:check -> evidence
    shares: Mapping[str, ShareEvidence] = field(default_factory=no_entries)  # gate:check -> evidence
    boundaries: Mapping[str, float] = field(default_factory=no_entries)  # gate -> fixed `le`
    failed: frozenset[str] = frozenset()  # gates whose breach evidence crossed: stays failed
    held: frozenset[str] = frozenset()  # gates whose "bound holds" evidence crossed
    approximate: bool = False  # some counts came from window samples, not tallies
    horizon: int = 30  # intervals the step is expected to last (weights of Onset)
    anchors: Mapping[str, Anchor] = field(default_factory=no_entries)  # version -> anchor (live only)
    saved_at: float | None = None  # last journaled

    # ------------------------------------------------------------------ journal form

    def to_record(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "candidate": _tally_dict(self.candidate),
            "baseline": _tally_dict(self.baseline),
            "ratios": {name: {"ratio": r.ratio, "above": list(r.above), "below": list(r.below),
                              "totals": [r.candidate_total, r.candidate_bad, r.baseline_total,
                                         r.baseline_bad], "onset": _onset_dict(r.onset)}
                       for name, r in self.ratios.items()},
            "shares": {name: {"p0": e.p0, "counts": [e.bad, e.total, e.bad_holds],
                              "onset": _onset_dict(e.onset)}
                       for name, e in self.shares.items()},
            "boundaries": dict(self.boundaries),
            "failed": sorted(self.failed),
            "held": sorted(self.held),
            "approximate": self.approximate,
            "horizon": self.horizon,
            "counted_to": {version: a.at for version, a in self.anchors.items()},
        }

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> StepEvidence | None:
        """The journaled form back; None when it is not one (an older or damaged record)."""
        try:
            ratios = {}
            for name, r in dict(data.get("ratios") or {}).items():
                above = tuple(float(x) for x in r["above"])
                below = tuple(float(x) for x in r["below"])
                if len(above) != len(ODDS_MULTIPLIERS) or len(below) != len(ODDS_MULTIPLIERS):
                    return None  # recorded with another grid: its evidence does not carry over
                c_total, c_bad, b_total, b_bad = (float(x) for x in r["totals"])
                ratios[str(name)] = RatioEvidence(float(r["ratio"]), above, below, c_total,
                                                  c_bad, b_total, b_bad, _onset_from(r["onset"]))
            shares = {}
            for name, e in dict(data.get("shares") or {}).items():
                bad, total, bad_holds = (float(x) for x in e["counts"])
                shares[str(name)] = ShareEvidence(float(e["p0"]), bad, total, bad_holds,
                                                  _onset_from(e["onset"]))
            epoch = data.get("epoch")
            return cls(
                epoch=None if epoch is None else float(epoch),
                candidate=_tally_from(data["candidate"]), baseline=_tally_from(data["baseline"]),
                ratios=frozen_map(ratios), shares=frozen_map(shares),
                boundaries=frozen_map({str(k): float(v)
                                       for k, v in dict(data.get("boundaries") or {}).items()}),
                failed=frozenset(str(x) for x in data.get("failed") or ()),
                held=frozenset(str(x) for x in data.get("held") or ()),
                approximate=bool(data.get("approximate", False)),
                horizon=int(data.get("horizon", 30)),
                # A restarted source has a new origin: its first tally only anchors; a window
                # sample counts from where the journal says counting stopped.
                anchors=frozen_map({str(v): Anchor(float(at), None)
                                    for v, at in dict(data.get("counted_to") or {}).items()}))
        except (KeyError, TypeError, ValueError):
            return None


def _onset_dict(onset: Onset) -> dict[str, Any]:
    # -inf (no start seen yet) is not JSON: written as None
    return {"horizon": onset.horizon, "intervals": onset.intervals,
            "log_r": [None if r == -math.inf else r for r in onset.log_r]}


def _onset_from(data: Mapping[str, Any]) -> Onset:
    log_r = tuple(-math.inf if r is None else float(r) for r in data["log_r"])
    if len(log_r) != len(ODDS_MULTIPLIERS):
        raise ValueError("recorded with another grid")
    return Onset(int(data["horizon"]), int(data["intervals"]), log_r)


def _tally_dict(tally: Tally) -> dict[str, Any]:
    return {"requests": tally.requests, "errors": tally.errors,
            "buckets": dict(tally.latency_buckets)}


def _tally_from(data: Mapping[str, Any]) -> Tally:
    return Tally(float(data["requests"]), float(data["errors"]),
                 frozen_map({str(k): float(v) for k, v in dict(data.get("buckets") or {}).items()}))


# --------------------------------------------------------------------------- counting


def _increment(anchor: Anchor | None, sample: MetricSample | None, window: float,
               epoch: float) -> tuple[Tally | None, bool]:
    """Counts served since the anchor (None: nothing new or no anchor yet), and whether they
    are approximate (taken from a window sample for lack of a tally)."""
    if sample is None or (anchor is not None and sample.at <= anchor.at):
        return None, False
    if sample.tally is not None:
        if anchor is None or anchor.tally is None:
            return None, False  # the first tally only anchors: its origin is arbitrary
        return sample.tally.minus(anchor.tally), False
    if sample.requests is None or window <= 0:
        return None, False
    # Without tallies: a window counts for the time it adds to what was counted (or to the
    # step), so a re-run tick or a resumed step counts nothing twice.
    since = epoch if anchor is None else max(anchor.at, epoch)
    share = min(1.0, max(0.0, sample.at - since) / window)
    if share <= 0:
        return None, False
    errors = _window_errors(sample)
    return Tally(sample.requests, errors, sample.latency_buckets).scaled(share), True


def _window_errors(sample: MetricSample) -> float:
    """Failed requests in a window sample: its count, else its error ratio times its requests
    (a source may report only the ratio; reading that as "no errors" would pass any candidate)."""
    if sample.errors is not None:
        return sample.errors
    if sample.error_ratio is not None and sample.requests is not None:
        return min(1.0, max(0.0, sample.error_ratio)) * sample.requests
    return 0.0


def advance(evidence: StepEvidence, epoch: float | None, gates: tuple[GateSpec, ...],
            candidate: MetricSample | None, baseline: MetricSample | None, *,
            candidate_name: str, baseline_name: str, window: float,
            horizon: int = 30) -> StepEvidence:
    """Add this tick's new counts (if any) to the step's evidence. Pure."""
    if epoch != evidence.epoch:  # a new step, or a retry: start from zero, keep the anchors
        evidence = StepEvidence(epoch=epoch, anchors=evidence.anchors, horizon=horizon)
    c_new = b_new = None
    c_approx = b_approx = False
    if epoch is not None:
        c_new, c_approx = _increment(evidence.anchors.get(candidate_name), candidate, window, epoch)
        b_new, b_approx = _increment(evidence.anchors.get(baseline_name), baseline, window, epoch)
    anchors = _moved_anchors(evidence.anchors, epoch, ((candidate_name, candidate),
                                                       (baseline_name, baseline)))
    evidence = replace(evidence, anchors=anchors)
    if epoch is None or (c_new is None and b_new is None):
        return evidence
    counting = _Counting(evidence, c_new, b_new)
    for gate in gates:
        counting.count_gate(gate)
    return counting.result(approximate=evidence.approximate or c_approx or b_approx)


def _moved_anchors(anchors: Mapping[str, Anchor], epoch: float | None,
                   samples: tuple[tuple[str, MetricSample | None], ...]) -> Mapping[str, Anchor]:
    """Each version's anchor moves to a newer sample, so the next tick counts only what came
    after it; outside a step only a tally anchors (a window not counted stays countable)."""
    moved = dict(anchors)
    for name, sample in samples:
        if sample is None or (name in moved and sample.at <= moved[name].at):
            continue
        if epoch is not None or sample.tally is not None:
            moved[name] = Anchor(sample.at, sample.tally)
    return frozen_map(moved)


class _Counting:
    """One tick's new counts being added to each gate's tests (shares, ratios, and the
    baseline-relative boundaries they are tested at). Lives for one `advance` call."""

    def __init__(self, evidence: StepEvidence, c_new: Tally | None, b_new: Tally | None) -> None:
        self.evidence, self.c_new, self.b_new = evidence, c_new, b_new
        self.cand_total = evidence.candidate.plus(c_new) if c_new is not None else evidence.candidate
        self.base_total = evidence.baseline.plus(b_new) if b_new is not None else evidence.baseline
        self.boundaries = dict(evidence.boundaries)
        self.ratios = dict(evidence.ratios)
        self.shares = dict(evidence.shares)

    def result(self, *, approximate: bool) -> StepEvidence:
        return replace(self.evidence, candidate=self.cand_total, baseline=self.base_total,
                       ratios=frozen_map(self.ratios), shares=frozen_map(self.shares),
                       boundaries=frozen_map(self.boundaries), approximate=approximate)

    def count_share(self, key: str, p0: float, bad: float | None, total: float,
                    bad_holds: float | None = None) -> None:
        """A share test exists from the step's first counted tick, even before it counts."""
        current = self.shares.get(key) or ShareEvidence(p0, onset=Onset(self.evidence.horizon))
        if bad is not None and total > 0:
            current = current.add(bad, total, bad_holds)
        self.shares[key] = current

    def _ratio(self, key: str, ratio: float) -> RatioEvidence:
        return self.ratios.get(key) or RatioEvidence(ratio, onset=Onset(self.evidence.horizon))

    def count_gate(self, gate: GateSpec) -> None:
        if gate.metric == "error_rate":
            self._count_error_rate(gate)
            return
        quantile = QUANTILE.get(gate.metric)
        if quantile is not None:
            self._count_latency_gate(gate, quantile)

    def _count_error_rate(self, gate: GateSpec) -> None:
        """Failed requests as a share (against `max`) and against the baseline's (ratio tests,
        which count only a tick with new counts on both sides)."""
        c_new, b_new = self.c_new, self.b_new
        if gate.max is not None:
            self.count_share(f"{gate.name}:max", gate.max, c_new.errors if c_new else None,
                             c_new.requests if c_new else 0.0)
        for key, ratio in _error_ratio_keys(gate):
            current = self._ratio(key, ratio)
            if c_new is not None and b_new is not None:
                current = current.add(c_new.requests, c_new.errors, b_new.requests, b_new.errors)
            self.ratios[key] = current

    def _count_latency_gate(self, gate: GateSpec, quantile: float) -> None:
        """A latency quantile bound as the share of requests slower than it (at most 1 - q);
        a baseline-relative bound once the baseline has fixed where it lies."""
        p0 = round(1.0 - quantile, 12)
        if gate.max is not None:
            _count_latency(self.count_share, f"{gate.name}:max", p0, self.c_new, gate.max)
        if gate.max_ratio is not None:
            key = f"{gate.name}:max_ratio"
            self._fix_boundary(key, gate, lambda buckets: _quantile(buckets, quantile), gate.max_ratio)
            if key in self.boundaries:
                _count_latency(self.count_share, key, p0, self.c_new, self.boundaries[key])
        if gate.compare == "mannwhitney":
            self._count_median_shift(gate)

    def _count_median_shift(self, gate: GateSpec) -> None:
        """The rank test's stand-in: the share of each side above the baseline's median
        boundary, compared as a ratio."""
        key = f"{gate.name}:mannwhitney"
        self._fix_boundary(key, gate, lambda buckets: _boundary_at_share(buckets, 0.5))
        current = self._ratio(key, MEDIAN_SHIFT)
        bound = self.boundaries.get(key)
        c_new, b_new = self.c_new, self.b_new
        if bound is not None and c_new is not None and b_new is not None:
            current = current.add(histogram_count(c_new), slower_than(c_new, bound) or 0.0,
                                  histogram_count(b_new), slower_than(b_new, bound) or 0.0)
        self.ratios[key] = current

    def _fix_boundary(self, key: str, gate: GateSpec,
                      find: Callable[[Mapping[str, float]], float | None], scale: float = 1.0) -> None:
        """A baseline-relative boundary is fixed once, when the baseline has counted enough
        requests: the step's later counts are all tested against the same bound."""
        if key in self.boundaries or self.base_total.requests < max(gate.min_requests, 1):
            return
        found = find(self.base_total.latency_buckets)
        if found is not None:
            self.boundaries[key] = found * scale


def _count_latency(count_share: Callable[..., None], key: str, p0: float, new: Tally | None,
                   limit: float) -> None:
    """Requests slower than a latency bound: at the boundary at or above it for a breach, at
    or below it for "holds" (see boundary_for)."""
    if new is None:
        count_share(key, p0, None, 0.0)
        return
    up = boundary_for(new, limit, at_or_above=True)
    down = boundary_for(new, limit, at_or_above=False)
    total = histogram_count(new)
    slow_up = slower_than(new, up) if up is not None else 0.0  # no boundary above: no breach shown
    slow_down = slower_than(new, down) if down is not None else total  # none below: no hold shown
    count_share(key, p0, slow_up, total, slow_down)


def _error_ratio_keys(gate: GateSpec) -> list[tuple[str, float]]:
    keys = []
    if gate.max_ratio is not None:
        keys.append((f"{gate.name}:max_ratio", gate.max_ratio))
    if gate.compare == "proportion":
        keys.append((f"{gate.name}:proportion", 1.0))
    return keys


def _buckets(table: Mapping[str, float]) -> list[tuple[float, float]]:
    out = []
    for label, count in table.items():
        bound = parse_bound(label)
        if bound is not None and math.isfinite(count):
            out.append((bound, count))
    return sorted(out)


def slower_than(tally: Tally, bound: float) -> float | None:
    """Requests above the bucket boundary `bound` (None without that boundary or a +Inf)."""
    table = dict(_buckets(tally.latency_buckets))
    if bound not in table or math.inf not in table:
        return None
    return max(0.0, table[math.inf] - table[bound])


def histogram_count(tally: Tally) -> float:
    """Requests in the latency histogram (its +Inf bucket), else the request count."""
    for bound, count in _buckets(tally.latency_buckets):
        if bound == math.inf:
            return count
    return tally.requests


def boundary_for(tally: Tally, limit: float, *, at_or_above: bool) -> float | None:
    """The histogram boundary a latency bound is tested at.

    A breach is tested at the first boundary at or above the bound (requests slower than it
    are surely slower than the bound, so a breach found there is real); "holds" at the last
    one at or below (requests faster than it are surely faster than the bound).
    """
    finite = [b for b, _ in _buckets(tally.latency_buckets) if math.isfinite(b)]
    if at_or_above:
        above = [b for b in finite if b >= limit - 1e-12]
        return above[0] if above else None
    below = [b for b in finite if b <= limit + 1e-12]
    return below[-1] if below else None


def _boundary_at_share(table: Mapping[str, float], share: float) -> float | None:
    buckets = _buckets(table)
    if not buckets or buckets[-1][0] != math.inf or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    for bound, count in buckets:
        if math.isfinite(bound) and count >= share * total:
            return bound
    return None


def _quantile(table: Mapping[str, float], q: float) -> float | None:
    return histogram_quantile(q, dict(_buckets(table)))
