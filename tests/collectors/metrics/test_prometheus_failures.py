"""PrometheusSource against a Prometheus that is down, slow or answers garbage.

Whatever goes wrong, collect() returns within the spec timeout with a one-line error and no
samples; it never raises and never hands out a partly filled sample.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from urllib.parse import parse_qs, urlparse

import pytest

from collectors.prometheus_source import PrometheusSource
from strategies.model import MetricsSnapshot
from strategies.ports import MetricSource, RawCounterSource
from strategies.spec import MetricsSpec, parse_spec
from tests.collectors.metrics.fake_prometheus import FakePrometheus
from tests.support.ports import free_port

VERSIONS = ("v1", "v2")
TIMEOUT = 1.0


def closed_port_url() -> str:
    """Nobody listens there: a port reserved for this test run (tests/support/ports.py), so no
    other test's server on this machine can answer on it."""
    return f"http://127.0.0.1:{free_port()}"


def vector(*series: tuple[dict[str, str], str]) -> bytes:
    result = [{"metric": labels, "value": [1700000000.0, value]} for labels, value in series]
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()


def collect(url: str, **options: object) -> MetricsSnapshot:
    """One collection, bounded by the spec timeout: exceeding it fails the test."""
    spec = MetricsSpec(source="prometheus", url=url, window=30.0, timeout=TIMEOUT)

    async def run() -> MetricsSnapshot:
        source = PrometheusSource(spec, "checkout", **options)
        try:
            return await asyncio.wait_for(source.collect(VERSIONS, None, 1000.0), timeout=TIMEOUT)
        finally:
            await source.close()

    return asyncio.run(run())


def assert_clean_error(snapshot: MetricsSnapshot, *words: str) -> None:
    assert snapshot.error is not None, "expected an error snapshot"
    assert "\n" not in snapshot.error and "Traceback" not in snapshot.error
    assert snapshot.error.startswith("prometheus at http://127.0.0.1:")
    assert not snapshot.samples
    assert snapshot.source == "prometheus"
    for word in words:
        assert word in snapshot.error


def test_is_a_metric_source_and_raw_counter_source() -> None:
    source = PrometheusSource(MetricsSpec(source="prometheus", url="http://127.0.0.1:1"), "checkout")
    assert isinstance(source, MetricSource) and isinstance(source, RawCounterSource)
    assert source.name == "prometheus"
    asyncio.run(source.close())


def test_down_prometheus_gives_an_error_snapshot() -> None:
    assert_clean_error(collect(closed_port_url()), "unreachable", "connection refused")


def test_slow_prometheus_gives_an_error_within_the_timeout() -> None:
    with FakePrometheus(vector(({"version": "v1"}, "1")), delay=10 * TIMEOUT) as fake:
        snapshot = collect(fake.url)
    assert_clean_error(snapshot, "no answer within")
    assert fake.queries, "the slow server was never asked"


@pytest.mark.parametrize(("body", "status", "words"), [
    (b"<html>this is not prometheus</html>", 200, ("not JSON",)),
    (b'{"status": "success"}', 200, ("not a Prometheus query result",)),
    (b"[1, 2, 3]", 200, ("not a Prometheus query result",)),
    (b'{"status":"success","data":{"resultType":"vector","result":[1]}}', 200,
     ("not a Prometheus query result",)),
    (vector(({"version": "v1"}, "NaN")), 200, ("NaN", "'v1'")),
    (vector(({"version": "v1"}, "lots")), 200, ("not a number",)),
    (vector(({}, "3")), 200, ("without the 'version' label",)),
    (b'{"status":"error","errorType":"bad_data","error":"parse error at char 7"}', 400,
     ("HTTP 400", "parse error at char 7")),
    (b"upstream down", 503, ("HTTP 503",)),
])
def test_garbage_answers_give_an_error_snapshot(body: bytes, status: int, words: tuple[str, ...]) -> None:
    with FakePrometheus(body, status=status) as fake:
        snapshot = collect(fake.url, record_raw=False)
    assert_clean_error(snapshot, *words)


