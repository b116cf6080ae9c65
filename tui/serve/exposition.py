"""releasedeck's own series in Prometheus exposition format, built from the published State.

A custom collector renders the latest State at scrape time (nothing is kept in step by hand), so
/metrics can never disagree with what the screens show. Counters that a single State cannot
carry (decisions by kind, collection errors, tick durations) are counted as the driver publishes.

Series (all labelled `release`):
- releasedeck_info{strategy,platform,source,baseline,candidate} 1
- releasedeck_phase{phase} 1 for the current phase, 0 for the others (a state set)
- releasedeck_step (1-based current step), releasedeck_steps
- releasedeck_weight_desired_percent{version,role}, releasedeck_weight_actual_percent{version,role}
- releasedeck_gate_value / _bound / _baseline / _samples / _breached {gate,metric,severity}
- releasedeck_gate_status{gate,status} 1 for the gate's current status (pass|fail|unknown)
- releasedeck_hold_remaining_seconds, releasedeck_metrics_stale (0/1)
- releasedeck_seconds_since_good_metrics (absent until the first good read)
- releasedeck_decisions_total{kind}, releasedeck_collection_errors_total{part}
- releasedeck_tick_duration_seconds (histogram), releasedeck_followers
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from strategies.model import Event, GateStatus, Phase, Snapshot, State

TICK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


class ReleaseMetrics(Collector):
    """Listener and collector: counts what passes, renders the latest State when scraped."""

    def __init__(self, release: str, *, clock: Callable[[], float] = time.time,
                 followers: Callable[[], int] = lambda: 0):
        self.release = release
        self.clock = clock
        self.followers = followers
        self.state: State | None = None
        self.decisions: Counter[str] = Counter()
        self.collection_errors: Counter[str] = Counter({"platform": 0, "metrics": 0})
        self.registry = CollectorRegistry(auto_describe=False)
        self.tick_duration = Histogram("releasedeck_tick_duration_seconds",
                                       "Duration of one collect-decide-act tick",
                                       ["release"], buckets=TICK_BUCKETS, registry=self.registry)
        self.registry.register(self)

    # ------------------------------------------------------------------ listener

    def on_state(self, state: State) -> None:
        self.state = state

    def on_event(self, event: Event) -> None:
        if "phase" in event.details and "actor" in event.details:  # a decision's event
            self.decisions[event.event] += 1

    def on_snapshot(self, snapshot: Snapshot, raw: object = ()) -> None:
        if snapshot.platform is not None and snapshot.platform.error:
            self.collection_errors["platform"] += 1
        if snapshot.metrics is not None and snapshot.metrics.error:
            self.collection_errors["metrics"] += 1

    def on_tick(self, seconds: float) -> None:
        self.tick_duration.labels(self.release).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    # ------------------------------------------------------------------ collector

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        state = self.state
        if state is None:
            return
        rel = state.release
        baseline = next((v.version for v in state.versions if v.role.value == "baseline"), "")
        candidate = next((v.version for v in state.versions if v.role.value == "candidate"), "")
        info = GaugeMetricFamily("releasedeck_info", "The release this driver runs",
                                 labels=["release", "strategy", "platform", "source", "baseline", "candidate"])
        info.add_metric([rel, state.strategy, state.platform_kind, state.metrics_source, baseline, candidate], 1)
        yield info

        phase = GaugeMetricFamily("releasedeck_phase", "1 for the rollout's current phase",
                                  labels=["release", "phase"])
        for each in Phase:
            phase.add_metric([rel, each.value], 1.0 if state.rollout.phase is each else 0.0)
        yield phase

        steps = len(state.steps)
        step = GaugeMetricFamily("releasedeck_step", "Current step, 1-based (0 before the first)",
                                 labels=["release"])
        started = state.rollout.phase is not Phase.PENDING
        step.add_metric([rel], float(min(state.rollout.step + 1, steps) if started else 0))
        yield step
        total = GaugeMetricFamily("releasedeck_steps", "Steps in the plan", labels=["release"])
        total.add_metric([rel], float(steps))
        yield total

        desired = GaugeMetricFamily("releasedeck_weight_desired_percent",
                                    "Traffic percent the rollout wants per version",
                                    labels=["release", "version", "role"])
        actual = GaugeMetricFamily("releasedeck_weight_actual_percent",
                                   "Traffic percent the router or platform reports per version",
                                   labels=["release", "version", "role"])
        for view in state.versions:
            desired.add_metric([rel, view.version, view.role.value], float(view.desired_weight))
            if _finite(view.actual_weight):
                actual.add_metric([rel, view.version, view.role.value], float(view.actual_weight or 0.0))
        yield desired
        yield actual

        yield from self._gates(state)

        hold = GaugeMetricFamily("releasedeck_hold_remaining_seconds", "Analysis time left in this step",
                                 labels=["release"])
        hold.add_metric([rel], state.hold_left())
        yield hold
        stale = GaugeMetricFamily("releasedeck_metrics_stale", "1 while metrics are stale or missing",
                                  labels=["release"])
        stale.add_metric([rel], 1.0 if state.stale else 0.0)
        yield stale
        if state.metrics_at is not None:
            age = GaugeMetricFamily("releasedeck_seconds_since_good_metrics",
                                    "Seconds since metrics were last read successfully", labels=["release"])
            age.add_metric([rel], max(0.0, self.clock() - state.metrics_at))
            yield age

        decisions = CounterMetricFamily("releasedeck_decisions", "Decisions taken, by kind",
                                        labels=["release", "kind"])
        for kind, count in sorted(self.decisions.items()):
            decisions.add_metric([rel, kind], float(count))
        yield decisions
        errors = CounterMetricFamily("releasedeck_collection_errors", "Failed collections, by part",
                                     labels=["release", "part"])
        for part, count in sorted(self.collection_errors.items()):
            errors.add_metric([rel, part], float(count))
        yield errors
        followers = GaugeMetricFamily("releasedeck_followers", "Screens following this driver now",
                                      labels=["release"])
        followers.add_metric([rel], float(self.followers()))
        yield followers

    def _gates(self, state: State) -> Iterator[Metric]:
        rel = state.release
        labels = ["release", "gate", "metric", "severity"]
        value = GaugeMetricFamily("releasedeck_gate_value", "The gate's measured value", labels=labels)
        bound = GaugeMetricFamily("releasedeck_gate_bound", "The bound that decides (absolute or "
                                  "baseline × ratio)", labels=labels)
        baseline = GaugeMetricFamily("releasedeck_gate_baseline_value", "The baseline's value the gate "
                                     "compares with", labels=labels)
        samples = GaugeMetricFamily("releasedeck_gate_samples", "Requests behind the gate's evidence",
                                    labels=labels)
        breached = GaugeMetricFamily("releasedeck_gate_breached", "1 once the gate failed for its whole "
                                     "`for` duration", labels=labels)
        status = GaugeMetricFamily("releasedeck_gate_status", "1 for the gate's current status",
                                   labels=["release", "gate", "status"])
        for gate in state.gates:
            key = [rel, gate.name, gate.metric, gate.severity.value]
            for family, number in ((value, gate.value), (bound, gate.threshold),
                                   (baseline, gate.baseline), (samples, gate.samples)):
                if _finite(number):
                    family.add_metric(key, float(number or 0.0))
            breached.add_metric(key, 1.0 if gate.breached else 0.0)
            for each in GateStatus:
                status.add_metric([rel, gate.name, each.value], 1.0 if gate.status is each else 0.0)
        yield from (value, bound, baseline, samples, breached, status)
