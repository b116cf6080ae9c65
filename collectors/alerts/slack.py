"""Slack-compatible incoming webhook: one readable text line per alert (Mattermost and
Rocket.Chat accept the same `{"text": ...}` body)."""

from __future__ import annotations

from typing import Any

from collectors.alerts.common import HttpSink, encode, post_json
from strategies.model import Severity
from strategies.ports import Alert

ICONS = {"critical": ":red_circle:", "warning": ":warning:", "info": ":information_source:"}


def slack_text(alert: Alert) -> str:
    """'[FIRING critical] checkout v2 — gate error_rate: value 0.08 > threshold 0.01; action: rollback'."""
    d = alert.details
    icon = ":white_check_mark:" if alert.status == "resolved" else ICONS.get(alert.severity.value, "")
    head = f"{icon} [{alert.status.upper()} {alert.severity.value}] {alert.name} " \
           f"{alert.service} {alert.version}".strip()
    parts = [alert.summary]
    if d.get("gate"):
        parts.append(f"gate {d.get('gate')}: value {_num(d.get('value'))}, "
                     f"threshold {_num(d.get('threshold'))}")
    if d.get("action"):
        parts.append(f"action: {d.get('action')}")
    if d.get("reminder"):
        parts.append("(reminder: still firing)")
    return f"{head} — " + "; ".join(parts)


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "n/a" if value is None else str(value)


class SlackSink(HttpSink):
    name = "slack"

    def __init__(self, url: str, *, min_severity: Severity = Severity.WARNING,
                 timeout: float = 5.0):
        super().__init__(url, timeout=timeout)
        self.min_severity = min_severity

    async def send(self, alert: Alert) -> None:
        await post_json(self.client, self.name, self.url, encode({"text": slack_text(alert)}))
