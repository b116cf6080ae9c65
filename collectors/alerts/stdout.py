"""Alerts as JSON lines on a stream (stdout by default): for pipelines and log shippers.

Each line follows the event-line schema (ts, release, event) with event = "notification", so a
headless run's stdout stays one uniform JSON-lines stream even when this sink writes into it.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import TextIO

from collectors.alerts.common import alert_dict
from strategies.model import Severity, rfc3339
from strategies.ports import Alert


class StdoutSink:
    """Writes each alert as one JSON object on its own line, flushed at once."""

    name = "stdout"

    def __init__(self, *, min_severity: Severity = Severity.WARNING, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.time):
        self.min_severity = min_severity
        self.stream = stream
        self.clock = clock

    async def send(self, alert: Alert) -> None:
        stream = self.stream if self.stream is not None else sys.stdout
        line = {"ts": rfc3339(self.clock()), "release": alert.service, "event": "notification",
                **alert_dict(alert)}
        stream.write(json.dumps(line, separators=(",", ":")) + "\n")
        stream.flush()

    async def close(self) -> None:
        return None
