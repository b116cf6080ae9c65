"""The local lease: an exclusive flock on `<journal>.lock`, holding the holder's details as JSON.

flock belongs to the open file, so the kernel releases it when the driver exits or is killed
(kill -9 included); the details left in the file are then only history, and `holder()` reports
nobody. A reader checks liveness with a shared, non-blocking flock it drops at once; a driver
that meets such a momentary reader retries for a moment before concluding someone drives.
"""

from __future__ import annotations

import asyncio
import contextlib
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
                    raise LeaseHeld(self.service, Holder.from_json(details), self.where) from None
                await asyncio.sleep(ACQUIRE_PAUSE)
        self._fd = fd
        _write(fd, holder.to_json())

    async def update(self, holder: Holder) -> None:
        if self._fd is not None:
            _write(self._fd, holder.to_json())

    def lost(self) -> str:
        return "" if self._fd is not None else "the lease is not held"

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
                return Holder.from_json(_read(fd)) or Holder(self.service, "?", 0, "?", 0.0)
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
    with contextlib.suppress(OSError):
        return os.pread(fd, 65536, 0).decode("utf-8", "replace")
    return ""


def _write(fd: int, text: str) -> None:
    data = (text + "\n").encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
