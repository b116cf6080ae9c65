"""How long an adapter may spend on one call when the driver bounds it with `timeout`."""

from __future__ import annotations


def answer_budget(timeout: float) -> float:
    """Our own deadline, under the driver's by a margin for a busy event loop, so an adapter
    answers with a clear error ("no answer within 1.75s") before the driver gives up on it
    with a vague one."""
    return max(0.05, timeout - min(0.25, timeout * 0.25))
