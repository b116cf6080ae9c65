"""AlertDispatcher: runs the alert policy on the driver's stream and delivers in the background.

It is a driver Listener (on_event / on_state), called inside the tick, so it never waits on a
network: alerts go into one bounded queue per sink and a background task per sink delivers them
in order, with retries and exponential backoff. A sink that is down or slow only delays its own
queue; what cannot be delivered is reported as an `alert_failed` event and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from strategies.alerting import AlertPolicy
from strategies.model import Event, State
from strategies.ports import Alert, AlertSink

log = logging.getLogger("releasedeck.alerts")

Emit = Callable[..., Any]  # driver.emit(name, details, severity)
QUEUE_SIZE = 256
OWN_EVENTS = frozenset({"alert", "alert_failed"})


@dataclass
class _Lane:
    """One sink, its queue and its worker."""

    sink: AlertSink
    retries: int
    queue: asyncio.Queue[Alert] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    task: asyncio.Task[None] | None = None
    current: Alert | None = None
    attempt: int = 0  # the try of `current` under way (1 = the first)


class AlertDispatcher:
    """Policy in, sinks out. Counts what it delivered and what it could not."""

    def __init__(self, policy: AlertPolicy, sinks: Iterable[tuple[AlertSink, int]], *,
                 emit: Emit | None = None, backoff: float = 0.5, backoff_cap: float = 10.0):
        self.policy = policy
        self.lanes = [_Lane(sink, retries) for sink, retries in sinks]
        self.emit = emit
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self.delivered = 0
        self.undelivered = 0
        self.failures: list[str] = []  # one line per undelivered alert
        self._closing = False

    # ------------------------------------------------------------------ Listener

    def on_event(self, event: Event) -> None:
        if event.event in OWN_EVENTS:
            return
        self._enqueue(self.policy.on_event(event))

    def on_state(self, state: State) -> None:
        self._enqueue(self.policy.on_state(state))

    # ------------------------------------------------------------------ delivery

    def _enqueue(self, alerts: Iterable[Alert]) -> None:
        for alert in alerts:
            for lane in self.lanes:
                if alert.severity.rank < lane.sink.min_severity.rank:
                    continue
                if self._closing:
                    self._failed(lane, alert, "dispatcher closed", 0)
                    continue
                self._start(lane)
                try:
                    lane.queue.put_nowait(alert)
                except asyncio.QueueFull:
                    self._failed(lane, alert, f"queue full ({QUEUE_SIZE} waiting)", 0)

    def _start(self, lane: _Lane) -> None:
        if lane.task is None:
            lane.task = asyncio.get_running_loop().create_task(
                self._work(lane), name=f"alerts:{lane.sink.name}")

    async def _work(self, lane: _Lane) -> None:
        while True:
            alert = await lane.queue.get()
            lane.current = alert
            try:
                await self._deliver(lane, alert)
                lane.current = None  # on cancel it stays set, so close() can report it
            finally:
                lane.queue.task_done()

    async def _deliver(self, lane: _Lane, alert: Alert) -> None:
        error = ""
        attempts = 0
        for attempt in range(lane.retries + 1):
            attempts = lane.attempt = attempt + 1
            try:
                await lane.sink.send(alert)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = _one_line(exc)
                if attempt < lane.retries:
                    await asyncio.sleep(min(self.backoff_cap, self.backoff * 2 ** attempt))
                continue
            self.delivered += 1
            self._emit("alert", {**_describe(lane, alert), "attempts": attempts},
                       alert.severity.value)
            return
        self._failed(lane, alert, error, attempts)

    def _failed(self, lane: _Lane, alert: Alert, error: str, attempts: int) -> None:
        self.undelivered += 1
        self.failures.append(f"{lane.sink.name}: {alert.name} {alert.status}: {error}")
        self._emit("alert_failed", {**_describe(lane, alert), "error": error,
                                    "attempts": attempts}, "warning")

    def _emit(self, name: str, details: Mapping[str, Any], severity: str) -> None:
        if self.emit is None:
            return
        try:
            self.emit(name, details, severity)
        except Exception as exc:  # reporting must never break delivery
            log.warning("emitting %s failed: %s", name, _one_line(exc))

    # ------------------------------------------------------------------ shutdown

    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queue is empty (or the timeout passes). True if all drained."""
        waits = [lane.queue.join() for lane in self.lanes if lane.task is not None]
        if not waits:
            return True
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout=timeout)
        except TimeoutError:
            return False
        return True

    async def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued within `timeout`; count the rest as undelivered; close sinks."""
        await self.flush(timeout)
        self._closing = True
        for lane in self.lanes:
            if lane.task is not None:
                lane.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await lane.task
                lane.task = None
            if lane.current is not None:  # a request under way that never answered
                self._failed(lane, lane.current, "not delivered before exit: no answer to "
                             f"try {lane.attempt}", max(1, lane.attempt))
            lane.current = None
            while not lane.queue.empty():  # queued behind it: never sent
                self._failed(lane, lane.queue.get_nowait(),
                             "not delivered before exit: never sent (queued behind another)", 0)
            try:
                await asyncio.wait_for(lane.sink.close(), timeout=5.0)
            except Exception as exc:
                log.warning("closing alert sink %s failed: %s", lane.sink.name, _one_line(exc))


def _describe(lane: _Lane, alert: Alert) -> dict[str, Any]:
    details: dict[str, Any] = {"sink": lane.sink.name, "key": alert.key,
                               "alertname": alert.name, "status": alert.status,
                               "severity": alert.severity.value, "summary": alert.summary}
    for key in ("gate", "value", "threshold", "action", "reminder"):
        if key in alert.details:
            details[key] = alert.details[key]
    return details


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text or type(exc).__name__
