"""The event stream as people and pipelines read it: one JSON line per event.

Headless runs and replays print through this one listener, so a replay's output is
line-for-line what the live run printed.
"""

from __future__ import annotations

import contextlib
import os
import stat
from typing import TextIO

from strategies.files import append_whole
from strategies.model import Event

SAID_ON_STDERR = frozenset({"record_failed", "lease_details_failed"})


class EventPrinter:
    """Each event as one JSON line, flushed so a pipeline sees it at once.

    A reader that goes away (`| head -1`) must not change the release: the first failed write
    says so once on `err`, points the stream's descriptor at /dev/null (so the interpreter's
    last flush at exit cannot fail and turn the exit status into 120) and printing stops. The
    release goes on and its exit code stays its outcome. Events redirected to a file the disk
    refuses (full, a size limit) stop the same way, and the part of the refused line that
    reached the file is cut off again, so the file ends on its last whole event. A `--record`
    trace the disk refused (`record_failed`), or a lease whose holder's details it refused
    (`lease_details_failed`), is said on `err` as well: the release goes on without them."""

    def __init__(self, out: TextIO, err: TextIO | None = None):
        self.out = out
        self.err = err
        self.closed = False
        self._file = _regular_fd(out)

    def on_event(self, event: Event) -> None:
        if event.event in SAID_ON_STDERR:  # a person watching stderr is told too, at once
            say(self.err, f"releasedeck: warning: {event.details.get('reason', '')}")
        if self.closed:
            return
        try:
            if self._file is not None:  # a file: each line whole, or cut off again
                self.out.flush()  # what another writer (a stdout alert sink) left, first
                append_whole(self._file, event.to_json() + "\n")
            else:
                self.out.write(event.to_json() + "\n")
                self.out.flush()
        except (OSError, ValueError) as exc:  # EPIPE, the stream closed, or the disk said no
            self.closed = True
            discard(self.out)
            say(self.err, f"releasedeck: {_why_not(exc)}: events are no longer printed "
                          "(the release goes on; its exit code is its outcome)")


def _regular_fd(stream: TextIO) -> int | None:
    """The stream's descriptor when it is a regular file (stdout redirected to one), else None:
    a pipe or a terminal cannot be cut back, a test's StringIO has no descriptor. (The text
    stream's own buffer cannot be used for a file: a short write it takes in silence leaves
    part of a line on disk, and the error only comes with the next line.)"""
    try:
        fd = stream.fileno()
        return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except (OSError, ValueError):
        return None


def _why_not(exc: OSError | ValueError) -> str:
    """Why standard output took no more: its reader went away, or (stdout redirected to a
    file) the disk refused, which a person must be told apart: the file is then cut short."""
    if isinstance(exc, BrokenPipeError | ValueError) or not exc.strerror:
        return "standard output closed"
    return f"standard output: cannot write ({exc.strerror})"


def discard(stream: TextIO) -> None:
    """Point a stream whose reader went away at /dev/null, dropping what it still buffers."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        return  # not a real file (a test's StringIO): nothing flushes it at exit
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
    with contextlib.suppress(OSError, ValueError):
        stream.flush()  # the buffered bytes now go to /dev/null


def say(stream: TextIO | None, line: str) -> None:
    """One line, unless nobody reads that stream any more (never an error of its own)."""
    if stream is None:
        return
    try:
        print(line, file=stream, flush=True)
    except (OSError, ValueError):
        discard(stream)
