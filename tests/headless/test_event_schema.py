"""Every event kind a run emits validates against tui/schemas/events.schema.json (schema 2).

The run is real: the engine and driver over in-memory doubles and a settable clock, alert
sinks that really deliver (stdout) and really fail (a webhook to a closed port on 127.0.0.1).
The test also checks that the kinds seen cover every decision kind the engine can make, so a new
decision kind without a schema entry fails here.
"""

from __future__ import annotations

import asyncio
import io
import json
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from collectors.alerts import build_dispatcher
from strategies.engine import Engine
from strategies.journal import MemoryJournal
from strategies.model import (
    EVENT_SCHEMA_VERSION,
    Command,
    CommandKind,
    DecisionKind,
    MetricsSnapshot,
    Phase,
)
from strategies.spec import parse_spec
from tests.doubles import Clock, MemoryPlatform, MemoryRouter, ScriptedSource, broken, healthy
from tui.demo import emit_fault
from tui.driver import Driver

SCHEMA = Path(__file__).resolve().parents[2] / "tui" / "schemas" / "events.schema.json"
# every kind of decision the engine can make, but the journal-only evidence checkpoint
DECISION_KINDS = {k.value for k in DecisionKind} - {DecisionKind.EVIDENCE.value}

SPEC = """
[release]
service = "checkout"
baseline = "v1"
candidate = "v2"

[platform]
kind = "local"
replicas = 2

[metrics]
source = "scrape"
interval = "1s"
window = "10s"
stale_after = "3s"

[strategy]
kind = "canary"
steps = [10, 50, 100]
hold = "30s"
scale_down_delay = "1s"

[[gate]]
name = "errors"
metric = "error_rate"
max = 0.05
for = "1s"
severity = "critical"
min_requests = 20

[[gate]]
name = "p99"
metric = "latency_p99"
max = 0.5
for = "1s"
severity = "critical"
min_requests = 20

[[alert]]
kind = "stdout"

[[alert]]
kind = "webhook"
url = "http://127.0.0.1:9/hook"
retries = 0
"""


