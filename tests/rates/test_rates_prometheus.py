"""strategies.rates against a real Prometheus fed exactly the same samples.

The samples are backfilled with promtool (exact timestamps and values, resets, gaps, a late
series, irregular intervals), then increase()/rate()/histogram_quantile() are asked of the
server and compared with ours. Evaluation times sit between samples, because Prometheus 2.x
includes a sample exactly at the range start and Prometheus 3 (and we) do not.
A last test scrapes a live exporter, to check the fixture's scrape path and the same math on
samples Prometheus timestamped itself.
"""

from __future__ import annotations

import math
import random
import threading
import time
from http.server import ThreadingHTTPServer

import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.exposition import MetricsHandler

from strategies.ports import RawCounters
from strategies.rates import counter_increase, histogram_quantile, sample_from_counters
from tests.support.prometheus import PrometheusServer, free_port

pytestmark = pytest.mark.prometheus

BOUNDS = ("0.05", "0.1", "0.25", "0.5", "1", "+Inf")


def _series(t0: float) -> dict[str, list[tuple[float, float]]]:
    rng = random.Random(8)
    out: dict[str, list[tuple[float, float]]] = {}
    out["steady"] = [(t0 + k + 0.123, 10.0 * k + 3) for k in range(100)]
    value, resets = 50.0, []
    for k in range(100):
        value = rng.uniform(0, 5) if k in (20, 45, 46) else value + rng.uniform(0, 20)
        resets.append((t0 + k + 0.2, round(value, 3)))
    out["resets"] = resets
    out["gap"] = [(t0 + k + 0.3, 7.0 * k) for k in list(range(0, 21)) + list(range(50, 91))]
    out["late"] = [(t0 + k + 0.4, 2.0 * (k - 40) + 1000) for k in range(40, 100)]
    t, value, irregular = t0 + 0.05, 0.0, []
    while t < t0 + 100:
        irregular.append((round(t, 3), value))
        t += rng.uniform(0.5, 3.0)
        value += rng.uniform(0, 30)
    out["irregular"] = irregular
    return out


def _traffic(t0: float) -> list[RawCounters]:
    """One version's raw counters each second, restarting (all counters to 0) at k = 60."""
    rng = random.Random(3)
    requests = errors = 0.0
    buckets = dict.fromkeys(BOUNDS, 0.0)
    out = []
    for k in range(100):
        if k == 60:
            requests = errors = 0.0
            buckets = dict.fromkeys(BOUNDS, 0.0)
        n = rng.randint(20, 40)
        requests += n
        errors += rng.randint(0, 3)
        slow = 0.3 if k > 50 else 0.05
        running = 0.0
        for bound in BOUNDS:
            share = 1.0 if bound == "+Inf" else min(1.0, float(bound) / (slow * 4))
            running = max(running, math.floor(n * share))
            buckets[bound] += running
        out.append(RawCounters("v2", t0 + k + 0.25, requests, errors, dict(buckets)))
    return out


def _openmetrics(series: dict[str, list[tuple[float, float]]], traffic: list[RawCounters]) -> str:
    lines = ["# TYPE rd_requests counter"]
    for name, points in series.items():
        lines += [f'rd_requests_total{{series="{name}"}} {v} {t:.3f}' for t, v in points]
    lines += ["# TYPE rd_http_requests counter"]
    lines += [f"rd_http_requests_total {c.requests_total} {c.at:.3f}" for c in traffic]
    lines += ["# TYPE rd_http_errors counter"]
    lines += [f"rd_http_errors_total {c.errors_total} {c.at:.3f}" for c in traffic]
    lines += ["# TYPE rd_latency_seconds histogram"]
    for bound in BOUNDS:
        lines += [f'rd_latency_seconds_bucket{{le="{bound}"}} {c.latency_buckets[bound]} '
                  f"{c.at:.3f}" for c in traffic]
    return "\n".join(lines) + "\n# EOF\n"


def _same(ours: float | None, theirs: float | None) -> bool:
    if ours is None or theirs is None or math.isnan(theirs):
        return ours is None and (theirs is None or math.isnan(theirs))
    return math.isclose(ours, theirs, rel_tol=1e-6, abs_tol=1e-9)


