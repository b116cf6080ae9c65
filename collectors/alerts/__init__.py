"""Alert sinks (stdout, webhook, Slack, Alertmanager) and the dispatcher that feeds them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO

from collectors.alerts.alertmanager import AlertmanagerSink
from collectors.alerts.dispatcher import AlertDispatcher
from collectors.alerts.slack import SlackSink
from collectors.alerts.stdout import StdoutSink
from collectors.alerts.webhook import WebhookSink
from strategies.alerting import AlertPolicy
from strategies.ports import AlertSink
from strategies.spec import AlertSpec, ReleaseSpec

__all__ = ["AlertDispatcher", "AlertmanagerSink", "SlackSink", "StdoutSink", "WebhookSink",
           "build_dispatcher", "build_sink"]


def build_sink(spec: AlertSpec, *, stream: TextIO | None = None) -> AlertSink:
    """One sink from one [[alert]] table."""
    if spec.kind == "stdout":
        return StdoutSink(min_severity=spec.min_severity, stream=stream)
    if spec.kind == "webhook":
        return WebhookSink(spec.url, min_severity=spec.min_severity, secret_env=spec.secret_env,
                           timeout=spec.timeout)
    if spec.kind == "slack":
        return SlackSink(spec.url, min_severity=spec.min_severity, timeout=spec.timeout)
    if spec.kind == "alertmanager":
        return AlertmanagerSink(spec.url, min_severity=spec.min_severity, timeout=spec.timeout,
                                hold=max(60.0, 4 * spec.reminder))
    raise ValueError(f"unknown alert kind {spec.kind!r}")


def build_dispatcher(spec: ReleaseSpec, *, emit: Callable[..., Any] | None = None,
                     acting: bool = True, stream: TextIO | None = None,
                     backoff: float = 0.5) -> AlertDispatcher:
    """The dispatcher for a spec's [[alert]] tables. One policy serves every sink: its stale
    window and reminder are the shortest any sink asks for."""
    alerts = spec.alerts
    policy = AlertPolicy(
        spec.release.service, spec.release.candidate,
        stale_after=min((a.stale_after for a in alerts), default=30.0),
        reminder=min((a.reminder for a in alerts), default=300.0),
        acting=acting)
    sinks = [(build_sink(a, stream=stream), a.retries) for a in alerts]
    return AlertDispatcher(policy, sinks, emit=emit, backoff=backoff)
