"""The driver's own tick cost (no screen): CPU % of a core at a 1 Hz tick over the local stack.

The operator's app pays for two things: its tick (scrape every instance's /metrics, the
router's weights, the platform's health and psutil, the backend sync, the engine) and its
rendering. This measures the first alone, so a cut to the tick is seen without the screen's
noise: the local demo stack as `watch`/`demo` build it (service processes, router and load
generator are child processes, so their CPU is not counted here), the driver ticking every
--interval seconds, and this process's CPU time (process_time) over --seconds.

`--hold` replaces the demo canary's 8 s step hold, so that the whole window sees a release
running (the default 8 s finishes the release within the window: then the candidate is
scaled down and there is less to scrape). `--profile FILE` writes cProfile stats of the
measured window (read with `python -m pstats FILE`); figures under the profiler are higher.

    PYTHONPATH=. python benchmarks/driver_tick.py [--seconds 30] [--warmup 5] [--hold 8s]
                                                  [--rate 50] [--profile out.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "tui")]

from benchmarks.demo_stack import local_driver, report, spec_with_hold  # noqa: E402
from tui.driver import Driver  # noqa: E402


async def tick_forever(driver: Driver, interval: float) -> None:
    while True:
        began = time.monotonic()
        await driver.tick()
        await asyncio.sleep(max(0.0, interval - (time.monotonic() - began)))


async def measure(args: argparse.Namespace) -> dict[str, object]:
    total = args.warmup + args.seconds + 5
    async with local_driver(spec_with_hold(args.hold), args.rate, total) as driver:
        ticking = asyncio.create_task(tick_forever(driver, args.interval))
        try:
            await asyncio.sleep(args.warmup)
            profiler = cProfile.Profile() if args.profile else None
            ticks0, wall0, cpu0 = driver.ticks, time.monotonic(), time.process_time()
            if profiler is not None:
                profiler.enable()
            await asyncio.sleep(args.seconds)
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(args.profile)
            wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
            ticks = driver.ticks - ticks0
        finally:
            ticking.cancel()
    state = driver.engine.state
    return {"seconds": round(wall, 1), "cpu_percent": round(100 * cpu / wall, 2), "ticks": ticks,
            "ms_per_tick": round(1000 * cpu / max(ticks, 1), 2),
            "phase": state.phase.value, "weight": state.weight}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--interval", type=float, default=1.0, help="tick interval, seconds")
    parser.add_argument("--rate", type=float, default=50.0, help="load, requests/s")
    parser.add_argument("--hold", default="", help="step hold instead of the demo's 8s, e.g. 60s")
    parser.add_argument("--profile", default="", help="write cProfile stats of the window here")
    args = parser.parse_args()
    result = asyncio.run(measure(args))
    print(report(f"driver tick over the local stack, {args.rate:g} req/s, every {args.interval:g}s"
                 f"{', hold ' + args.hold if args.hold else ''}", result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
