"""Headless runs over the REAL local stack: demo service processes, the built-in router and a
load generator; metrics from the real scrape source. A fault exits 1 (and Alertmanager shows the
critical alert); a healthy candidate exits 0."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest

from collectors.local.stack import LocalStack
from tests.headless.conftest import am_alerts
from tests.headless.support import make_spec
from tui import exitcodes
from tui.headless import run_headless_async
from tui.session import RunOptions, assemble
from tui.wiring import Adapters, build_source


def local_spec(**sections: Any) -> Any:
    return make_spec(
        platform={"kind": "local", "replicas": 1,
                  "behaviour": {"v1": {"latency_ms": 2}, "v2": {"latency_ms": 2}}},
        router={"kind": "local"},
        metrics={"interval": "250ms", "window": "2s", "stale_after": "3s", "timeout": "2s"},
        strategy={"kind": "canary", "steps": [50, 100], "hold": "1500ms",
                  "scale_down_delay": "0s"},
        **sections)


def run_on_stack(spec: Any, tmp_path: Path, *, fault: float | None = None
                 ) -> tuple[int, list[str], str]:
    out, err = io.StringIO(), io.StringIO()

    async def scenario() -> int:
        async with LocalStack(spec, rate=60, load_duration=120, sync_interval=0.2) as stack:
            if fault is not None:
                assert await stack.inject_fault(error_ratio=fault) == 1
            session = assemble(spec, Adapters(stack.platform, stack.router, build_source(spec),
                                              stack_owned=True),
                               RunOptions(journal_path=str(tmp_path / "journal"), alert_stream=out,
                                          alert_backoff=0.05), err=err)
            return await run_headless_async(session, timeout=60, out=out, err=err)

    code = asyncio.run(scenario())
    events = [json.loads(line)["event"] for line in out.getvalue().splitlines()]
    return code, events, err.getvalue()


def test_healthy_candidate_on_the_local_stack_promotes(tmp_path):
    code, events, err = run_on_stack(local_spec(), tmp_path)
    assert code == exitcodes.PROMOTED, err
    assert events.index("started") < events.index("promoting") < events.index("promoted")
    assert "rolling_back" not in events


@pytest.mark.alertmanager
def test_faulty_candidate_on_the_local_stack_rolls_back(tmp_path, alertmanager):
    spec = local_spec(alert=[{"kind": "alertmanager", "url": alertmanager,
                              "min_severity": "critical"}])
    code, events, err = run_on_stack(spec, tmp_path, fault=0.5)
    assert code == exitcodes.ROLLED_BACK, err
    assert "rolling_back" in events and "promoted" not in events
    assert "gate errors" in err and "0 undelivered" in err
    alerts = am_alerts(alertmanager, filter='alertname="ReleaseRolledBack"')
    assert [a["labels"]["severity"] for a in alerts] == ["critical"]
    assert alerts[0]["labels"]["service"] == "checkout"
