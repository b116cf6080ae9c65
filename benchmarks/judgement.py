"""Judgement benchmark: how often and how fast three kinds of gates decide right.

A seeded corpus of synthetic releases (per-second cumulative counters of a baseline and a
candidate, in the trace format: `--write DIR` saves it for `releasedeck replay`) is judged by

- evidence: the gates as they are (strategies.gates on strategies.step_evidence: anytime-valid
  sequential tests over the step's counts), with the recommended spec and no `for`;
- for-based: the gates as they were (a point comparison of the analysis window each tick,
  acting after failing for the whole `for`), as the README recommended them (`for = "10s"`);
- flagger: a Flagger-style analysis (the window's value checked every `interval`, rollback
  after `threshold` failed checks, promotion after enough passed ones).

Each judge walks the same canary (steps 10/25/50/100 %, hold 30 s) over the same counters. We
report wrong outcomes (a healthy release rolled back, a regression promoted or never decided),
the delay from onset to rollback, the time to promotion of healthy releases, and the false
rollback rate over many seeded healthy releases (the evidence gates' bound: 1 - confidence).
Detection is compared with Wald's SPRT expected sample size for the same error probabilities.

    .venv/bin/python benchmarks/judgement.py                  # everything, side by side
    .venv/bin/python benchmarks/judgement.py --healthy-runs 1000 --seeds 5
    .venv/bin/python benchmarks/judgement.py --write /tmp/corpus   # also save the traces
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from strategies.evidence import log_threshold, wald_expected_samples  # noqa: E402
from strategies.gates import GateTracker, judge  # noqa: E402
from strategies.model import GateStatus, MetricSample, Severity  # noqa: E402
from strategies.ports import RawCounters  # noqa: E402
from strategies.rates import counted_between, sample_from_counters  # noqa: E402
from strategies.spec import ReleaseSpec, parse_spec  # noqa: E402
from strategies.step_evidence import StepEvidence, advance  # noqa: E402
from strategies.trace import counters_line  # noqa: E402

BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STEPS = (10, 25, 50, 100)
HOLD = 30.0  # the design sketch's hold
INTERVAL = 1.0
WINDOW = 10.0
T0 = 1_800_000_000.0
TOTAL_RPS = 100.0  # traffic of the service, split by the canary's weight

SPEC_HEAD = f"""
[release]
service = "checkout"
baseline = "v1"
candidate = "v2"
[platform]
kind = "local"
[metrics]
interval = "{INTERVAL:g}s"
window = "{WINDOW:g}s"
stale_after = "5s"
[strategy]
kind = "canary"
steps = [{", ".join(str(s) for s in STEPS)}]
hold = "{HOLD:g}s"
"""

EVIDENCE_GATES = """
[[gate]]
name = "error-rate"
metric = "error_rate"
max = 0.05
min_requests = 20
[[gate]]
name = "error-ratio"
metric = "error_rate"
max_ratio = 1.5
min_requests = 20
[[gate]]
name = "latency-p99"
metric = "latency_p99"
max = 0.5
min_requests = 20
"""

FOR_GATES = EVIDENCE_GATES.replace("min_requests = 20", 'min_requests = 20\nfor = "10s"')

FLAGGER_EVERY = 5.0  # Flagger's analysis `interval`
FLAGGER_THRESHOLD = 3  # failed checks before rollback


# --------------------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class Scenario:
    """A release: how the candidate behaves, and what the right outcome is."""

    name: str
    bad: bool  # the right outcome is a rollback
    traffic: float = 1.0  # multiplies TOTAL_RPS
    base_errors: float = 0.01
    cand_errors: Callable[[float], float] = lambda t: 0.01
    cand_slow: Callable[[float], float] = lambda t: 0.0  # share of candidate requests at 1.2 s
    base_noise: float = 0.0  # both versions' error rate wanders by up to this much (a shared
    # dependency failing now and then), minute by minute
    onset: float = 0.0  # when the regression starts (seconds from the start)
    late: float = 0.0  # the candidate's first scrape
    resets: tuple[float, ...] = ()  # candidate counter resets at these times
    gaps: tuple[tuple[float, float], ...] = ()  # no scrapes in these intervals
    p_after: float | None = None  # the regression's steady error (or slow) share, for Wald
    p_bound: float | None = None  # the bound it breaches


def step_at(t0: float, value: float, before: float = 0.01) -> Callable[[float], float]:
    return lambda t: value if t >= t0 else before


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("healthy, low traffic", False, traffic=0.2),
    Scenario("healthy, high traffic", False, traffic=5.0),
    Scenario("healthy near the bound (3.5 % vs 5 %)", False, traffic=0.8,
             base_errors=0.03, cand_errors=lambda t: 0.035),
    Scenario("healthy, noisy baseline (shared 0-3 % swings)", False, base_noise=0.02),
    Scenario("healthy, counter resets", False, resets=(15.0, 40.0, 41.0)),
    Scenario("healthy, scrape gaps", False, gaps=((12.0, 16.0), (50.0, 53.0))),
    Scenario("healthy, late candidate", False, late=8.0),
    Scenario("error spike (50 % for 8 s)", True, onset=30.0,
             cand_errors=lambda t: 0.5 if 30 <= t < 38 else 0.01, p_after=0.5, p_bound=0.05),
    Scenario("slow burn (1 % → 15 % over 60 s)", True, onset=10.0,
             cand_errors=lambda t: 0.01 + max(0.0, min(0.14, (t - 10) * 0.14 / 60))),
    Scenario("error ratio ×3, 90 req/s (0.4 → 1.2 %)", True, traffic=9.0, onset=25.0,
             base_errors=0.004, cand_errors=step_at(25.0, 0.012, 0.004)),
    Scenario("latency regression (all requests 1.2 s)", True, onset=20.0,
             cand_slow=step_at(20.0, 1.0, 0.0), p_after=1.0, p_bound=0.01),
    Scenario("tail-only latency (3 % at 1.2 s)", True, onset=20.0,
             cand_slow=step_at(20.0, 0.03, 0.0), p_after=0.03, p_bound=0.01),
    Scenario("very low traffic, 30 % errors", True, traffic=0.05, onset=0.0,
             cand_errors=lambda t: 0.3, p_after=0.3, p_bound=0.05),
    Scenario("bad from the start (20 % errors)", True, onset=0.0,
             cand_errors=lambda t: 0.2, p_after=0.2, p_bound=0.05),
)


@dataclass
class _Counter:
    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[str, float] = field(default_factory=lambda: {**{f"{b:g}": 0.0 for b in BOUNDS},
                                                               "+Inf": 0.0})

    def serve(self, rng: random.Random, n: int, error_share: float, slow_share: float) -> None:
        errors = _binomial(rng, n, error_share)
        slow = _binomial(rng, n, slow_share)
        self.requests += n
        self.errors += errors
        for label in self.buckets:
            bound = math.inf if label == "+Inf" else float(label)
            fast = n - slow  # fast requests take 20-80 ms, slow ones 1.2 s
            fast_here = fast if bound >= 0.1 else (fast // 2 if bound >= 0.05 else 0)
            self.buckets[label] += fast_here + (slow if bound >= 1.2 else 0)

    def raw(self, version: str, at: float) -> RawCounters:
        return RawCounters(version, at, self.requests, self.errors, dict(self.buckets))


def _binomial(rng: random.Random, n: int, p: float) -> int:
    if p <= 0 or n <= 0:
        return 0
    if p >= 1:
        return n
    if n > 200:  # normal approximation keeps the corpus fast at high traffic
        return max(0, min(n, round(rng.gauss(n * p, math.sqrt(n * p * (1 - p))))))
    return sum(rng.random() < p for _ in range(n))


def _poisson(rng: random.Random, lam: float) -> int:
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, prod = math.exp(-lam), 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k


# --------------------------------------------------------------------------- one replay


@dataclass
class Outcome:
    decision: str  # "promoted" | "rolled_back" | "undecided"
    at: float | None


Judge = Callable[[ReleaseSpec], "JudgeRun"]


class JudgeRun:
    """One judge's view of one release: fed a sample pair per tick, says how each gate is."""

    needs_window = True  # judges the analysis window's values (else only the counts)

    def tick(self, now: float, step_start: float, weight: int, cand: MetricSample | None,
             base: MetricSample | None) -> tuple[bool, bool]:
        """(critical breach: roll back, all gates pass: may advance)."""
        raise NotImplementedError


