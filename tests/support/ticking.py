"""Ticking a driver on a simulated clock until the world is as a test wants it, bounded."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from tui.driver import Driver

Check = Callable[[], "bool | Awaitable[bool]"]
Seen = Callable[[], "object | Awaitable[object]"]


async def _value(call: Callable[[], object]) -> object:
    """A check may read the world synchronously (a file, the API) or over the loop (a socket)."""
    result = call()
    return await result if inspect.isawaitable(result) else result


async def tick_until(driver: Driver, clock: list[float], done: Check, *, limit: int = 30,
                     seen: Seen | None = None) -> int:
    """Tick one simulated second apart until `done()` holds; return the ticks it took. After
    `limit` ticks, fail saying what was `seen` (when given) and why the engine holds."""
    for ticks in range(1, limit + 1):
        clock[0] += 1.0
        await driver.tick()
        if await _value(done):
            return ticks
    shown = f"{await _value(seen)} " if seen is not None else ""
    raise AssertionError(f"not done after {limit} ticks: {shown}{driver.engine.state.reason}")
