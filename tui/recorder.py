"""`--record FILE`: a driver listener that writes the trace a replay or post-mortem reads.

Each tick writes a "kind": "tick" line (so a replay ticks when the live run did, failed
collections included), then one line per version with the raw cumulative counters as scraped,
plus the traffic weight and readiness the platform reported at that moment (so a replay can run
open loop); every event is written too, as a "kind": "event" line that replay skips. The file
is appended to, so a resumed release keeps one trace, and each line is flushed as written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from strategies.model import Event, Snapshot, State
from strategies.ports import RawCounters
from strategies.trace import counters_line, event_line, tick_line


class TraceRecorder:
    """Writes a trace. `service` names the release on each line (learnt from events if unset)."""

    def __init__(self, path: str | Path, service: str = ""):
        self.path = Path(path)
        self.service = service
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: TextIO = self.path.open("a", encoding="utf-8", buffering=1)
        self.lines = 0

    def _write(self, line: str) -> None:
        if self._handle.closed:
            return
        self._handle.write(line + "\n")
        self.lines += 1

    def on_snapshot(self, snapshot: Snapshot, raw: Sequence[RawCounters]) -> None:
        metrics = snapshot.metrics
        error = "metric collection timed out" if metrics is None else metrics.error
        self._write(tick_line(snapshot.at, self.service, error if not raw else None))
        platform = snapshot.platform
        usable = platform is not None and not platform.error
        for counters in raw:
            weight = ready = total = None
            if usable and platform is not None:
                weight = platform.weights.get(counters.version)
                status = platform.versions.get(counters.version)
                if status is not None:
                    ready, total = status.ready, status.total
            self._write(counters_line(counters, self.service, weight=weight, ready=ready,
                                      total=total))

    def on_event(self, event: Event) -> None:
        if not self.service:
            self.service = event.release
        self._write(event_line(event))

    def on_state(self, state: State) -> None:
        if not self._handle.closed:
            self._handle.flush()

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.close()
