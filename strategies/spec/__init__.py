"""The release spec: `release.toml` → typed, frozen objects.

Every problem is reported with the file, the field path (`gate[2].max_ratio`) and what is wrong,
and all problems of a file are reported together, so one `releasedeck check` run shows them all.

The package splits along the spec's seams: `model` (the typed objects and the kinds they name),
`reader` (typed reads of one table that collect problems), the sections (`rollout`: release,
strategy, gates; `adapters`: platform, router, metrics; `notify`: alerts, webhooks) and `load`
(file → TOML → ReleaseSpec). Import from here: `from strategies.spec import ReleaseSpec`.
"""

from strategies.registry import KUBERNETES_LEVERS
from strategies.spec.errors import SpecError
from strategies.spec.load import load_runnable_spec, load_spec, parse_spec
from strategies.spec.model import (
    ALERT_KINDS,
    COMPARISONS,
    DEFAULT_QUERIES,
    FLAG_LEVERS,
    METRIC_SOURCES,
    PLATFORM_KINDS,
    REQUIREMENTS,
    ROUTER_KINDS,
    STRATEGY_KINDS,
    WEBHOOK_TYPES,
    AlertSpec,
    GateSpec,
    MetricsSpec,
    PlatformSpec,
    ReleaseInfo,
    ReleaseSpec,
    RouterSpec,
    StepSpec,
    StrategySpec,
    WebhookSpec,
)
from strategies.spec.reader import PLACEHOLDERS

__all__ = [
    "ALERT_KINDS", "COMPARISONS", "DEFAULT_QUERIES", "FLAG_LEVERS", "KUBERNETES_LEVERS", "METRIC_SOURCES",
    "PLACEHOLDERS", "PLATFORM_KINDS", "REQUIREMENTS", "ROUTER_KINDS", "STRATEGY_KINDS", "WEBHOOK_TYPES",
    "AlertSpec", "GateSpec", "MetricsSpec", "PlatformSpec", "ReleaseInfo", "ReleaseSpec",
    "RouterSpec", "SpecError", "StepSpec", "StrategySpec", "WebhookSpec", "load_runnable_spec",
    "load_spec",
    "parse_spec",
]
