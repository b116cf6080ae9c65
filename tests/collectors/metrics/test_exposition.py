"""One error for answers that are not Prometheus text, whoever reads them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from collectors.exposition import ExpositionError, _plain_families, families


@pytest.mark.parametrize("text", ["v2", "<html>hello {</html>\n", "{}", "a b c d\n", "\x00\xff"])
def test_not_prometheus_text_is_one_error_line(text: str) -> None:
    with pytest.raises(ExpositionError) as caught:
        families(text, "exporter at http://127.0.0.1:1/metrics")
    message = str(caught.value)
    assert message.startswith("exporter at http://127.0.0.1:1/metrics: answered something that "
                              "is not Prometheus text format (")
    assert "\n" not in message


def test_prometheus_text_reads_whole() -> None:
    text = ("# TYPE requests_total counter\nrequests_total{code=\"200\"} 3\n"
            "requests_total{code=\"500\"} 1\n")
    [family] = families(text)
    assert [(s.labels["code"], s.value) for s in family.samples] == [("200", 3.0), ("500", 1.0)]


# ---------------------------------------------------------------- the plain form's fast reader

FRAGMENTS = [
    "# HELP http_requests_total Requests served.", "# HELP http_requests_total", "# TYPE x gauge",
    "# TYPE http_requests_total counter", "# TYPE http_requests counter", "# TYPE lat histogram",
    "# TYPE s summary", "# TYPE u untyped", "# TYPE bad nonsense", "# TYPE x", "# just a comment",
    "# HELP x doc with \\n escape", "# HELP x  two spaces", "#HELP x", "# HELP x \"quoted doc",
    'http_requests_total{code="200",service="checkout"} 90', 'http_requests_total{code="500"} 1e3',
    "http_requests_total 7", 'http_requests{code="200"} 4', "http_requests_created 12",
    'lat_bucket{le="0.1"} 3', 'lat_bucket{le="+Inf"} 5', "lat_sum 0.5", "lat_count 5",
    "s 1", "s_sum 2", "s_count 3", "x NaN", "x +Inf", "x -0", "u 1_000", "x 5 1700000000000",
    'x{a="1",} 2', 'x{a="1",a="2"} 2', 'x{__name__="y"} 1', 'x{a="b\\"c"} 1', 'x{a = "b"} 1',
    'x{} 3', 'x{a="}{ # "} 4', "x\t5", "x  5", "x 0x10", "x five", 'x{a:b="c"} 1', "",
    "   ", 'x{a="é"} 1', "x 9999999999999999999999",
]


def shape(parsed: list[Metric] | None) -> object:
    """Families as plain values (a value by its repr and type: NaN equals NaN here)."""
    if parsed is None:
        return None
    return [(m.name, m.documentation, m.type, m.unit,
             [(s.name, s.labels, repr(s.value), type(s.value), s.timestamp, s.exemplar)
              for s in m.samples]) for m in parsed]


def reference(text: str) -> object:
    try:
        return shape(list(text_string_to_metric_families(text)))
    except (ValueError, IndexError, KeyError, TypeError):
        return None


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12), st.sampled_from(["\n", "\r\n"]))
def test_plain_reader_reads_as_prometheus_client_or_hands_over(lines: list[str], end: str) -> None:
    """Whatever the lines, the plain reader gives prometheus_client's families, or gives the
    text back to it (None): never other families, never a text the reference refuses."""
    text = end.join(lines)
    plain = _plain_families(text)
    if plain is not None:
        assert shape(plain) == reference(text)


def test_a_service_exposition_is_read_by_the_plain_reader() -> None:
    """What prometheus_client's own exporters write (the demo service, most services) never
    falls back to the slow reader: counted, not timed."""
    registry = CollectorRegistry()
    requests = Counter("http_requests_total", "Requests", ["service", "version", "code"],
                       registry=registry)
    latency = Histogram("http_request_duration_seconds", "Latency", ["service", "version"],
                        registry=registry)
    requests.labels("checkout", "v1", "200").inc(90)
    requests.labels("checkout", "v1", "500").inc(3)
    latency.labels("checkout", "v1").observe(0.02)
    text = generate_latest(registry).decode()
    plain = _plain_families(text)
    assert plain is not None
    assert shape(plain) == reference(text)
    assert [f.name for f in families(text)] == [f.name for f in plain]
