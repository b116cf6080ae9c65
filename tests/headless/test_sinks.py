"""Alert sinks and the dispatcher against real local HTTP receivers and a real Alertmanager."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import threading
from typing import Any

import pytest

from collectors.alerts import (
    AlertDispatcher,
    AlertmanagerSink,
    SlackSink,
    StdoutSink,
    WebhookSink,
    build_dispatcher,
)
from collectors.alerts.common import DeliveryError
from strategies.alerting import AlertPolicy
from strategies.model import GateResult, GateStatus, RolloutState, Severity, State
from strategies.ports import Alert
from tests.headless.conftest import am_alerts, poll
from tests.headless.support import make_spec

SECRET = "s3cr3t-value-for-test"


def an_alert(status: str = "firing", *, severity: Severity = Severity.CRITICAL,
             ends_at: float | None = None, at: float | None = None) -> Alert:
    import time

    start = time.time() if at is None else at
    return Alert(key="checkout/gate:errors", name="ReleaseGateFailing", service="checkout",
                 version="v2", severity=severity, status=status,
                 summary="checkout: gate errors failing on v2: 20.00% > max 5.00%",
                 starts_at=start, ends_at=ends_at,
                 details={"gate": "errors", "value": 0.2, "threshold": 0.05,
                          "action": "rollback"})


def test_webhook_signs_the_exact_body_with_hmac_sha256(receiver, monkeypatch):
    monkeypatch.setenv("RD_TEST_SECRET", SECRET)
    sink = WebhookSink(receiver.url, secret_env="RD_TEST_SECRET", timeout=5)

    async def go() -> None:
        await sink.send(an_alert())
        await sink.close()

    asyncio.run(go())
    [req] = receiver.wait_for(1)
    expected = "sha256=" + hmac.new(SECRET.encode(), req.body, hashlib.sha256).hexdigest()
    assert req.headers["X-Releasedeck-Signature"] == expected
    body = json.loads(req.body)
    assert (body["alertname"], body["status"], body["severity"], body["service"], body["version"]) \
        == ("ReleaseGateFailing", "firing", "critical", "checkout", "v2")
    assert body["details"]["threshold"] == 0.05
    assert SECRET not in req.body.decode()


def test_webhook_without_secret_env_sends_unsigned(receiver):
    async def go() -> None:
        sink = WebhookSink(receiver.url)
        await sink.send(an_alert())
        await sink.close()

    asyncio.run(go())
    [req] = receiver.wait_for(1)
    assert "X-Releasedeck-Signature" not in req.headers


def test_missing_secret_is_a_clear_error_naming_the_variable(receiver, monkeypatch):
    monkeypatch.delenv("RD_TEST_NOT_SET", raising=False)

    async def go() -> None:
        sink = WebhookSink(receiver.url, secret_env="RD_TEST_NOT_SET")
        try:
            await sink.send(an_alert())
        finally:
            await sink.close()

    with pytest.raises(DeliveryError, match="RD_TEST_NOT_SET is not set"):
        asyncio.run(go())
    assert receiver.requests == []


def test_slack_text_has_gate_value_threshold_and_action(receiver):
    async def go() -> None:
        sink = SlackSink(receiver.url)
        await sink.send(an_alert())
        await sink.send(an_alert("resolved", ends_at=an_alert().starts_at + 1))
        await sink.close()

    asyncio.run(go())
    first, second = (r.json()["text"] for r in receiver.wait_for(2))
    for part in ("FIRING critical", "gate errors", "value 0.2", "threshold 0.05",
                 "action: rollback", "checkout", "v2"):
        assert part in first
    assert "RESOLVED" in second


def test_stdout_sink_writes_one_json_line_per_alert():
    stream = io.StringIO()
    asyncio.run(StdoutSink(stream=stream).send(an_alert()))
    [line] = stream.getvalue().splitlines()
    body = json.loads(line)
    assert (body["event"], body["release"], body["alertname"], body["status"]) == (
        "notification", "checkout", "ReleaseGateFailing", "firing")
    assert body["ts"].endswith("Z")


# --------------------------------------------------------------------------- dispatcher


def failing_state(at: float, breached: bool = True) -> State:
    status = GateStatus.FAIL if breached else GateStatus.PASS
    result = GateResult(name="errors", metric="error_rate", severity=Severity.CRITICAL,
                        status=status, value=0.2 if breached else 0.0, threshold=0.05,
                        comparison="max", reason="x", breached=breached)
    return State(at=at, release="checkout", strategy="canary", platform_kind="test",
                 metrics_source="test", rollout=RolloutState(), steps=(), hold=0.0,
                 gates=(result,))


class Emitted:
    """Stands in for driver.emit: remembers every (name, details, severity)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any], str]] = []

    def __call__(self, name: str, details: Any = None, severity: str = "info") -> None:
        self.events.append((name, dict(details or {}), severity))

    def names(self) -> list[str]:
        return [e[0] for e in self.events]


def test_dispatcher_retries_a_down_receiver_then_reports_without_the_secret(dead_url, monkeypatch):
    monkeypatch.setenv("RD_TEST_SECRET", SECRET)
    emitted = Emitted()
    sink = WebhookSink(dead_url, secret_env="RD_TEST_SECRET", timeout=2)
    dispatcher = AlertDispatcher(AlertPolicy("checkout", "v2"), [(sink, 2)], emit=emitted,
                                 backoff=0.01)

    async def go() -> None:
        dispatcher.on_state(failing_state(0))
        await dispatcher.close(timeout=20)

    asyncio.run(go())
    assert emitted.names() == ["alert_failed"]
    _name, details, severity = emitted.events[0]
    assert details["attempts"] == 3 and details["sink"] == "webhook" and severity == "warning"
    assert "unreachable" in details["error"]
    assert dispatcher.undelivered == 1 and dispatcher.delivered == 0
    assert SECRET not in json.dumps(emitted.events)