def test_increase_rate_and_quantiles_match_prometheus(prometheus_server: PrometheusServer):
    t0 = float(int(time.time()) - 3600)
    series, traffic = _series(t0), _traffic(t0)
    prometheus_server.backfill(_openmetrics(series, traffic))
    prometheus_server.start()
    compared = known = 0
    mismatches = []
    for offset in (1.6, 10.5, 21.7, 25.5, 47.5, 55.9, 60.5, 75.5, 95.5, 110.5):
        at = t0 + offset
        for window in (3, 10, 30, 60):
            increases = prometheus_server.vector(f"increase(rd_requests_total[{window}s])", at,
                                                 "series")
            rates = prometheus_server.vector(f"rate(rd_requests_total[{window}s])", at, "series")
            for name, points in series.items():
                theirs, rate = increases.get(name), rates.get(name)
                ours = counter_increase(points, at - window, at)
                ours_rate = None if ours is None else ours / window
                known += ours is not None
                compared += 1
                if not (_same(ours, theirs) and _same(ours_rate, rate)):
                    mismatches.append((name, offset, window, ours, theirs, ours_rate, rate))
            sample = sample_from_counters("v2", traffic, at, float(window))
            for field, expr in (
                ("requests", f"increase(rd_http_requests_total[{window}s])"),
                ("errors", f"increase(rd_http_errors_total[{window}s])"),
                ("throughput", f"rate(rd_http_requests_total[{window}s])"),
                ("latency_p50", f"histogram_quantile(0.5, sum by (le) "
                                f"(rate(rd_latency_seconds_bucket[{window}s])))"),
                ("latency_p95", f"histogram_quantile(0.95, sum by (le) "
                                f"(rate(rd_latency_seconds_bucket[{window}s])))"),
                ("latency_p99", f"histogram_quantile(0.99, sum by (le) "
                                f"(increase(rd_latency_seconds_bucket[{window}s])))"),
            ):
                theirs = prometheus_server.scalar(expr, at)
                ours = getattr(sample, field)
                compared += 1
                known += ours is not None
                if not _same(ours, theirs):
                    mismatches.append((field, offset, window, ours, theirs))
    assert mismatches == []
    assert compared == 10 * 4 * (len(series) + 6)
    assert known > compared * 0.6  # most comparisons are of numbers, not of two "no data"


def test_quantile_edge_cases_match_prometheus(prometheus_server: PrometheusServer):
    """Non-monotonic buckets, everything in +Inf, no observations: the same answers."""
    t0 = float(int(time.time()) - 3000)
    cases = {
        "nonmono": {"0.1": 10, "0.5": 8, "1": 15, "+Inf": 20},
        "allinf": {"0.1": 0, "0.5": 0, "+Inf": 9},
        "empty": {"0.1": 0, "0.5": 0, "+Inf": 0},
        "first": {"0.1": 40, "0.5": 40, "+Inf": 40},
    }
    lines = ["# TYPE rd_q histogram"]
    for name, buckets in cases.items():
        lines += [f'rd_q_bucket{{case="{name}",le="{b}"}} {c} {t0 + 1:.3f}'
                  for b, c in buckets.items()]
    prometheus_server.backfill("\n".join(lines) + "\n# EOF\n")
    prometheus_server.start()
    checked = 0
    for name, buckets in cases.items():
        numeric = {float(b): float(c) for b, c in buckets.items()}
        for q in (-0.5, 0.0, 0.25, 0.5, 0.9, 0.99, 1.0, 1.5):
            expr = f'histogram_quantile({q}, rd_q_bucket{{case="{name}"}})'
            theirs = prometheus_server.scalar(expr, t0 + 2)
            ours = histogram_quantile(q, numeric)
            checked += 1
            if theirs is not None and math.isinf(theirs):
                assert ours == theirs, (name, q)
            else:
                assert _same(ours, theirs), (name, q, ours, theirs)
    assert checked == 32


def test_scraped_counter_matches_prometheus(prometheus_server: PrometheusServer):
    """A live exporter scraped every second: our increase on the very samples it stored."""
    registry = CollectorRegistry()
    counter = Counter("rd_scraped", "test counter", registry=registry)

    class Handler(MetricsHandler):
        def log_message(self, *args: object) -> None:
            return None

    handler = Handler.factory(registry)
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        prometheus_server.start({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [{"job_name": "rd", "static_configs": [
                {"targets": [f"127.0.0.1:{port}"]}]}],
        })
        points: list[tuple[float, float]] = []
        deadline = time.monotonic() + 30
        while len(points) < 4 and time.monotonic() < deadline:
            counter.inc(7)
            time.sleep(0.2)
            result = prometheus_server.query("rd_scraped_total[5m]", time.time())
            points = [(float(t), float(v)) for t, v in result[0]["values"]] if result else []
        assert len(points) >= 4, "prometheus did not store 4 scrapes in 30s"
        at = points[-1][0] + 0.25
        window = at - points[1][0] + 0.5  # start half a second before the second sample
        theirs = prometheus_server.scalar(f"increase(rd_scraped_total[{window * 1000:.0f}ms])",
                                          at)
        ours = counter_increase(points, at - round(window, 3), at)
        assert ours is not None and theirs is not None
        assert ours == pytest.approx(theirs, rel=1e-6)
        assert ours > 0
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
