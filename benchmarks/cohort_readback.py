"""What holding cohort routes costs a tick: one read-back of the route on a real HAProxy.

    PYTHONPATH=. .venv/bin/python benchmarks/cohort_readback.py [--calls 300]

What runs: HAProxy 2.6 with the cohort frontend lines of a ring spec (a header map, a cookie
map, the sticky map of 100 slots), the router built from the spec as `watch` builds it, ring 1
open at 90/10. Each call is the reconcile read-back a tick makes (`route_differences`: one
`show map` per map over the runtime socket, compared with the journal's route). CPU is this
process's (`process_time`), HAProxy's own not counted; the load average is printed beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collectors.haproxy import HAProxyRouter  # noqa: E402
from strategies.cohorts import CohortRule, Route, UserKey  # noqa: E402
from tests.collectors.docker.helpers import version_servers  # noqa: E402
from tests.collectors.docker.test_haproxy_cohorts import STAFF, CohortHAProxy, ring_spec  # noqa: E402
from tests.support.ports import free_ports  # noqa: E402


async def measure(router: HAProxyRouter, calls: int) -> tuple[float, float]:
    route = Route(cohorts=(CohortRule("staff", STAFF, "v2"),), sticky=UserKey(header="X-User-Id"),
                  salt="checkout/v2")
    weights = {"v1": 90, "v2": 10}
    await router.set_weights(weights)
    await router.set_route(route)
    if await router.route_differences(route, weights) != ():
        raise SystemExit("the route read back differs right after it was written")
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        await router.route_differences(route, weights)
    return (time.process_time() - cpu) / calls, (time.perf_counter() - wall) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    with version_servers(["v1", "v2"]) as ports, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        traffic, stats = free_ports(2)
        spec = ring_spec(str(work / "admin.sock"), f"http://127.0.0.1:{stats}/metrics",
                         work / "maps", work)
        router = HAProxyRouter.from_spec(spec)
        assert router.cohorts is not None
        proxy = CohortHAProxy(work, traffic, stats, ports, router.cohorts.frontend_lines(),
                              router.cohorts.paths())
        proxy.start()
        try:
            cpu, wall = asyncio.run(measure(router, args.calls))
        finally:
            proxy.stop()
    print(f"HAProxy cohort read-back, {len(router.cohorts.paths())} maps (sticky 100 slots), "
          f"{args.calls} calls: {cpu * 1000:.2f} ms CPU, {wall * 1000:.2f} ms wall per tick; "
          f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
