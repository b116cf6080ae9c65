"""What kind of thing a path names, before anything opens it; appending whole lines.

Opening a FIFO for reading blocks until a writer comes; reading a character device such as
`/dev/zero` or `/dev/full` never ends. A spec or a journal named by mistake as one of those would
hang releasedeck with no word, so readers ask here first and refuse with one line.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
         (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
         (stat.S_ISSOCK, "a socket"))


def not_regular(path: str | Path) -> str:
    """'' when `path` is a regular file or does not exist; else what it is ("a FIFO (named
    pipe)"), for the refusal's words. Follows symlinks, as opening would."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return ""  # missing or unreadable: the opener reports it in its own words
    if stat.S_ISREG(mode):
        return ""
    return next((words for test, words in KINDS if test(mode)), "not a regular file")


class TooLarge(ValueError):
    """A file is longer than its reader's limit; the message names the limit."""


def read_bounded(path: str | Path, limit: int) -> bytes:
    """At most `limit` bytes of a regular file. Raises TooLarge past the limit (only limit+1
    bytes are ever read), IsADirectoryError/OSError as opening does, and ValueError naming the
    kind when the path is not a regular file (checked before opening, so a FIFO never blocks)."""
    kind = not_regular(path)
    if kind:
        raise ValueError(f"not a regular file: it is {kind}")
    with open(path, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):  # replaced since the stat
            raise ValueError("not a regular file")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"too large: more than {limit} bytes (the limit)")
    return data


def append_whole(fd: int, text: str) -> None:
    """Append `text` to the file open (O_APPEND, unbuffered) on `fd`: all of it, or raise the
    OSError with the part that did reach the file cut off again (as far as the disk allows).

    A full disk or a file size limit lets a write through in part; the journal and the trace
    are JSON lines, so a half line left behind would be a torn record inside the file as soon
    as anything else is appended after it."""
    data = memoryview(text.encode("utf-8"))
    written = 0
    try:
        while written < len(data):
            written += os.write(fd, data[written:])
    except OSError:
        if written:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, os.fstat(fd).st_size - written)
        raise
