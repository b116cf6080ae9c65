"""The fleet at 100 releases: CPU of the list, Prometheus queries per tick, time of a full tick.

A generated fleet: one exporter process serves `--services` services × 2 versions (counters
moving at a few requests/s each, errors and latencies scripted), a real Prometheus (Debian's
`prometheus` on PATH) scrapes it every second, and `--services` release specs on the default
PromQL point at it, nobody driving them. The fleet list (FleetApp, headless under run_test at
160×48, refreshing every second) gathers them for `--seconds`; this process's CPU is the
fleet's own (the exporter and Prometheus run in other processes). Queries per tick are counted
in Prometheus' query log. Targets: ≤ 10 % of a core, queries per tick independent of the
number of releases, a full tick ≤ 1 s.

    PYTHONPATH=. .venv/bin/python benchmarks/fleet_bench.py [--services 100] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.prometheus import PrometheusServer, free_port  # noqa: E402
from tui.fleet.app import FleetApp  # noqa: E402
from tui.fleet.gather import FleetGatherer  # noqa: E402

EXPORTER = r'''
import sys, threading, time, random
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
port, services = int(sys.argv[1]), int(sys.argv[2])
reg = CollectorRegistry()
req = Counter("http_requests_total", "requests", ["service", "version", "code"], registry=reg)
lat = Histogram("http_request_duration_seconds", "latency", ["service", "version"], registry=reg,
                buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0))
names = [f"svc{i:03d}" for i in range(services)]
for s in names:
    for v in ("v1", "v2"):
        for code in ("200", "500"):
            req.labels(s, v, code)
def traffic():
    rng = random.Random(1)
    while True:
        for s in names:
            for v in ("v1", "v2"):
                for _ in range(5):
                    req.labels(s, v, "500" if rng.random() < 0.01 else "200").inc()
                    lat.labels(s, v).observe(rng.choice((0.012, 0.02, 0.04, 0.09)))
        time.sleep(1.0)
threading.Thread(target=traffic, daemon=True).start()
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = generate_latest(reg)
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
'''

SPEC = """
[release]
service = "{service}"
baseline = "v1"
candidate = "v2"

[platform]
kind = "local"

[metrics]
source = "prometheus"
url = "{url}"
window = "10s"
interval = "1s"

[strategy]
kind = "canary"
steps = [10, 50, 100]
hold = "30s"

[[gate]]
metric = "error_rate"
max = 0.05
"""


async def measure(folder: Path, seconds: float, log: Path) -> dict[str, float]:
    gatherer = FleetGatherer.from_paths([str(folder)])
    ticks: list[float] = []
    app = FleetApp(gatherer, refresh=1.0)
    original = gatherer.refresh

    async def timed(now: float):
        started = time.perf_counter()
        rows = await original(now)
        ticks.append(time.perf_counter() - started)
        return rows

    gatherer.refresh = timed  # type: ignore[method-assign]
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(3.0)  # warm-up: observers built, first reads done
        lines0 = len(log.read_text().splitlines()) if log.exists() else 0
        reads0, ticks0 = gatherer.metric_reads, len(ticks)
        wall0, cpu0 = time.monotonic(), time.process_time()
        await pilot.pause(seconds)
        wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
        measured = ticks[ticks0:]
        await asyncio.sleep(1.5)  # the query log is written asynchronously
        queries = len(log.read_text().splitlines()) - lines0
    await gatherer.close()
    return {"releases": len(gatherer.members), "cpu_percent": round(100 * cpu / wall, 1),
            "ticks": len(measured), "queries_per_tick": round(queries / max(1, len(measured)), 1),
            "metric_reads_per_tick": round((gatherer.metric_reads - reads0) / max(1, len(measured)), 1),
            "tick_median_s": round(statistics.median(measured), 3) if measured else float("nan"),
            "tick_max_s": round(max(measured), 3) if measured else float("nan")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rd-fleet-") as tmp:
        work = Path(tmp)
        port = free_port()
        exporter = subprocess.Popen([sys.executable, "-c", EXPORTER, str(port), str(args.services)],
                                    stderr=subprocess.DEVNULL)
        server = PrometheusServer(work / "prometheus")
        log = work / "queries.log"
        try:
            url = server.start({"global": {"scrape_interval": "1s", "query_log_file": str(log)},
                                "scrape_configs": [{"job_name": "fleet", "static_configs": [
                                    {"targets": [f"127.0.0.1:{port}"]}]}]})
            specs = work / "specs"
            specs.mkdir()
            for i in range(args.services):
                (specs / f"svc{i:03d}.toml").write_text(SPEC.format(service=f"svc{i:03d}", url=url))
            time.sleep(3)  # a few scrapes, so rates exist
            result = asyncio.run(measure(specs, args.seconds, log))
        finally:
            server.stop()
            exporter.terminate()
            exporter.wait(timeout=10)
    print(f"fleet of {args.services} releases, 1 s refresh, 160x48: "
          + "  ".join(f"{k}={v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
