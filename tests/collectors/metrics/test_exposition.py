"""One error for answers that are not Prometheus text, whoever reads them."""

from __future__ import annotations

import pytest

from collectors.exposition import ExpositionError, families


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
