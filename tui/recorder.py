"""`--record FILE`: a driver listener that writes the trace a replay or post-mortem reads.

Each tick writes a "kind": "tick" line with its collection time and the engine's time (so a
replay ticks when the live run did, failed collections included), and one line per version
with the raw cumulative counters as scraped, plus the traffic weight and readiness the
platform reported at that moment (so a replay can run open loop), and the sample the source
handed the engine (window values and exact tallies), so a replay judges on what the live engine
judged. Every event is written too, as a "kind": "event" line
(a replay reads the levers' outcomes among them). The file is appended to, so a resumed
release keeps one trace, and each line is flushed as written.

A trace is an observer's record, not the release's memory: when the disk refuses it mid-run
(full, read-only, a size limit), recording stops at its last whole line and the release goes
on; `on_failure` is told once, with one line naming the file and the OS's reason.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from strategies.files import append_whole
from strategies.model import Event, Snapshot, State
from strategies.ports import RawCounters
from strategies.trace import counters_line, event_line, tick_line


class TraceRecorder:
    """Writes a trace. `service` names the release on each line (learnt from events if unset)."""

    def __init__(self, path: str | Path, service: str = "",
                 on_failure: Callable[[str], None] | None = None, window: float | None = None):
        self.path = Path(path)
        self.service = service
        self.window = window  # the metrics window, written beside a sample without tallies
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: BinaryIO = self.path.open("ab", buffering=0)
        self.lines = 0
        self.failed = ""  # why recording stopped, once the disk refused a line
        self.on_failure = on_failure
        self._tick: tuple[float, str | None] | None = None  # (collected at, error) of this tick
        self._decided: float | None = None

    def _write(self, line: str) -> None:
        """One whole line, unbuffered (a refused line cannot be written later, half of it,
        by a flush at close); a partial line is cut off again, and recording stops."""
        if self._handle.closed:
            return
        try:
            append_whole(self._handle.fileno(), line + "\n")
        except OSError as exc:
            self._stop(exc)
            return
        self.lines += 1

    def _stop(self, exc: OSError) -> None:
        self.failed = (f"--record {self.path}: cannot write ({exc.strerror or exc}): the trace "
                       f"stops after this run's {self.lines} lines; the release goes on")
        with contextlib.suppress(OSError):
            self._handle.close()
        if self.on_failure is not None:
            self.on_failure(self.failed)

    def on_snapshot(self, snapshot: Snapshot, raw: Sequence[RawCounters]) -> None:
        metrics = snapshot.metrics
        error = "metric collection timed out" if metrics is None else metrics.error
        # The tick line waits for the engine's time (on_judged).
        self._tick = (snapshot.at, error if not raw else None)
        self._decided: float | None = None
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
                                      total=total, **self._window_sample(snapshot, counters)))

    def _window_sample(self, snapshot: Snapshot, counters: RawCounters) -> dict[str, Any]:
        """The live sample of a version: a replay cannot make it up from the summed counters
        (the scrape source counts per instance, a new instance's first scrape only anchoring;
        Prometheus counts no tallies at all, its gates count window shares)."""
        metrics = snapshot.metrics
        sample = metrics.samples.get(counters.version) if metrics is not None else None
        if sample is None or not self.window:
            return {}
        return {"sample": sample, "window": self.window}

    def on_judged(self, at: float) -> None:
        """The engine's time for this tick, as the driver hands it to the engine. Not the first
        decision's nor the State's: a tick without a decision was stamped with the State's
        (later by the engine's own work, tens of ms on a loaded machine), and its replay then
        judged a gate's `for` or a hold as over where the live engine had judged it not."""
        if self._tick is not None:
            self._decided = at

    def on_event(self, event: Event) -> None:
        if not self.service:
            self.service = event.release
        if self._tick is not None and self._decided is None:  # a driver without on_judged
            self._decided = event.at
        self._write(event_line(event))

    def on_state(self, state: State) -> None:
        self._end_tick(state.at)

    def _end_tick(self, at: float | None) -> None:
        if self._tick is None:
            return
        collected, error = self._tick
        self._tick = None
        decided = self._decided if self._decided is not None else at
        self._write(tick_line(collected, self.service, error, decided))

    def close(self) -> None:
        self._end_tick(None)
        if not self._handle.closed:
            self._handle.close()
