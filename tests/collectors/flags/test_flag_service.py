"""One workload, two code paths: the demo service evaluates the flag releasedeck writes.

A real demo-service process reads the flagd file through the OpenFeature SDK; requests carry
stable user ids; its metrics carry the variant; the scrape source splits baseline/candidate by
that label; a fault on the flagged path leaves the default path clean.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from collectors.flags.flagd import FlagdLever
from collectors.local.net import USER_HEADER
from collectors.scrape_source import ScrapeSource
from strategies.model import Instance, PlatformSnapshot, VersionStatus
from strategies.spec import MetricsSpec

ROOT = Path(__file__).resolve().parents[3]
USERS = 400


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


@pytest.fixture
def flagged_service(tmp_path: Path) -> Iterator[tuple[str, FlagdLever]]:
    """A demo-service process (workload v2) gated by new-checkout at 50 %; yields (address, lever)."""
    lever = FlagdLever(tmp_path / "flags.json", "new-checkout", "off", "on")
    run(lever.set_weights({"off": 50, "on": 50}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "collectors.local.demo_service", "--version", "v2", "--port", "0",
         "--latency-ms", "1", "--flag", "new-checkout", "--flag-file", str(lever.path),
         "--flag-variants", "off,on"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        found = re.search(r"listening on (127\.0\.0\.1:\d+)", line)
        assert found, (line, proc.stderr.read().decode() if proc.poll() is not None and proc.stderr else "")
        yield found.group(1), lever
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def send(address: str, users: range) -> Counter[int]:
    codes: Counter[int] = Counter()
    with httpx.Client(base_url=f"http://{address}", trust_env=False, timeout=10) as client:
        for user in users:
            codes[client.get("/", headers={USER_HEADER: f"user-{user}"}).status_code] += 1
    return codes


def counts(address: str) -> dict[tuple[str, str], float]:
    """(variant, code) -> requests, from the service's own /metrics."""
    text = httpx.get(f"http://{address}/metrics", trust_env=False, timeout=10).text
    out: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "http_requests_total":
                out[(sample.labels["variant"], sample.labels["code"])] = sample.value
    return out


def test_metrics_are_labelled_by_variant_and_users_are_sticky(flagged_service: tuple[str, FlagdLever]) -> None:
    address, _ = flagged_service
    first = send(address, range(USERS))
    assert first == {200: USERS}
    seen = counts(address)
    on, off = seen[("on", "200")], seen[("off", "200")]
    assert on + off == USERS
    assert 0.35 * USERS < on < 0.65 * USERS  # 50 % within 6 standard deviations
    send(address, range(USERS))  # the same users again: each takes the same path
    again = counts(address)
    assert (again[("on", "200")], again[("off", "200")]) == (2 * on, 2 * off)


def test_a_fault_on_the_flagged_path_leaves_the_default_path_clean(
        flagged_service: tuple[str, FlagdLever]) -> None:
    address, _ = flagged_service
    answer = httpx.post(f"http://{address}/control/flagged", json={"error_ratio": 1.0}, trust_env=False)
    assert answer.json()["error_ratio"] == 1.0
    assert httpx.get(f"http://{address}/control", trust_env=False).json()["error_ratio"] == 0.0
    codes = send(address, range(USERS))
    seen = counts(address)
    assert seen[("off", "500")] == 0 and seen[("on", "200")] == 0
    assert seen[("on", "500")] == codes[500] > 0
    assert seen[("off", "200")] == codes[200] > 0


def test_scrape_source_splits_the_workload_by_variant(flagged_service: tuple[str, FlagdLever]) -> None:
    address, _ = flagged_service
    httpx.post(f"http://{address}/control/flagged", json={"error_ratio": 1.0}, trust_env=False)
    platform = PlatformSnapshot(at=0.0, versions={"v2": VersionStatus("v2", (
        Instance("v2-1", "v2", True, address=address, metrics_url=f"http://{address}/metrics"),))})
    source = ScrapeSource(MetricsSpec(window=30.0, version_label="variant"), "checkout",
                          split_label="variant", workloads=("v2",))

    async def scenario() -> dict:
        await source.collect(("off", "on"), platform, 100.0)
        await asyncio.to_thread(send, address, range(USERS))
        snapshot = await source.collect(("off", "on"), platform, 101.0)
        await source.close()
        return dict(snapshot.samples)

    samples = run(scenario())
    assert set(samples) == {"off", "on"}
    off, on = samples["off"], samples["on"]
    assert off.requests + on.requests == USERS
    assert off.error_ratio == 0.0 and on.error_ratio == 1.0
    assert off.latency_p99 is not None and on.latency_p99 is not None


def test_the_share_releasedeck_sets_reaches_the_running_service(flagged_service: tuple[str, FlagdLever]) -> None:
    address, lever = flagged_service
    run(lever.set_weights({"off": 100, "on": 0}))
    for _ in range(200):  # the provider re-reads the file on change (bounded wait)
        before = counts(address)
        send(address, range(20))
        after = counts(address)
        if after[("on", "200")] == before[("on", "200")]:
            break
    send(address, range(USERS))
    final = counts(address)
    send(address, range(USERS))
    assert counts(address)[("on", "200")] == final[("on", "200")]  # nobody gets the new path now
