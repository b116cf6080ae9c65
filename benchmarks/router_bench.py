"""How much the built-in local router costs: added latency per request and max throughput.

    PYTHONPATH=. python benchmarks/router_bench.py [--requests 1000] [--duration 5] [--concurrency 32]

Starts two demo service instances (0 ms work) and the router in front of them, then
1. overhead: `--requests` sequential keep-alive GETs, alternating direct and through the router,
   and prints the median (and p90) of each and the median added per request;
2. throughput: `--concurrency` closed-loop clients for `--duration` seconds, direct to one
   instance and through the router (split over both), and prints completed req/s and failures.
Client, router and services share this machine's cores, so throughput is a floor for the
router, not its ceiling; the direct figure shows what the backend alone allows.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import statistics
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.local.platform import LocalPlatform
from collectors.local.router import LocalRouter


def sequential(targets: dict[str, tuple[str, int]], count: int) -> dict[str, list[float]]:
    """Alternate the targets request by request so drift (CPU frequency, noise) hits both alike."""
    conns = {name: http.client.HTTPConnection(host, port, timeout=5) for name, (host, port) in targets.items()}
    times: dict[str, list[float]] = {name: [] for name in targets}
    try:
        for conn in conns.values():  # warm up: connections, caches, the router's pool
            for _ in range(20):
                conn.request("GET", "/warm")
                conn.getresponse().read()
        for _ in range(count):
            for name, conn in conns.items():
                start = time.perf_counter()
                conn.request("GET", "/bench")
                answer = conn.getresponse()
                answer.read()
                times[name].append(time.perf_counter() - start)
                if answer.status != 200:
                    raise RuntimeError(f"{name}: HTTP {answer.status}")
    finally:
        for conn in conns.values():
            conn.close()
    return times


async def saturate(url: str, duration: float, concurrency: int) -> tuple[float, int, int]:
    """Closed loop: `concurrency` workers send back to back; returns (req/s, ok, failed)."""
    ok = failed = 0
    end = time.monotonic() + duration
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as session:

        async def worker() -> None:
            nonlocal ok, failed
            while time.monotonic() < end:
                try:
                    async with session.get(url) as answer:
                        await answer.read()
                        if answer.status == 200:
                            ok += 1
                        else:
                            failed += 1
                except aiohttp.ClientError:
                    failed += 1

        start = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.monotonic() - start
    return ok / elapsed, ok, failed


def ms(value: float) -> str:
    return f"{value * 1000:.3f} ms"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="sequential requests per target")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per throughput run")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = parser.parse_args()

    platform = LocalPlatform("bench", behaviour={"v1": {"latency_ms": 0}})
    router = LocalRouter(weights={"v1": 100})
    try:
        await platform.scale("v1", 2)
        await platform.wait_ready(20)
        await router.start()
        backends = platform.addresses("v1")
        await router.set_backends({"v1": backends})
        direct_host, direct_port = backends[0].split(":")
        times = await asyncio.to_thread(sequential, {
            "direct": (direct_host, int(direct_port)), "router": ("127.0.0.1", router.port)}, args.requests)
        direct_rps, direct_ok, direct_failed = await saturate(
            f"http://{backends[0]}/bench", args.duration, args.concurrency)
        router_rps, router_ok, router_failed = await saturate(
            f"{router.url}/bench", args.duration, args.concurrency)
    finally:
        await router.close()
        await platform.close()

    direct_med, router_med = statistics.median(times["direct"]), statistics.median(times["router"])
    added = [r - d for r, d in zip(times["router"], times["direct"], strict=True)]
    result = {
        "machine_cpus": os.cpu_count(),
        "requests": args.requests,
        "direct_median_ms": round(direct_med * 1000, 3),
        "router_median_ms": round(router_med * 1000, 3),
        "added_median_ms": round(statistics.median(added) * 1000, 3),
        "router_p90_ms": round(statistics.quantiles(times["router"], n=10)[-1] * 1000, 3),
        "direct_p90_ms": round(statistics.quantiles(times["direct"], n=10)[-1] * 1000, 3),
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "direct_rps": round(direct_rps), "direct_failed": direct_failed, "direct_ok": direct_ok,
        "router_rps": round(router_rps), "router_failed": router_failed, "router_ok": router_ok,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"machine: {os.cpu_count()} CPUs; client, router and 2 demo instances (0 ms work) share them")
    print(f"latency over {args.requests} sequential keep-alive requests each (alternating):")
    print(f"  direct        median {ms(direct_med)}  p90 {result['direct_p90_ms']:.3f} ms")
    print(f"  via router    median {ms(router_med)}  p90 {result['router_p90_ms']:.3f} ms")
    print(f"  router adds   median {result['added_median_ms']:.3f} ms per request")
    print(f"throughput, {args.concurrency} closed-loop clients for {args.duration:g}s:")
    print(f"  direct (1 instance)       {direct_rps:8.0f} req/s  ({direct_failed} failed)")
    print(f"  via router (2 instances)  {router_rps:8.0f} req/s  ({router_failed} failed)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
