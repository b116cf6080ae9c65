"""What followers cost the driver, and how late they see its decisions.

The driver runs in its own process (real engine, driver and state server over the in-memory
test doubles; a canary of 50 steps, 1 s hold, 0.5 s interval, so it decides about once a
second). This process runs N followers (the real `tui.follow.Follower`, each with its own HTTP
connection, decoding every State like an attached screen does). For N in --followers:
- driver CPU: the driver process's user+system CPU seconds over --seconds, as % of one core;
- delay: for every change of phase/step/weight, the time from the driver publishing that State
  (`State.at`, the driver's clock) to a follower having decoded it; median and max over all
  followers and changes (same machine, same clock).

    PYTHONPATH=. python benchmarks/follow_bench.py [--followers 0 10 50] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from strategies.model import State  # noqa: E402
from tui.follow import Follower, UrlLocator  # noqa: E402

DRIVER = """
import asyncio, sys
sys.path.insert(0, {root!r})
from tests.serve.support import quick_spec
from strategies.engine import Engine
from strategies.journal import MemoryJournal
from tests.doubles import MemoryPlatform, MemoryRouter, ScriptedSource
from tui.driver import Driver
from tui.serve.server import StateServer

async def main():
    spec = quick_spec(interval="500ms", hold="1s", steps=tuple(range(2, 101, 2)))
    driver = Driver(spec, Engine(spec, journal=MemoryJournal()), MemoryPlatform(), MemoryRouter(),
                    ScriptedSource())
    server = StateServer(spec.release.service)
    driver.add_listener(server)
    url = await server.start("127.0.0.1", 0)
    server.on_state(driver.state)
    print(url, flush=True)
    await driver.run(timeout=3600)

asyncio.run(main())
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(url: str, pid: int, followers: int, seconds: float, warmup: float) -> tuple[float, list[float]]:
    delays: list[float] = []
    last: dict[int, tuple[object, ...]] = {}
    measuring = [False]

    def watcher(index: int):
        def on_state(state: State) -> None:
            mark = (state.rollout.phase, state.rollout.step, state.rollout.weight)
            if last.get(index) not in (None, mark) and measuring[0]:
                delays.append(time.time() - state.at)
            last[index] = mark
        return on_state

    tasks = [asyncio.create_task(Follower(UrlLocator(url), on_state=watcher(i)).run()) for i in range(followers)]
    await asyncio.sleep(warmup)
    measuring[0] = True
    began = cpu_seconds(pid)
    await asyncio.sleep(seconds)
    used = cpu_seconds(pid) - began
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return 100.0 * used / seconds, delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, nargs="+", default=[0, 10, 50])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args()
    for count in args.followers:
        driver = subprocess.Popen([sys.executable, "-c", DRIVER.format(root=str(ROOT))], stdout=subprocess.PIPE,
                                  text=True)
        try:
            url = (driver.stdout.readline() if driver.stdout else "").strip()
            cpu, delays = asyncio.run(measure(url, driver.pid, count, args.seconds, args.warmup))
        finally:
            driver.terminate()
            driver.wait(timeout=30)
        load = os.getloadavg()[0]
        if delays:
            print(f"followers {count:3d}: driver CPU {cpu:5.1f}% of a core; decision→follower delay "
                  f"median {statistics.median(delays) * 1000:.1f} ms, max {max(delays) * 1000:.1f} ms "
                  f"({len(delays)} deliveries; load {load:.1f})", flush=True)
        else:
            print(f"followers {count:3d}: driver CPU {cpu:5.1f}% of a core (load {load:.1f})", flush=True)


if __name__ == "__main__":
    main()
