"""Temp dirs releasedeck owns: named after the owning process, swept once it is gone.

An orderly exit removes its dirs; a SIGKILL or a SIGHUP cannot. So every dir is created as
`releasedeck-<kind>-<pid>-<random>`, and creating one first removes the dirs whose owner pid no
longer runs (only this user's). A crash leaves at most one run's dirs, until the next start.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

_OWNED = re.compile(r"^releasedeck-[a-z]+-(\d+)-")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: not ours to judge
    return True


def sweep(root: str | Path | None = None) -> int:
    """Remove this user's releasedeck temp dirs whose owner process is gone; returns how many."""
    base = Path(root or tempfile.gettempdir())
    removed = 0
    uid = os.getuid()
    with contextlib.suppress(OSError):
        for entry in base.iterdir():
            match = _OWNED.match(entry.name)
            if match is None or int(match.group(1)) == os.getpid():
                continue
            try:
                if entry.stat().st_uid != uid or not entry.is_dir() or _running(int(match.group(1))):
                    continue
            except OSError:
                continue
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    return removed


def owned_tempdir(kind: str) -> Path:
    """A new temp dir for `kind` (router, local, prom, demo) owned by this process."""
    sweep()
    return Path(tempfile.mkdtemp(prefix=f"releasedeck-{kind}-{os.getpid()}-"))
