"""The demo canary's local stack with its driver, as `watch`/`demo` build it, for benchmarks.

Shared by the app's and the tick's benchmarks so both measure the same thing: service
processes, router and load generator are child processes (their CPU is not this process's),
and the driver syncs the router's backends each tick (tui/wiring.py), so the stack runs no
sync of its own.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from collectors.local.stack import LocalStack
from collectors.scrape_source import ScrapeSource
from strategies.engine import Engine
from strategies.journal import MemoryJournal
from strategies.spec import ReleaseSpec, parse_spec
from tui.demo_specs import demo_spec_text
from tui.driver import Driver

ROOT = Path(__file__).resolve().parent.parent


def spec_with_hold(hold: str = "") -> ReleaseSpec:
    """The demo canary, its 8 s step hold replaced when `hold` is given (e.g. "60s", as a real
    canary holds: then a 40 s window sees one step running, not four and the end)."""
    text = demo_spec_text("canary")
    if hold:
        text = text.replace('hold = "8s"', f'hold = "{hold}"')
    return parse_spec(tomllib.loads(text), "<embedded demo: canary>")


@contextlib.asynccontextmanager
async def local_driver(spec: ReleaseSpec, rate: float, seconds: float) -> AsyncIterator[Driver]:
    """The stack up, load at `rate` req/s for `seconds` (none at 0), and a driver over it."""
    async with LocalStack(spec, load=False, sync_interval=None) as stack:
        load = subprocess.Popen(
            [sys.executable, "-m", "collectors.local.loadgen", "--url", stack.url,
             "--rate", str(rate), "--duration", str(seconds)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) if rate > 0 else None
        source = ScrapeSource(spec.metrics, spec.release.service)
        try:
            yield Driver(spec, Engine(spec, journal=MemoryJournal()), stack.platform,
                         stack.router, source)
        finally:
            if load is not None:
                load.terminate()
                load.wait(timeout=10)
            await source.close()


def report(title: str, result: Mapping[str, object]) -> str:
    """One benchmark's figures on a line, with the load average they were measured at."""
    load = " ".join(f"{n:.2f}" for n in os.getloadavg())
    return f"{title}: " + "  ".join(f"{k}={v}" for k, v in result.items()) + f"  loadavg={load}"
