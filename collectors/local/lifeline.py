"""Tie a child process's life to its parent's, so a crashed app leaves no orphans behind.

Two independent guards, because either alone has a hole:
- Linux `prctl(PR_SET_PDEATHSIG)`: the kernel signals us the moment the parent dies. It fires
  when the *thread* that forked us ends, so parents must spawn from a long-lived thread
  (the asyncio loop thread does).
- a watcher thread polling `getppid()`: portable, and covers the race where the parent died
  before `prctl` ran.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PARENT_ENV = "RELEASEDECK_PARENT_PID"
"""Environment variable a parent sets to its pid, so the child knows whom to outlive not."""

_PR_SET_PDEATHSIG = 1


def _set_pdeathsig(sig: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the watcher thread still guards us


def _watch(parent: int, interval: float) -> None:
    while True:
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(2.0)
            os._exit(1)  # SIGTERM was handled but did not end us: go anyway
        time.sleep(interval)


def die_with_parent(parent: int | None = None, *, interval: float = 0.5) -> None:
    """Arrange for this process to end when `parent` (default: $RELEASEDECK_PARENT_PID) dies."""
    if parent is None:
        raw = os.environ.get(PARENT_ENV, "")
        parent = int(raw) if raw.isdigit() else os.getppid()
    _set_pdeathsig(signal.SIGTERM)
    if os.getppid() != parent:  # the parent is already gone (or we were re-parented)
        sys.exit(1)
    threading.Thread(target=_watch, args=(parent, interval), name="lifeline", daemon=True).start()


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a child that should die with this process."""
    env = dict(os.environ)
    env[PARENT_ENV] = str(os.getpid())
    env.setdefault("PYTHONUNBUFFERED", "1")
    if extra:
        env.update(extra)
    return env
