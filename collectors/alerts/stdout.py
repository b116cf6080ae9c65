"""Alerts as JSON lines on a stream (stdout by default): for pipelines and log shippers."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from collectors.alerts.common import alert_dict
from strategies.model import Severity
from strategies.ports import Alert


class StdoutSink:
    """Writes each alert as one JSON object on its own line, flushed at once."""

    name = "stdout"

    def __init__(self, *, min_severity: Severity = Severity.WARNING, stream: TextIO | None = None):
        self.min_severity = min_severity
        self.stream = stream

    async def send(self, alert: Alert) -> None:
        stream = self.stream if self.stream is not None else sys.stdout
        stream.write(json.dumps({"alert": alert_dict(alert)}, separators=(",", ":")) + "\n")
        stream.flush()

    async def close(self) -> None:
        return None
