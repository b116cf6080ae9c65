"""Every child process releasedeck starts on this machine, and the guarantee none outlives us.

Three layers, so no path leaves an orphan:
- orderly: owners stop their children with `stop()` (SIGTERM, then SIGKILL after a grace time);
- abrupt but handled: atexit, SIGINT and SIGTERM handlers (chained to whatever was installed
  before) stop every tracked child;
- abrupt and unhandled (SIGKILL, a crash): each child asks the kernel for SIGTERM when we die
  (`PR_SET_PDEATHSIG`, set between fork and exec, so it holds for any command), and our own
  Python children also watch their parent pid (see `lifeline`).
Spawn from a long-lived thread (the asyncio loop thread): PDEATHSIG fires when the *thread*
that forked the child ends.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any

from collectors.local.lifeline import child_env

_tracked: set[subprocess.Popen[bytes]] = set()
_lock = threading.RLock()  # re-entrant: a signal handler may run while we hold it
_installed = False
_libc: Any = None
if sys.platform.startswith("linux"):
    with contextlib.suppress(OSError):
        _libc = ctypes.CDLL(None, use_errno=True)  # loaded now: never dlopen after fork


def _pdeathsig_preexec(parent: int) -> Callable[[], None] | None:
    if _libc is None:
        return None
    libc = _libc

    def arm() -> None:  # runs in the child between fork and exec: keep it tiny
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)

    return arm


def spawn(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None,
          stdout: int | IO[Any] | None = subprocess.DEVNULL,
          stderr: int | IO[Any] | None = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """Start a tracked child that dies with this process. Raises OSError if it cannot start."""
    install()
    proc = subprocess.Popen(
        list(argv), env=child_env(dict(env or {})), cwd=cwd, stdin=subprocess.DEVNULL,
        stdout=stdout, stderr=stderr, close_fds=True,
        preexec_fn=_pdeathsig_preexec(os.getpid()),  # tiny and lock-free: safe after fork
    )
    with _lock:
        _tracked.add(proc)
    return proc


def forget(proc: subprocess.Popen[bytes]) -> None:
    with _lock:
        _tracked.discard(proc)


def tracked() -> list[subprocess.Popen[bytes]]:
    """Children started and not yet stopped (for tests and diagnostics)."""
    with _lock:
        return [p for p in _tracked if p.poll() is None]


async def stop(proc: subprocess.Popen[bytes], grace: float = 3.0) -> int | None:
    """SIGTERM, wait up to `grace` seconds without blocking the loop, then SIGKILL; reaps.
    SIGCONT follows the SIGTERM: a process someone stopped (SIGSTOP) would otherwise hold the
    SIGTERM pending and take the whole grace to be killed."""
    try:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
                proc.send_signal(signal.SIGCONT)
            deadline = time.monotonic() + grace
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await asyncio.to_thread(proc.wait, 5.0)
        return proc.returncode
    finally:
        forget(proc)


def stop_all_sync(procs: Iterable[subprocess.Popen[bytes]] | None = None, grace: float = 2.0) -> None:
    """Blocking stop of the given (default: all tracked) children: for atexit and signals."""
    with _lock:
        targets = list(_tracked if procs is None else procs)
    for proc in targets:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
    deadline = time.monotonic() + grace
    for proc in targets:
        left = max(0.0, deadline - time.monotonic())
        try:
            proc.wait(left)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(2.0)
        forget(proc)


def _chain(signum: int, previous: Any) -> Callable[[int, FrameType | None], None]:
    def handler(sig: int, frame: FrameType | None) -> None:
        stop_all_sync()
        if callable(previous):
            previous(sig, frame)
        elif previous == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        # SIG_IGN: the program chose to ignore it; our children are gone, nothing more to do

    return handler


def install() -> None:
    """Register atexit and chain SIGINT/SIGTERM handlers, once per process (main thread only)."""
    global _installed
    if _installed:
        return
    _installed = True
    atexit.register(stop_all_sync)
    if threading.current_thread() is not threading.main_thread():
        return  # signal.signal only works there; PDEATHSIG and atexit still hold
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(signum)
        if previous is None:  # installed from C: we cannot call it, leave it alone
            continue
        signal.signal(signum, _chain(signum, previous))


def exit_words(code: int) -> str:
    """How a child that ran ended, from its return code: "killed by SIGKILL", "exit code 1"."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def log_tail(path: Path | None, limit: int = 300) -> str:
    """The last non-empty line of a child's log, for one-line error messages."""
    if path is None:
        return ""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 4096))
            lines = [x.strip() for x in fh.read().decode(errors="replace").splitlines() if x.strip()]
    except OSError:
        return ""
    return lines[-1][:limit] if lines else ""


def package_env() -> dict[str, str]:
    """Env that lets a child `python -m collectors.local...` import this very package tree."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH", "")
    parts = [root, *[p for p in path.split(os.pathsep) if p and p != root]]
    return {"PYTHONPATH": os.pathsep.join(parts)}
