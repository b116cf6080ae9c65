"""SIGTERM and SIGHUP end the app the way `q` does, so the terminal is given back.

Killed by a signal's default action, a Textual app leaves the terminal in the alternate screen
with mouse tracking on. Inside `exit_on_signals(app)` the two signals ask the app to exit
instead; Textual then restores the terminal, and the caller closes the adapters (the journal
already holds the state). The handlers that were there before are put back afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from typing import Protocol

SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Exits(Protocol):
    def exit(self) -> object: ...


@contextlib.contextmanager
def exit_on_signals(app: Exits) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    installed: list[tuple[signal.Signals, object]] = []
    for sig in SIGNALS:
        previous = signal.getsignal(sig)
        try:
            loop.add_signal_handler(sig, app.exit)
        except (NotImplementedError, RuntimeError, ValueError):
            continue  # not the main thread: the caller handles signals
        installed.append((sig, previous))
    try:
        yield
    finally:
        for sig, previous in installed:
            loop.remove_signal_handler(sig)
            if previous is not None:
                with contextlib.suppress(TypeError, ValueError):
                    signal.signal(sig, previous)  # type: ignore[arg-type]