class EvidenceRun(JudgeRun):
    needs_window = False  # decides on the step's counts (the tallies) alone

    def __init__(self, spec: ReleaseSpec):
        self.spec, self.evidence, self.tracker = spec, StepEvidence(), GateTracker({})

    def tick(self, now, step_start, weight, cand, base):
        self.evidence = advance(self.evidence, step_start, self.spec.gates, cand, base,
                                candidate_name="v2", baseline_name="v1", window=WINDOW,
                                horizon=max(10, math.ceil(HOLD / INTERVAL)))
        results = self.tracker.results(self.spec.gates, cand, base, now, stale=cand is None,
                                       baseline_expected=weight < 100, evidence=self.evidence,
                                       explain=False)
        self.tracker = GateTracker({r.name: r.failing_since for r in results
                                    if r.failing_since is not None})
        breach = any(r.breached and r.severity is Severity.CRITICAL for r in results)
        return breach, all(r.status is GateStatus.PASS for r in results)


class ForRun(JudgeRun):
    def __init__(self, spec: ReleaseSpec):
        self.spec, self.tracker = spec, GateTracker({})

    def tick(self, now, step_start, weight, cand, base):
        results = self.tracker.results(self.spec.gates, cand, base, now, stale=cand is None,
                                       baseline_expected=weight < 100)
        self.tracker = GateTracker({r.name: r.failing_since for r in results
                                    if r.failing_since is not None})
        breach = any(r.breached and r.severity is Severity.CRITICAL for r in results)
        return breach, all(r.status is GateStatus.PASS for r in results)


