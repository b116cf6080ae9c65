"""Alertmanager v2: POST /api/v2/alerts.

A firing alert is posted with an `endsAt` a few reminder intervals ahead, the way Prometheus
does it: re-posting while firing keeps it alive, and if we die it still resolves by itself
later. A resolved alert is posted with its real `endsAt`, which resolves it at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from collectors.alerts.common import HttpSink, encode, post_json
from strategies.model import Severity, rfc3339
from strategies.ports import Alert

ANNOTATED = ("gate", "metric", "value", "threshold", "baseline", "action", "reason")


def am_alert(alert: Alert, now: float, hold: float) -> dict[str, Any]:
    """One entry of the POST body. Labels identify the alert, so they never change per key."""
    labels = {"alertname": alert.name, "service": alert.service, "version": alert.version,
              "severity": alert.severity.value, "source": "releasedeck"}
    gate = alert.details.get("gate")
    if gate and alert.name in ("ReleaseGateFailing", "ReleasePausedByGate"):
        labels["gate"] = str(gate)
    annotations = {"summary": alert.summary}
    for key in ANNOTATED:
        value = alert.details.get(key)
        if value is not None and value != "":
            annotations[key] = str(value)
    ends = alert.ends_at if alert.status == "resolved" and alert.ends_at is not None \
        else max(now, alert.starts_at) + hold
    return {"labels": labels, "annotations": annotations,
            "startsAt": rfc3339(alert.starts_at), "endsAt": rfc3339(max(ends, alert.starts_at))}


class AlertmanagerSink(HttpSink):
    name = "alertmanager"

    def __init__(self, url: str, *, min_severity: Severity = Severity.WARNING,
                 timeout: float = 5.0, hold: float = 1200.0,
                 clock: Callable[[], float] = time.time):
        super().__init__(url.rstrip("/") + "/api/v2/alerts", timeout=timeout)
        self.min_severity = min_severity
        self.hold = hold  # how long a firing alert lives in Alertmanager without a re-post
        self.clock = clock

    async def send(self, alert: Alert) -> None:
        body = encode([am_alert(alert, self.clock(), self.hold)])
        await post_json(self.client, self.name, self.url, body)
