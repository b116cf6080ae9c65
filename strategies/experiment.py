"""A/B experiments with a winner: conversion of A and B compared with anytime-valid evidence.

An A/B plan is not a 50/50 canary: it asks which version makes users do what the business
wants (orders per visit, sign-ups per landing). The service counts both (any counter pair:
`checkout_orders_total` over `checkout_visits_total` in the demo); each tick the tracker folds
in what both versions counted since the last tick, and the experiment ends as soon as the
evidence names a winner, or when its duration is over without one (A stays: no winner is not a
reason to change).

The test is s13's conditional-binomial e-process (`strategies.evidence.RatioEvidence`), read
from both sides: evidence that B converts more than A names B, evidence that it converts less
names A. Each side decides at log(2/α), so the chance of naming any winner when A and B are
equal stays under α = 1 - confidence however often the readout is looked at (Ville's
inequality; a fixed-horizon test peeked at every second would not). The interval shown is the
one that matches: the lift no side can reject yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from strategies.evidence import RatioEvidence, log_threshold
from strategies.model import MetricSample, Readout

SUCCESS_KEY = "experiment:success"
"""Custom metric key under which a source reports a version's cumulative successes (orders)."""
TRIALS_KEY = "experiment:trials"
"""... and its cumulative trials (visits)."""


@dataclass(frozen=True)
class ExperimentSpec:
    """`[strategy.experiment]`: which counters make the conversion, and how sure to be."""

    success: str = "checkout_orders_total"  # counter of successes (scrape: metric name)
    trials: str = "checkout_visits_total"  # counter of trials
    success_query: str = ""  # PromQL template ({service}, {version}) instead of the name
    trials_query: str = ""
    confidence: float = 0.95
    min_trials: int = 100  # per version, before any winner can be named

    def query(self, which: str) -> str:
        """PromQL (template) for the cumulative count of `success` or `trials`."""
        given = self.success_query if which == "success" else self.trials_query
        name = self.success if which == "success" else self.trials
        # a template: PromQL's own braces doubled, the placeholders single
        return given or "sum(" + name + '{{service="{service}",version="{version}"}})'


class ConversionTracker:
    """Folds each tick's new trials and successes of A and B into the evidence. Pure."""

    def __init__(self, spec: ExperimentSpec, control: str, treatment: str):
        self.spec = spec
        self.control = control
        self.treatment = treatment
        self.evidence = RatioEvidence(1.0)
        self._last: dict[str, tuple[float, float]] = {}
        self._winner: str | None = None

    @property
    def winner(self) -> str | None:
        """The version the evidence named (None until it does; once named it stays)."""
        return self._winner

    @property
    def threshold(self) -> float:
        return log_threshold(1.0 - (1.0 - self.spec.confidence) / 2)  # α/2 per side

    def observe(self, samples: Mapping[str, MetricSample]) -> None:
        """One tick: the versions' cumulative counts; what grew since the last tick is added."""
        counts: dict[str, tuple[float, float]] = {}
        for version in (self.control, self.treatment):
            sample = samples.get(version)
            if sample is None:
                return
            success, trials = sample.custom.get(SUCCESS_KEY), sample.custom.get(TRIALS_KEY)
            if success is None or trials is None:
                return
            counts[version] = (success, trials)
        self.add_totals(counts)

    def add_totals(self, counts: Mapping[str, tuple[float, float]]) -> None:
        """(successes, trials) so far per version; a count that went down starts a new origin."""
        previous, self._last = self._last, dict(counts)
        if set(previous) != {self.control, self.treatment}:
            return
        (a_s, a_t), (b_s, b_t) = (
            (counts[v][0] - previous[v][0], counts[v][1] - previous[v][1])
            for v in (self.control, self.treatment))
        if min(a_s, a_t, b_s, b_t) < 0 or a_s > a_t or b_s > b_t:
            return  # an instance restarted: its counters begin again
        self.add(a_t, a_s, b_t, b_s)

    def add(self, control_trials: float, control_success: float, treatment_trials: float,
            treatment_success: float) -> None:
        """One interval's new counts of both versions (the unit the tests simulate in)."""
        self.evidence = self.evidence.add(treatment_trials, treatment_success, control_trials,
                                          control_success)
        if self._winner is None:
            self._winner = self._decide()

    def _decide(self) -> str | None:
        ev = self.evidence
        if min(ev.candidate_total, ev.baseline_total) < self.spec.min_trials:
            return None
        if ev.log_e_breach >= self.threshold:
            return self.treatment
        if ev.log_e_holds >= self.threshold:
            return self.control
        return None

    def readout(self) -> Readout:
        ev = self.evidence
        lift = low = high = None
        if ev.candidate_total > 0 and ev.baseline_total > 0 and ev.baseline_bad > 0:
            bounds = ev.estimate(1.0 - (1.0 - self.spec.confidence) / 2)
            lift = None if bounds.estimate is None else bounds.estimate - 1
            low = None if bounds.low is None else bounds.low - 1
            high = None if bounds.high is None else bounds.high - 1
        return Readout(control=self.control, treatment=self.treatment,
                       confidence=self.spec.confidence,
                       control_trials=ev.baseline_total, control_success=ev.baseline_bad,
                       treatment_trials=ev.candidate_total, treatment_success=ev.candidate_bad,
                       lift=lift, low=low, high=high, evidence_better=ev.log_e_breach,
                       evidence_worse=ev.log_e_holds, threshold=self.threshold,
                       winner=self._winner)