class FlaggerRun(JudgeRun):
    """Flagger's canary analysis: every `interval` each metric's window value is checked
    against its threshold; `threshold` failed checks roll back; a step advances after its hold
    once its last check passed."""

    def __init__(self, spec: ReleaseSpec):
        self.spec, self.failed, self.next_check, self.last_ok = spec, 0, None, False

    def tick(self, now, step_start, weight, cand, base):
        if self.next_check is None or now >= self.next_check:
            self.next_check = now + FLAGGER_EVERY
            verdicts = [judge(g, cand, base, stale=cand is None, baseline_expected=weight < 100)
                        for g in self.spec.gates]
            failing = any(v.status is GateStatus.FAIL for v in verdicts)
            self.failed += failing
            self.last_ok = all(v.status is GateStatus.PASS for v in verdicts)
        return self.failed >= FLAGGER_THRESHOLD, self.last_ok


def _serve(rng: random.Random, scenario: Scenario, t: float, weight: int, noise: float,
           base_c: _Counter, cand_c: _Counter) -> _Counter:
    """One interval of traffic split by `weight`; the candidate serves only once it is live
    (what was served in (t - 1, t] behaves as at t - 1) and its counters may restart. Returns
    the candidate's counter (a new one after a restart)."""
    rps = TOTAL_RPS * scenario.traffic
    cand_live = t >= scenario.late
    base_n = _poisson(rng, rps * (100 - weight) / 100 * INTERVAL)
    cand_n = _poisson(rng, rps * weight / 100 * INTERVAL) if cand_live else 0
    base_c.serve(rng, base_n, max(0.0, scenario.base_errors + noise), 0.0)
    if cand_live:
        cand_c.serve(rng, cand_n, max(0.0, scenario.cand_errors(t - INTERVAL) + noise),
                     scenario.cand_slow(t - INTERVAL))
        if any(abs(t - r) < 1e-9 for r in scenario.resets):
            return _Counter()
    return cand_c


