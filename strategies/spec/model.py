"""The typed release spec: frozen objects a `release.toml` becomes, and the kinds it may name.

Nothing here reads a file or judges a value; `strategies.spec.load` builds these objects and
reports what is wrong with the input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strategies.cohorts import CohortMatch, UserKey
from strategies.experiment import ExperimentSpec
from strategies.model import Severity, frozen_map, no_entries
from strategies.registry import ALERT, PLATFORM, ROUTER, SOURCE, kinds

STRATEGY_KINDS = ("canary", "blue-green", "rolling", "ab", "ring", "flag")
PLATFORM_KINDS = kinds(PLATFORM)
METRIC_SOURCES = kinds(SOURCE)
ROUTER_KINDS = kinds(ROUTER)
FLAG_LEVERS = ("flagd", "unleash")  # router kinds that move a feature flag, not traffic
ALERT_KINDS = kinds(ALERT)
WEBHOOK_TYPES = ("pre-rollout", "confirm-promotion", "rollout")
COMPARISONS = ("none", "proportion", "mannwhitney")
REQUIREMENTS = ("no-breach", "evidence")  # what a gate needs to pass: no evidence of a breach, or evidence it holds

DEFAULT_QUERIES: Mapping[str, str] = frozen_map(
    {
        "requests": (
            'sum by ({version_label}) (increase(http_requests_total{{service="{service}"}}[{window}]))'
        ),
        "errors": (
            "sum by ({version_label}) (increase(http_requests_total"
            '{{service="{service}",code=~"5.."}}[{window}]))'
        ),
        "throughput": (
            'sum by ({version_label}) (rate(http_requests_total{{service="{service}"}}[{window}]))'
        ),
        "latency": (
            "histogram_quantile({quantile}, sum by ({version_label}, le) "
            '(rate(http_request_duration_seconds_bucket{{service="{service}"}}[{window}])))'
        ),
    }
)
"""PromQL templates. Placeholders: {service}, {version}, {window}, {version_label}, {quantile}.
Literal braces of PromQL are doubled, as in Python format strings. A template without
{version} is run once for all versions and must group `by` the version label."""


# --------------------------------------------------------------------------- the typed spec


@dataclass(frozen=True)
class ReleaseInfo:
    service: str
    baseline: str
    candidate: str
    journal: str = ""  # path; empty means next to the spec
    environment: str = ""  # e.g. staging, production: the fleet groups a service's releases by it


@dataclass(frozen=True)
class PlatformSpec:
    kind: str
    selector: str = ""
    version_label: str = "version"
    replicas: int = 1  # instances per version at full size
    options: Mapping[str, Any] = field(default_factory=no_entries)  # kind-specific keys, validated here


@dataclass(frozen=True)
class RouterSpec:
    kind: str  # local | haproxy | platform | none
    options: Mapping[str, Any] = field(default_factory=no_entries)


@dataclass(frozen=True)
class MetricsSpec:
    source: str = "scrape"
    url: str = ""
    window: float = 30.0
    interval: float = 1.0
    timeout: float = 2.0
    stale_after: float = 10.0
    version_label: str = "version"
    queries: Mapping[str, str] = field(default_factory=lambda: DEFAULT_QUERIES)
    metrics_path: str = "/metrics"
    request_metric: str = "http_requests_total"
    latency_metric: str = "http_request_duration_seconds"
    error_codes: str = "5.."  # regex on the `code` label for failed requests


@dataclass(frozen=True)
class StepSpec:
    """One step of a plan as written: a weight with a hold, or a pause for the operator."""

    weight: int | None = None
    hold: float | None = None
    pause: bool = False  # wait for the operator's promote
    name: str = ""
    match: CohortMatch | None = None  # a ring's cohort: these users see the candidate from here on
    mirror: int | None = None  # a dark step: percent of live traffic copied to the candidate


@dataclass(frozen=True)
class StrategySpec:
    kind: str
    steps: tuple[StepSpec, ...] = ()
    hold: float = 30.0
    # blue-green
    preview_hold: float = 0.0
    scale_down_delay: float = 30.0
    auto_promote: bool = True
    # the gates judge the preview (traffic must reach the candidate before the switch: preview
    # traffic); false leaves the preview on time alone, for setups that send it none
    preview_analysis: bool = True
    # rolling
    max_surge: int = 1
    max_unavailable: int = 0
    # ab
    split: int = 50
    duration: float = 300.0
    # flag (Flagger's words)
    flag: str = ""
    start_weight: int = 0
    step_weight: int = 10
    max_weight: int = 50
    workload: str = ""  # with a flag lever: the one version whose instances hold both code paths
    kill_switch: bool = False  # rollback also switches the flag off
    drop_targeting: bool = False  # promotion leaves the flag with no targeting, the candidate its default
    # cohorts (ring, ab, dark): who is who
    sticky: UserKey | None = None  # weighted shares by user, not by request
    experiment: ExperimentSpec | None = None  # ab: the conversion that names a winner


@dataclass(frozen=True)
class GateSpec:
    name: str
    metric: str
    query: str = ""  # custom PromQL, for metrics that are not built in
    max: float | None = None
    min: float | None = None
    max_ratio: float | None = None
    for_seconds: float = 0.0
    severity: Severity = Severity.CRITICAL
    min_requests: float = 20.0
    compare: str = "none"  # statistical comparison with the baseline
    confidence: float = 0.99  # a wrong fail at most 1 - confidence of the time, however often looked at
    require: str = "no-breach"  # "evidence": pass only once the data show the bound holds


@dataclass(frozen=True)
class AlertSpec:
    kind: str
    url: str = ""
    min_severity: Severity = Severity.WARNING
    secret_env: str = ""  # env var holding the HMAC secret (never the secret itself)
    timeout: float = 5.0
    retries: int = 3
    reminder: float = 300.0
    stale_after: float = 30.0  # alert when metrics are stale this long


@dataclass(frozen=True)
class WebhookSpec:
    name: str
    type: str
    url: str
    timeout: float = 5.0
    metadata: Mapping[str, str] = field(default_factory=no_entries)


@dataclass(frozen=True)
class ReleaseSpec:
    path: str
    release: ReleaseInfo
    platform: PlatformSpec
    router: RouterSpec
    metrics: MetricsSpec
    strategy: StrategySpec
    gates: tuple[GateSpec, ...] = ()
    alerts: tuple[AlertSpec, ...] = ()
    webhooks: tuple[WebhookSpec, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=no_entries)  # [demo] and other surface-only tables

    @property
    def versions(self) -> tuple[str, str]:
        return (self.release.baseline, self.release.candidate)

    @property
    def workloads(self) -> tuple[str, ...]:
        """What runs on the platform: both versions, or for a flag release the one workload
        whose instances serve both variants (then `versions` are the flag's variants)."""
        return (self.strategy.workload,) if self.strategy.workload else self.versions

    def journal_path(self) -> Path:
        if self.release.journal:
            path = Path(self.release.journal)
            return path if path.is_absolute() else Path(self.path).parent / path
        spec = Path(self.path)
        return spec.parent / f".{spec.stem}.releasedeck.journal"