class FlakyRouter(MemoryRouter):
    """Refuses the next `failures` weight changes (an admin API that is down for a moment)."""

    failures = 0

    async def set_weights(self, weights: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("router admin API refused the connection")
        await super().set_weights(weights)


async def a_run_with_every_kind() -> list[dict[str, Any]]:
    spec = parse_spec(tomllib.loads(SPEC), "<schema test>")
    clock = Clock()
    router = FlakyRouter()
    source = ScriptedSource()
    engine = Engine(spec, journal=MemoryJournal(), run="schema")
    driver = Driver(spec, engine, MemoryPlatform(), router, source, clock=clock)
    lines: list[dict[str, Any]] = []

    class Printer:
        def on_event(self, event: Any) -> None:
            lines.append(json.loads(event.to_json()))

    driver.add_listener(Printer())
    alerts = build_dispatcher(spec, emit=driver.emit, stream=io.StringIO(), backoff=0.01)
    driver.add_listener(alerts)

    async def ticks(n: int) -> None:
        for _ in range(n):  # bounded
            await driver.tick()
            clock.now += 1.0

    async def command(kind: CommandKind, value: int | None = None) -> None:
        await driver.command(Command(kind, value=value))

    await ticks(3)  # started, gates pass, actions done
    await command(CommandKind.PAUSE)
    await command(CommandKind.PAUSE)  # refused
    await command(CommandKind.RESUME)
    await command(CommandKind.SET_WEIGHT, 30)
    await command(CommandKind.RESUME)
    router.failures = 1
    await command(CommandKind.PROMOTE)  # step; the lever fails once: action_failed
    await ticks(3)  # retried by the driver
    router.current = {"v1": 100.0, "v2": 0.0}  # someone moved the lever: reconcile
    await ticks(2)

    async def down(versions: object, platform: object, now: float) -> MetricsSnapshot:
        return MetricsSnapshot(at=now, source="scripted", error="scripted: connection refused")

    collect = source.collect
    source.collect = down  # type: ignore[method-assign]
    await ticks(6)  # stale
    source.collect = collect  # type: ignore[method-assign]
    await ticks(2)  # fresh
    source.script = broken
    emit_fault(driver, "v2", {"error_ratio": 0.21}, cleared=False)
    for _ in range(20):  # rolling_back, rolled_back, scaled_down
        await ticks(1)
        if engine.state.phase is Phase.ROLLED_BACK and engine.state.cleaned:
            break
    source.script = healthy
    emit_fault(driver, "v2", {"error_ratio": 0.002}, cleared=True)
    await command(CommandKind.RETRY)
    await ticks(2)
    await command(CommandKind.ABORT)
    await command(CommandKind.RETRY)
    await ticks(2)
    await command(CommandKind.PROMOTE_FULL)  # promoting
    for _ in range(10):  # promoted
        await ticks(1)
        if engine.state.phase is Phase.SUCCEEDED:
            break
    await alerts.close(5.0)
    return lines + await adopted_lines()


async def adopted_lines() -> list[dict[str, Any]]:
    """`adopted`: a run resumed with a changed spec and --adopt-spec."""
    spec = parse_spec(tomllib.loads(SPEC), "<schema test>")
    journal = MemoryJournal()
    clock = Clock()
    first = Engine(spec, journal=journal, run="adopt")
    driver = Driver(spec, first, MemoryPlatform(), MemoryRouter(), ScriptedSource(), clock=clock)
    for _ in range(3):
        await driver.tick()
        clock.now += 1.0
    changed = parse_spec(tomllib.loads(SPEC.replace("steps = [10, 50, 100]",
                                                    "steps = [10, 30, 60, 100]")), "<changed>")
    resumed = Engine(changed, journal=journal, records=list(journal.records), adopt_spec=True)
    again = Driver(changed, resumed, MemoryPlatform(), MemoryRouter(), ScriptedSource(),
                   clock=clock)
    await again.tick()
    return [json.loads(e.to_json()) for e in again.events]


@pytest.fixture(scope="module")
def lines() -> list[dict[str, Any]]:
    return asyncio.run(a_run_with_every_kind())


def test_every_event_kind_validates_against_the_schema(lines: list[dict[str, Any]]) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    kinds = {line["event"] for line in lines}
    assert kinds >= DECISION_KINDS, sorted(DECISION_KINDS - kinds)
    assert {"fault_injected", "fault_cleared", "alert", "alert_failed"} <= kinds, sorted(kinds)
    for line in lines:
        errors = sorted(validator.iter_errors(line), key=str)
        assert not errors, f"{line['event']}: {errors[0].message} in {line}"
    assert {line["schema"] for line in lines} == {EVENT_SCHEMA_VERSION}


def test_step_counts_from_one_and_promoted_carries_no_gate(lines: list[dict[str, Any]]) -> None:
    started = next(line for line in lines if line["event"] == "started")
    assert (started["step"], started["steps"], started["label"]) == (1, 3, "10%")
    step = next(line for line in lines if line["event"] == "step")
    assert step["step"] == 2 and step["label"] == "50%"  # the screen's "step 2/3"
    promoted = next(line for line in lines if line["event"] == "promoted")
    assert "gate" not in promoted and promoted["step"] == promoted["steps"] == 3
    assert all(e["status"] == "pass" for e in promoted["evidence"] if "gate" in e)
    errors = next(line for line in lines if line["event"] == "gate" and line["gate"] == "errors")
    assert errors["unit"] == "ratio"
    p99 = next(line for line in lines if line["event"] == "gate" and line["gate"] == "p99")
    assert p99["unit"] == "seconds" and p99["threshold"] == 0.5  # seconds, and it says so
    fault = next(line for line in lines if line["event"] == "fault_injected")
    assert {k: fault[k] for k in ("phase", "actor", "version")} == {
        "phase": "progressing", "actor": "operator", "version": "v2"}
    assert 1 <= fault["step"] <= fault["steps"] and 0 < fault["weight"] <= 100