def _scrape(version: str, counter: _Counter, series: list[RawCounters], tallies: dict[str, object],
            now: float, *, needs_window: bool, lines: list[str] | None, weight: int) -> MetricSample | None:
    """One scrape of one version, as the product would see it: the counters join the version's
    recent history and its running tally; the sample is a window (evidence judges) or the last
    interval's requests (point judges; none on the first scrape)."""
    raw = counter.raw(version, now)
    if series:
        tallies[version] = counted_between(series[-1], raw) if version not in tallies \
            else tallies[version].plus(counted_between(series[-1], raw))  # type: ignore[attr-defined]
    series.append(raw)
    del series[:-12]
    if lines is not None:
        lines.append(counters_line(raw, "checkout", weight=float(weight)))
    if needs_window:
        sample = sample_from_counters(version, series, now, WINDOW)
        return replace(sample, tally=tallies.get(version))
    if len(series) > 1:
        return MetricSample(version, now, requests=raw.requests_total - series[-2].requests_total,
                            tally=tallies.get(version))
    return None


def replay(scenario: Scenario, seed: int, make: Callable[[ReleaseSpec], JudgeRun],
           spec: ReleaseSpec, *, seconds: float = 200.0,
           lines: list[str] | None = None) -> Outcome:
    """Walk the canary over one seeded release; the same seed gives the same counters."""
    rng = random.Random(seed)
    run = make(spec)
    base_c, cand_c = _Counter(), _Counter()
    history: dict[str, list[RawCounters]] = {"v1": [], "v2": []}
    tallies: dict[str, object] = {}
    step, step_start, noise = 0, T0, 0.0
    for k in range(round(seconds / INTERVAL) + 1):
        t = k * INTERVAL
        now = T0 + t
        weight = STEPS[step] if step < len(STEPS) else 100
        if scenario.base_noise and k % 60 == 0:
            noise = rng.uniform(-scenario.base_noise / 2, scenario.base_noise)
        cand_live = t >= scenario.late
        cand_c = _serve(rng, scenario, t, weight, noise, base_c, cand_c)
        scraped = not any(a <= t < b for a, b in scenario.gaps)
        samples: dict[str, MetricSample | None] = {"v1": None, "v2": None}
        for version, counter, live in (("v1", base_c, True), ("v2", cand_c, cand_live)):
            if live and scraped:
                samples[version] = _scrape(version, counter, history[version], tallies, now,
                                           needs_window=run.needs_window, lines=lines,
                                           weight=weight)
        cand, base = samples["v2"], samples["v1"]
        if step >= len(STEPS):
            return Outcome("promoted", t)
        breach, passing = run.tick(now, step_start, weight, cand, base)
        if breach:
            return Outcome("rolled_back", t)
        if passing and now - step_start >= HOLD:
            step += 1
            step_start = now
            if step >= len(STEPS):
                return Outcome("promoted", t)
    return Outcome("undecided", None)


JUDGES: Mapping[str, tuple[Callable[[ReleaseSpec], JudgeRun], str]] = {
    "evidence": (EvidenceRun, EVIDENCE_GATES),
    "for-based": (ForRun, FOR_GATES),
    "flagger": (FlaggerRun, EVIDENCE_GATES),
}


def spec_for(gates: str) -> ReleaseSpec:
    return parse_spec(tomllib.loads(SPEC_HEAD + gates), "<judgement benchmark>")


# --------------------------------------------------------------------------- reporting


def wald_seconds(scenario: Scenario, confidence: float) -> float | None:
    """Wald's SPRT expected time to detect the regression at the candidate's first step."""
    if scenario.p_after is None or scenario.p_bound is None:
        return None
    alpha = 1 - confidence
    p1 = min(scenario.p_after, 0.999)
    requests = wald_expected_samples(scenario.p_bound, p1, alpha, alpha)
    rps = TOTAL_RPS * scenario.traffic * STEPS[0] / 100
    return requests / rps


