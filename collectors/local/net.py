"""Small loopback-network helpers shared by the local platform, router and tests."""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"
PIN_HEADER = "X-Releasedeck-Version"  # request header: send me to this version (A/B tests)
ROUTED_HEADER = "X-Releasedeck-Routed"  # response header from the local router: who answered
COHORT_HEADER = "X-Releasedeck-Cohort"  # response header from the local router: which cohort rule
MIRROR_HEADER = "X-Releasedeck-Mirror"  # request header on a shadow copy (dark launch)
USER_HEADER = "X-User-Id"  # the demo's user key (sticky assignment)
GROUP_HEADER = "X-User-Group"  # the demo's user group (cohort rules: staff, beta, ...)


def free_port(host: str = LOOPBACK) -> int:
    """A port nobody listens on right now. Racy by nature: callers retry if the bind fails."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