def test_dispatcher_retries_non_2xx_with_backoff(receiver):
    receiver.status = 503
    emitted = Emitted()
    dispatcher = AlertDispatcher(AlertPolicy("checkout", "v2"), [(SlackSink(receiver.url), 3)],
                                 emit=emitted, backoff=0.01)

    async def go() -> None:
        dispatcher.on_state(failing_state(0))
        await dispatcher.close(timeout=20)

    asyncio.run(go())
    assert len(receiver.requests) == 4  # 1 try + 3 retries
    assert emitted.names() == ["alert_failed"] and "HTTP 503" in emitted.events[0][1]["error"]


def test_min_severity_filters_per_sink(receiver):
    emitted = Emitted()
    spec = make_spec(alert=[{"kind": "webhook", "url": receiver.url, "min_severity": "critical"}])
    dispatcher = build_dispatcher(spec, emit=emitted, backoff=0.01)

    async def go() -> None:
        warning = failing_state(0)
        warning = State(**{**warning.__dict__, "gates": (
            GateResult(**{**warning.gates[0].__dict__, "severity": Severity.WARNING}),)})
        dispatcher.on_state(warning)
        await dispatcher.close(timeout=10)

    asyncio.run(go())
    assert receiver.requests == [] and emitted.events == []


def test_a_slow_receiver_never_blocks_and_order_is_kept(receiver):
    """Enqueueing returns at once while the receiver holds every request; order survives."""
    receiver.slow = threading.Event()
    emitted = Emitted()
    dispatcher = AlertDispatcher(AlertPolicy("checkout", "v2", reminder=0), [
        (WebhookSink(receiver.url, timeout=30), 0)], emit=emitted, backoff=0.01)

    async def go() -> int:
        for i in range(10):  # fire, resolve, fire ... while nothing has been delivered
            dispatcher.on_state(failing_state(i, breached=i % 2 == 0))
        enqueued = sum(lane.queue.qsize() + (lane.current is not None) for lane in dispatcher.lanes)
        await asyncio.sleep(0)
        receiver.slow.set()
        await dispatcher.close(timeout=20)
        return enqueued

    assert asyncio.run(go()) == 10
    statuses = [b["status"] for b in receiver.bodies()]
    assert statuses == ["firing", "resolved"] * 5
    assert emitted.names() == ["alert"] * 10 and dispatcher.delivered == 10


def test_close_reports_what_a_stuck_receiver_never_got(receiver):
    receiver.slow = threading.Event()  # never released before close gives up
    emitted = Emitted()
    dispatcher = AlertDispatcher(AlertPolicy("checkout", "v2", reminder=0), [
        (WebhookSink(receiver.url, timeout=30), 0)], emit=emitted)

    async def go() -> None:
        dispatcher.on_state(failing_state(0))
        dispatcher.on_state(failing_state(1, breached=False))
        await dispatcher.close(timeout=0.3)

    asyncio.run(go())
    receiver.slow.set()
    assert dispatcher.undelivered == 2
    assert [e[1]["status"] for e in emitted.events] == ["firing", "resolved"]
    # the firing alert's request hung: it counts as a try (it said `attempts: 0` before);
    # the resolved one waited behind it and was never sent
    assert [(e[1]["attempts"], e[1]["error"]) for e in emitted.events] == [
        (1, "not delivered before exit: no answer to try 1"),
        (0, "not delivered before exit: never sent (queued behind another)")]


# --------------------------------------------------------------------------- alertmanager


@pytest.mark.alertmanager
def test_alertmanager_shows_firing_then_resolved(alertmanager):
    sink = AlertmanagerSink(alertmanager, timeout=5, hold=600)
    firing = an_alert()

    async def send(alert: Alert) -> None:
        try:
            await sink.send(alert)
        finally:
            await sink.close()  # one client per event loop

    asyncio.run(send(firing))
    shown = poll(lambda: am_alerts(alertmanager, filter='alertname="ReleaseGateFailing"'))
    [got] = shown
    assert got["labels"] == {"alertname": "ReleaseGateFailing", "service": "checkout",
                             "version": "v2", "severity": "critical", "gate": "errors",
                             "source": "releasedeck"}
    assert got["annotations"]["threshold"] == "0.05" and got["annotations"]["action"] == "rollback"
    assert got["status"]["state"] == "active"
    import time

    resolved = Alert(**{**firing.__dict__, "status": "resolved", "ends_at": time.time()})
    asyncio.run(send(resolved))
    poll(lambda: am_alerts(alertmanager, filter='alertname="ReleaseGateFailing"') == [])


@pytest.mark.alertmanager
def test_alertmanager_rejection_is_a_delivery_error(alertmanager):
    sink = AlertmanagerSink(alertmanager + "/nope", timeout=5)

    async def go() -> None:
        try:
            await sink.send(an_alert())
        finally:
            await sink.close()

    with pytest.raises(DeliveryError, match="HTTP 404"):
        asyncio.run(go())