def fmt_s(values: list[float]) -> str:
    if not values:
        return "—"
    return f"{statistics.median(values):.0f}s" if len(values) > 2 else \
        "/".join(f"{v:.0f}" for v in values) + "s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="replays per scenario (default 5)")
    parser.add_argument("--healthy-runs", type=int, default=1000,
                        help="seeded healthy replays for the false-rollback rate (default 1000)")
    parser.add_argument("--others-runs", type=int, default=200,
                        help="healthy replays for the other two judges (default 200)")
    parser.add_argument("--write", metavar="DIR", help="also write each replay's trace here")
    args = parser.parse_args(argv)
    specs = {name: spec_for(gates) for name, (_, gates) in JUDGES.items()}
    confidence = specs["evidence"].gates[0].confidence
    started = time.monotonic()
    print(f"judgement benchmark: canary {'/'.join(map(str, STEPS))} %, hold {HOLD:g}s, "
          f"scrape {INTERVAL:g}s, window {WINDOW:g}s; {args.seeds} seeds per scenario; "
          f"evidence gates at confidence {confidence:g} (α = {1 - confidence:g}, "
          f"log 1/α = {log_threshold(confidence):.2f})")
    header = f"{'scenario':46} {'right':9}" + "".join(f"{j:>24}" for j in JUDGES) + \
        f"{'2×Wald+1':>10}"
    print(header)
    wrong = dict.fromkeys(JUDGES, 0)
    within_wald = []
    for scenario in SCENARIOS:
        row = f"{scenario.name:46} {'rollback' if scenario.bad else 'promote':9}"
        for name, (make, _) in JUDGES.items():
            outcomes = []
            for seed in range(args.seeds):
                lines: list[str] | None = [] if args.write and name == "evidence" else None
                outcome = replay(scenario, seed, make, specs[name], lines=lines)
                outcomes.append(outcome)
                if lines is not None:
                    stem = scenario.name.split(" (")[0].replace(" ", "_").replace(",", "")
                    path = Path(args.write) / f"{stem}-{seed}.jsonl"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            right = "rolled_back" if scenario.bad else "promoted"
            bad = sum(o.decision != right for o in outcomes)
            wrong[name] += bad
            times = [o.at - (scenario.onset if scenario.bad else 0.0) for o in outcomes
                     if o.decision == right and o.at is not None]
            label = "delay" if scenario.bad else "promote"
            row += f"{f'{bad} wrong, {label} {fmt_s(times)}':>24}"
            if name == "evidence" and scenario.bad:
                target = wald_seconds(scenario, confidence)
                if target is not None and times:
                    within_wald.append((scenario.name, statistics.mean(times), max(times),
                                        2 * target + INTERVAL))
        target = wald_seconds(scenario, confidence)
        row += f"{'' if target is None else f'{2 * target + INTERVAL:.1f}s':>10}"
        print(row, flush=True)
    print("wrong outcomes: " + ", ".join(f"{n} {w}" for n, w in wrong.items()))
    for name, mean, worst, target in within_wald:  # Wald's figure is an expectation: the mean
        verdict = "within" if mean <= target else "OVER"
        print(f"  detection vs 2×Wald SPRT expected + 1 scrape: {name}: mean {mean:.1f}s "
              f"(worst {worst:.0f}s) {verdict} {target:.1f}s")
    healthy = [s for s in SCENARIOS if not s.bad]
    if args.healthy_runs:
        print(f"false rollbacks over seeded healthy releases ({len(healthy)} healthy kinds, "
              f"round robin):")
        for name, (make, _) in JUDGES.items():
            runs = args.healthy_runs if name == "evidence" else args.others_runs
            rolled = sum(replay(healthy[i % len(healthy)], 10_000 + i, make, specs[name]).decision
                         == "rolled_back" for i in range(runs))
            bound = f" (bound {1 - confidence:.1%})" if name == "evidence" else ""
            print(f"  {name:10} {rolled}/{runs} = {rolled / max(runs, 1):.2%}{bound}", flush=True)
    print(f"took {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
