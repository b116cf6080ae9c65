"""The event stream as people and pipelines read it: one JSON line per event.

Headless runs and replays print through this one listener, so a replay's output is
line-for-line what the live run printed.
"""

from __future__ import annotations

from typing import TextIO

from strategies.model import Event


class EventPrinter:
    """Each event as one JSON line, flushed so a pipeline sees it at once."""

    def __init__(self, out: TextIO):
        self.out = out

    def on_event(self, event: Event) -> None:
        self.out.write(event.to_json() + "\n")
        self.out.flush()
