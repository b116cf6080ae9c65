"""The local lease: an exclusive flock on `<journal>.lock`, holding the holder's details as JSON.

flock belongs to the open file, so the kernel releases it when the driver exits or is killed
(kill -9 included); the details left in the file are then only history, and `holder()` reports
nobody. A reader checks liveness with a shared, non-blocking flock it drops at once; a driver
that meets such a momentary reader retries for a moment before concluding someone drives.

The details are a courtesy to other screens, the lock is the lease: a disk that refuses to
write them (full, a size limit, EIO) leaves the file empty, never a mix of two holders or a
dead holder's details, and the driver keeps the lock; `unsaid()` says why, once asked, and a
reader gets `Holder.unknown` ("an unknown session"), never "nobody".
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
from pathlib import Path

from collectors.lease import Holder, LeaseError, LeaseHeld

ACQUIRE_ATTEMPTS = 10  # × ACQUIRE_PAUSE: how long a driver tolerates a reader's probe
ACQUIRE_PAUSE = 0.05


def lock_path_for(journal: str | Path) -> Path:
    return Path(f"{journal}.lock")


class FileLease:
    """flock on a lock file beside the journal."""

    def __init__(self, path: str | Path, release: str):
        self.path = Path(path)
        self.service = release
        self.where = str(self.path)
        self._fd: int | None = None
        self._unsaid = ""  # why the holder's details could not be written ("" once they were)

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise LeaseError(f"releasedeck: cannot open the lease file {self.path}: "
                             f"{exc.strerror or exc}") from None

    async def acquire(self, holder: Holder) -> None:
        fd = self._open()
        for attempt in range(ACQUIRE_ATTEMPTS):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == ACQUIRE_ATTEMPTS - 1:
                    details = _read(fd)
                    os.close(fd)
                    raise LeaseHeld(self.service, Holder.from_json(details) or Holder.unknown(self.service),
                                    self.where) from None
                await asyncio.sleep(ACQUIRE_PAUSE)
        self._fd = fd
        self._say(fd, holder)

    async def update(self, holder: Holder) -> None:
        if self._fd is not None:
            self._say(self._fd, holder)

    def _say(self, fd: int, holder: Holder) -> None:
        reason = _write(fd, holder.to_json())
        self._unsaid = "" if not reason else (
            f"lease {self.path}: cannot write who drives ({reason}); the lease is held and the "
            "release goes on, but other screens cannot find this driver")

    def lost(self) -> str:
        return "" if self._fd is not None else "the lease is not held"

    def unsaid(self) -> str:
        return self._unsaid if self._fd is not None else ""

    async def holder(self) -> Holder | None:
        """Who drives now: the file's details if its lock is held, else None."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise LeaseError(f"releasedeck: cannot read the lease file {self.path}: "
                             f"{exc.strerror or exc}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return Holder.from_json(_read(fd)) or Holder.unknown(self.service)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    async def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # nobody drives: a reader finds no stale details
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _read(fd: int) -> str:
    """The details' line (the first: a longer text being overwritten may still follow it)."""
    with contextlib.suppress(OSError):
        return os.pread(fd, 65536, 0).decode("utf-8", "replace").partition("\n")[0]
    return ""


def _write(fd: int, text: str) -> str:
    """Write `text` as the file's one line: "" once it is there, else the OS's reason, and the
    file left empty (a refused write must not leave part of it, or an earlier holder's details,
    to be read as who drives now)."""
    data = (text + "\n").encode()
    done = 0
    try:
        while done < len(data):  # a size limit first shortens a write, then refuses the rest
            written = os.pwrite(fd, data[done:], done)
            if written <= 0:
                raise OSError(errno.EIO, "nothing written")
            done += written
        os.ftruncate(fd, len(data))
        return ""
    except OSError as exc:
        reason = exc.strerror or str(exc)
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    return reason
