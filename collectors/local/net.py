"""Small loopback-network helpers shared by the local platform, router and tests."""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"
PIN_HEADER = "X-Releasedeck-Version"  # request header: send me to this version (A/B tests)
ROUTED_HEADER = "X-Releasedeck-Routed"  # response header from the local router: who answered
USER_HEADER = "X-Releasedeck-User"  # request header: a stable user id (a flag's targetingKey)


def free_port(host: str = LOOPBACK) -> int:
    """A port nobody listens on right now. Racy by nature: callers retry if the bind fails."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