def test_a_good_answer_fills_every_field_from_one_batched_query_each() -> None:
    body = vector(({"version": "v1"}, "200"), ({"version": "v2"}, "50"), ({"version": "v9"}, "7"))
    custom = {"saturation": 'max(saturation{{service="{service}",version="{version}"}})'}
    with FakePrometheus(answer=lambda q: vector(({}, "0.5")) if "saturation" in q else body) as fake:
        snapshot = collect(fake.url, record_raw=False, custom_queries=custom)
    assert snapshot.error is None
    assert set(snapshot.samples) == set(VERSIONS)  # v9 was not asked for
    v2 = snapshot.samples["v2"]
    assert (v2.requests, v2.errors, v2.throughput, v2.latency_p99) == (50.0, 50.0, 50.0, 50.0)
    assert v2.error_ratio == 1.0
    sent = Counter(parse_qs(urlparse(path).query)["query"][0] for path in fake.queries)
    assert all(n == 1 for n in sent.values()), sent
    batched = [q for q in sent if "saturation" not in q]
    assert len(batched) == 6  # requests, errors, throughput, p50, p95, p99: one each
    assert all("by (version" in q and '"v1"' not in q for q in batched)
    per_version = sorted(q for q in sent if "saturation" in q)
    assert per_version == ['max(saturation{service="checkout",version="v1"})',
                           'max(saturation{service="checkout",version="v2"})']
    assert snapshot.samples["v1"].custom["saturation"] == 0.5


def test_a_per_version_query_with_several_series_is_an_error() -> None:
    two = vector(({"pod": "a"}, "1"), ({"pod": "b"}, "2"))
    good = vector(({"version": "v1"}, "200"), ({"version": "v2"}, "50"))
    custom = {"saturation": 'saturation{{version="{version}"}}'}
    with FakePrometheus(answer=lambda q: two if "saturation" in q else good) as fake:
        snapshot = collect(fake.url, record_raw=False, custom_queries=custom)
    assert_clean_error(snapshot, "'saturation'", "2 series")


def test_a_template_with_an_unknown_placeholder_is_refused_at_construction() -> None:
    spec = MetricsSpec(source="prometheus", url="http://127.0.0.1:1")
    with pytest.raises(ValueError, match=r"'gate_q'.*bad template"):
        PrometheusSource(spec, "checkout", custom_queries={"gate_q": "rate(x[{windw}])"})


def test_gate_queries_reach_the_sample_as_custom_metrics() -> None:
    with FakePrometheus(answer=lambda q: vector(({"version": "v1"}, "0.75"), ({"version": "v2"}, "0.5"))
                        if "queue_depth" in q else vector(({"version": "v1"}, "10"))) as fake:
        release = parse_spec({
            "release": {"service": "checkout", "baseline": "v1", "candidate": "v2"},
            "metrics": {"source": "prometheus", "url": fake.url, "timeout": "1s"},
            "strategy": {"kind": "canary", "steps": [50, 100]},
            "gate": [{"metric": "saturation", "max": 0.8,
                      "query": 'max by ({version_label}) (queue_depth{{service="{service}"}})'}],
        })

        async def run() -> MetricsSnapshot:
            source = PrometheusSource.for_release(release, record_raw=False)
            try:
                return await source.collect(release.versions, None, 1.0)
            finally:
                await source.close()

        snapshot = asyncio.run(run())
    assert snapshot.error is None, snapshot.error
    assert snapshot.samples["v1"].value("saturation") == 0.75
    assert snapshot.samples["v2"].value("saturation") == 0.5
    assert snapshot.samples["v2"].requests is None  # v2 absent from the answers: unknown, not 0
    assert 'max by (version) (queue_depth{service="checkout"})' in "".join(
        parse_qs(urlparse(p).query)["query"][0] for p in fake.queries)


def test_a_read_timeout_wrapped_as_connection_error_still_reads_as_slow() -> None:
    """With retries off, requests reports a read timeout as ConnectionError(MaxRetryError(
    ReadTimeoutError)); when it beats the asyncio bound (a busy machine), the message must still
    say "no answer", not "cannot connect"."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util import Retry

    from collectors.prometheus_source import _timed_out

    with FakePrometheus(vector(({"version": "v1"}, "1")), delay=10 * TIMEOUT) as fake:
        session = requests.Session()
        session.mount("http://", HTTPAdapter(max_retries=Retry(total=0, raise_on_status=False)))
        with pytest.raises(requests.ConnectionError) as info:
            session.get(f"{fake.url}/api/v1/query", timeout=0.2)
    assert not isinstance(info.value, requests.Timeout)
    assert _timed_out(info.value)
    with pytest.raises(requests.ConnectionError) as refused:
        requests.get(closed_port_url(), timeout=0.5)
    assert not _timed_out(refused.value)
