"""Ports for the tests' servers, safe on a loaded machine where several test runs share 127.0.0.1.

Why not the kernel's `bind(0)`: that port comes from the ephemeral range, and once the probe
socket is closed the kernel may hand the same port to the next `bind(0)` (two `free_port()` calls
in a row gave HAProxy's traffic and stats frontends one port, and with SO_REUSEPORT both bound it)
or to any outgoing connection before our server binds. So a test port here is:
- below the kernel's ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`), where no
  outgoing connection is ever given a port;
- never one this process handed out before (a set for the whole session);
- reserved across processes by a lock file held for this process's life (two pytest runs at
  once never pick the same port; a crashed run's locks go with its process);
- bindable right now (nobody listens on it).
Servers that still lose a race (a foreign program took it) are retried by their fixtures with
`retry_on_taken_port`.
"""

from __future__ import annotations

import errno
import fcntl
import os
import random
import socket
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

LOOPBACK = "127.0.0.1"
LOWEST = 20000  # below this live many well-known services; above it the ephemeral range begins
LOCK_DIR = Path(tempfile.gettempdir()) / "releasedeck-test-ports"

_given: set[int] = set()
_locks: dict[int, int] = {}  # port -> fd of its lock file, open while this process lives
_mutex = threading.Lock()
_random = random.Random()

T = TypeVar("T")


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux default 32768..60999)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _pool() -> range:
    low, high = ephemeral_range()
    if low - LOWEST >= 2000:
        return range(LOWEST, low)
    return range(high + 1, 65536) if 65535 - high >= 2000 else range(LOWEST, 32768)


def _reserve(port: int) -> bool:
    """Hold port's lock file for this process's life; False if another live process holds it."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(LOCK_DIR / str(port), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    os.set_inheritable(fd, False)
    _locks[port] = fd
    return True


def _bindable(port: int, host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = LOOPBACK) -> int:
    """One port below the ephemeral range that nobody else has: see the module's docstring."""
    pool = _pool()
    with _mutex:
        for _ in range(2000):
            port = _random.choice(pool)
            if port in _given:
                continue
            _given.add(port)  # tried once, never again: a port in use now may be in TIME_WAIT later
            if _reserve(port):
                if _bindable(port, host):
                    return port
                os.close(_locks.pop(port))
        raise OSError(errno.EADDRINUSE, f"no free test port on {host} in {pool.start}..{pool.stop - 1}")


def free_run(n: int, host: str = LOOPBACK) -> int:
    """First of n consecutive free ports, all reserved (a version's instances get base, base+1, ...)."""
    pool = _pool()
    with _mutex:
        for _ in range(500):
            base = _random.choice(range(pool.start, pool.stop - n))
            run = range(base, base + n)
            if any(port in _given for port in run):
                continue
            _given.update(run)
            held = [port for port in run if _reserve(port)]
            if len(held) == n and all(_bindable(port, host) for port in run):
                return base
            for port in held:
                os.close(_locks.pop(port))
        raise OSError(errno.EADDRINUSE, f"no {n} consecutive free test ports on {host}")


def free_ports(n: int, host: str = LOOPBACK) -> list[int]:
    """n distinct ports (see `free_port`)."""
    return [free_port(host) for _ in range(n)]


def retry_on_taken_port(start: Callable[[], T], *, attempts: int = 4) -> T:
    """Call `start` (which takes fresh ports on each call) until a server came up.

    `start` raises `PortTaken` when its server could not bind; anything else goes through.
    """
    for attempt in range(attempts):
        try:
            return start()
        except PortTaken:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


class PortTaken(RuntimeError):
    """A test server could not bind its port (someone took it between our probe and its bind)."""
