"""Ports handed out for servers: distinct, bindable, and (for tests) away from the kernel's
ephemeral range and from other test runs on the same machine."""

from __future__ import annotations

import socket
import subprocess
import sys

from collectors.local.net import RECENT_PORTS, free_port
from tests.support import ports


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_free_port_never_repeats_its_recent_answers() -> None:
    """Two calls in a row once gave one port twice (HAProxy then shared it between frontends)."""
    given = [free_port() for _ in range(200)]
    assert len(set(given)) == 200 < RECENT_PORTS
    assert all(_bindable(port) for port in given[-5:])


def test_test_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    low, _ = ports.ephemeral_range()
    given = ports.free_ports(100)
    assert len(set(given)) == 100
    assert all(p < low for p in given) or low - ports.LOWEST < 2000
    assert all(_bindable(port) for port in given[-5:])
    base = ports.free_run(3)
    assert not {base, base + 1, base + 2} & set(given)


def test_a_test_port_is_held_against_other_processes() -> None:
    """Another pytest run on the machine cannot reserve a port this one was given."""
    port = ports.free_port()
    probe = ("import sys; from tests.support import ports; "
             f"sys.exit(0 if ports._reserve({port}) else 3)")
    held = subprocess.run([sys.executable, "-c", probe], timeout=60)
    assert held.returncode == 3
