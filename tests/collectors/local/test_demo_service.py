"""The demo service is a real HTTP process whose metrics move with traffic and /control."""

from __future__ import annotations

import re

import httpx


def counter(text: str, code: str) -> float:
    total = 0.0
    for labels, value in re.findall(r'^http_requests_total\{([^}]*)\} (\S+)$', text, re.M):
        if f'code="{code}"' in labels:
            assert 'service="checkout"' in labels and 'version="v1"' in labels
            total += float(value)
    return total


def histogram_count(text: str) -> float:
    match = re.search(r'^http_request_duration_seconds_count\{[^}]*version="v1"[^}]*\} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def test_metrics_move_with_traffic(demo_service: str) -> None:
    with httpx.Client(base_url=demo_service, timeout=5) as client:
        before = client.get("/metrics").text
        answers = [client.get(f"/work/{i}") for i in range(15)]
        after = client.get("/metrics").text
    assert [a.status_code for a in answers] == [200] * 15
    assert answers[0].json()["version"] == "v1"
    assert answers[0].headers["X-Releasedeck-Version"] == "v1"
    assert counter(after, "200") - counter(before, "200") == 15
    assert histogram_count(after) - histogram_count(before) == 15
    for bound in ("0.005", "0.05", "0.5", "5.0", "+Inf"):
        assert f'le="{bound}"' in after
    # /metrics, /healthz and /control are not counted as work
    client_paths = counter(after, "200")
    with httpx.Client(base_url=demo_service, timeout=5) as client:
        client.get("/healthz")
        client.get("/control")
        again = client.get("/metrics").text
    assert counter(again, "200") == client_paths


def test_control_injects_errors_and_latency(demo_service: str) -> None:
    with httpx.Client(base_url=demo_service, timeout=5) as client:
        assert client.get("/control").json() == {"latency_ms": 2.0, "error_ratio": 0.0, "conversion": 0.1}
        changed = client.post("/control", json={"error_ratio": 1.0, "latency_ms": 60})
        assert changed.status_code == 200
        assert changed.json() == {"latency_ms": 60.0, "error_ratio": 1.0, "conversion": 0.1}
        codes = [client.get("/").status_code for _ in range(5)]
        text = client.get("/metrics").text
    assert codes == [500] * 5
    assert counter(text, "500") == 5
    # all 5 slow requests landed above the 50 ms bucket boundary
    fast = re.search(r'^http_request_duration_seconds_bucket\{le="0\.05"[^}]*\} (\S+)$', text, re.M)
    assert fast is not None and float(fast.group(1)) == 0.0


def test_control_rejects_bad_input(demo_service: str) -> None:
    with httpx.Client(base_url=demo_service, timeout=5) as client:
        for body in ({"error_ratio": 2}, {"latency_ms": "slow"}, {"nope": 1}, [1]):
            answer = client.post("/control", json=body)
            assert answer.status_code == 400, body
            assert answer.json()["error"]
        assert client.post("/control", content=b"{not json").status_code == 400
        assert client.get("/control").json() == {"latency_ms": 2.0, "error_ratio": 0.0, "conversion": 0.1}
