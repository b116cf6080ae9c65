"""The sections that talk to the outside while a release runs: [[alert]] sinks and [[webhook]] gates."""

from __future__ import annotations

from typing import Any

from strategies.model import Severity, frozen_map
from strategies.spec.model import ALERT_KINDS, WEBHOOK_TYPES, AlertSpec, WebhookSpec
from strategies.spec.reader import table_readers


def read_alerts(problems: list, items: Any) -> tuple[AlertSpec, ...]:
    alerts: list[AlertSpec] = []
    for _i, r in table_readers(problems, items, "alert"):
        kind = r.text("kind", required=True, choices=ALERT_KINDS)
        url = r.text("url")
        if kind in ("webhook", "slack", "alertmanager") and not url:
            r.problem("url", f"is required for a {kind} alert")
        alerts.append(AlertSpec(
            kind=kind,
            url=url,
            min_severity=r.severity("min_severity", Severity.WARNING),
            secret_env=r.text("secret_env"),
            timeout=r.duration("timeout", 5.0),
            retries=r.integer("retries", 3, low=0, high=20),
            reminder=r.duration("reminder", 300.0),
            stale_after=r.duration("stale_after", 30.0),
        ))
        r.finish()
    return tuple(alerts)


def read_webhooks(problems: list, items: Any) -> tuple[WebhookSpec, ...]:
    hooks: list[WebhookSpec] = []
    for i, r in table_readers(problems, items, "webhook"):
        hooks.append(WebhookSpec(
            name=r.text("name", f"webhook-{i}"),
            type=r.text("type", required=True, choices=WEBHOOK_TYPES),
            url=r.text("url", required=True),
            timeout=r.duration("timeout", 5.0),
            metadata=frozen_map({str(k): str(v) for k, v in r.table_of("metadata").items()}),
        ))
        r.finish()
    return tuple(hooks)
