"""Small loopback-network helpers shared by the local platform, router and tests."""

from __future__ import annotations

import socket
import threading
from collections import deque

LOOPBACK = "127.0.0.1"
PIN_HEADER = "X-Releasedeck-Version"  # request header: send me to this version (A/B tests)
ROUTED_HEADER = "X-Releasedeck-Routed"  # response header from the local router: who answered
COHORT_HEADER = "X-Releasedeck-Cohort"  # response header from the local router: which cohort rule
MIRROR_HEADER = "X-Releasedeck-Mirror"  # request header on a shadow copy (dark launch)
USER_HEADER = "X-User-Id"  # the demo's user key (sticky assignment)
GROUP_HEADER = "X-User-Group"  # the demo's user group (cohort rules: staff, beta, ...)


RECENT_PORTS = 256
"""How many of its last answers `free_port` never gives again."""

_recent: deque[int] = deque(maxlen=RECENT_PORTS)
_recent_lock = threading.Lock()


def free_port(host: str = LOOPBACK) -> int:
    """A port nobody listens on right now, and none this process was handed in its last 256 calls.

    The kernel may give the same ephemeral port to two binds in a row once the first socket is
    closed; a caller that takes two ports before anything listens (a proxy's traffic and stats
    frontends) then got one port twice, and a server binding with SO_REUSEPORT (HAProxy) shares
    it silently. Remembering recent answers makes ports taken together distinct. Still racy
    against other processes by nature: callers retry if their bind fails.
    """
    with _recent_lock:
        for _ in range(4 * RECENT_PORTS):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                port = int(sock.getsockname()[1])
            if port not in _recent:
                _recent.append(port)
                return port
        raise OSError(f"no free port on {host} outside the last {RECENT_PORTS} handed out")
