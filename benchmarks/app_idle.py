"""The app's own CPU % and RSS while idle (nobody pressing keys) over a running release.

Default: the real local demo stack (service processes and router as child processes, the load
generator as a separate process at --rate req/s) read by the scrape source, so this process
holds only what the operator's screen costs: the tick worker (scrape + engine) and rendering.
`--stack memory` swaps in the in-memory test doubles to see the app's cost without scraping.
`--idle`: no load at all, so nothing moves on the screen but its clocks (the release waits for
traffic at its first step); without it the canary runs its steps under --rate req/s.
`--hold`: each step's hold (the demo's is 8 s, so its four steps end inside a 40 s window and
the screen changes phase every few seconds; a real canary holds minutes, e.g. "60s": figures,
plots and countdowns move every second, phases rarely).
`python_ref_s`: the CPU seconds of a fixed Python loop on this machine at that time (its speed
varies; compare figures of different days only with it beside them).
Headless (App.run_test): the compositor renders every frame; only the terminal write is skipped.

    PYTHONPATH=. python benchmarks/app_idle.py [--size 80x24] [--wallboard] [--idle]
                                               [--seconds 20] [--warmup 5] [--refresh 1]
                                               [--hold 60s]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "tui")]

from benchmarks.demo_stack import local_driver, report, spec_with_hold  # noqa: E402
from strategies.engine import Engine  # noqa: E402
from strategies.journal import MemoryJournal  # noqa: E402
from tui.app import ReleaseApp  # noqa: E402
from tui.driver import Driver  # noqa: E402


def python_reference_seconds() -> float:
    """CPU seconds of a fixed pure-Python loop, measured beside each run. This shared machine's
    speed moves by 20 % from hour to hour; a figure is comparable with another day's only
    together with this one (a slower machine shows a higher app CPU % for the same code)."""
    began = time.process_time()
    total = 0
    for i in range(3_000_000):
        total += i * i % 7
    return round(time.process_time() - began, 2)


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.asynccontextmanager
async def memory_driver() -> AsyncIterator[Driver]:
    from support import MemoryPlatform, MemoryRouter, ScriptedSource, make_spec

    spec = make_spec()
    yield Driver(spec, Engine(spec, journal=MemoryJournal()), MemoryPlatform(), MemoryRouter(),
                 ScriptedSource())


async def measure(args: argparse.Namespace) -> dict[str, float]:
    total = args.warmup + args.seconds + 5
    rate = 0.0 if args.idle else args.rate
    maker = (local_driver(spec_with_hold(args.hold), rate, total) if args.stack == "local"
             else memory_driver())
    async with maker as driver:
        app = ReleaseApp(driver, read_only=False, wallboard=args.wallboard, refresh=args.refresh)
        async with app.run_test(size=(args.cols, args.rows)) as pilot:
            await pilot.pause(args.warmup)
            ticks0, wall0, cpu0 = driver.ticks, time.monotonic(), time.process_time()
            await pilot.pause(args.seconds)
            wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
            ticks = driver.ticks - ticks0
            rss = rss_mib()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": round(wall, 1), "cpu_percent": round(100 * cpu / wall, 1),
            "rss_mib": round(rss, 1), "peak_rss_mib": round(peak, 1), "ticks": ticks,
            "phase": driver.engine.state.phase.value, "weight": driver.engine.state.weight}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", choices=("local", "memory"), default="local")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--refresh", type=float, default=1.0)
    parser.add_argument("--rate", type=float, default=50.0, help="load, requests/s")
    parser.add_argument("--size", default="160x48")
    parser.add_argument("--wallboard", action="store_true")
    parser.add_argument("--idle", action="store_true", help="no load: nothing moves but clocks")
    parser.add_argument("--hold", default="", help='each canary step\'s hold, e.g. "60s" '
                        "(default: the demo's 8s)")
    args = parser.parse_args()
    args.cols, args.rows = (int(n) for n in args.size.lower().split("x"))
    reference = python_reference_seconds()
    result = {**asyncio.run(measure(args)), "python_ref_s": reference}
    hold = f", hold {args.hold}" if args.hold else ""
    print(report(f"app over the {args.stack} stack, {'idle (no load)' if args.idle else 'running'}"
                 f"{hold}, {args.size}, refresh {args.refresh:g}s"
                 f"{', wallboard' if args.wallboard else ''}", result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
