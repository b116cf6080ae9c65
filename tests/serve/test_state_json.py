"""A published State survives JSON both ways, typed: what a follower rebuilds is what the driver
published (real engine and driver over in-memory data; Hypothesis for the awkward numbers)."""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import replace
from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strategies.engine import Engine
from strategies.journal import MemoryJournal
from strategies.model import (
    GateResult,
    GateStatus,
    MetricSample,
    Phase,
    RolloutState,
    Severity,
    State,
    Viewing,
    ViewMode,
)
from strategies.state_json import StateFormatError, encode, state_from_json, state_to_json
from tests.doubles import Clock, MemoryPlatform, MemoryRouter, ScriptedSource, broken
from tui.demo_specs import demo_spec
from tui.driver import Driver


@cache
def driven_states() -> tuple[State, ...]:
    """States of a canary that a fault rolls back: steps, weights, gate evidence, events."""
    spec = demo_spec("canary")
    clock = Clock()
    source = ScriptedSource()
    driver = Driver(spec, Engine(spec, journal=MemoryJournal()), MemoryPlatform(), MemoryRouter(),
                    source, clock=clock)
    states = []

    async def scenario() -> None:
        for tick in range(40):
            if tick == 25:
                source.script = broken
            states.append(await driver.tick())
            clock.now += 1.0

    asyncio.run(scenario())
    return tuple(states)


def test_every_state_of_a_real_run_round_trips() -> None:
    states = driven_states()
    phases = {s.rollout.phase for s in states}
    assert Phase.PROGRESSING in phases and (Phase.ROLLING_BACK in phases or Phase.ROLLED_BACK in phases)
    assert any(s.gates and s.gates[0].value is not None for s in states)
    for state in states:
        back = state_from_json(state_to_json(state))
        assert isinstance(back, State)
        assert back.rollout.phase is state.rollout.phase  # enums come back as enums
        assert back.versions == state.versions
        assert back.gates == state.gates
        assert back.rollout.done_actions == state.rollout.done_actions
        assert back.rollout.pending == state.rollout.pending
        assert encode(back) == encode(state)  # everything else, details and evidence included


def test_viewing_travels_typed() -> None:
    state = driven_states()[3]
    viewed = replace(state, viewing=Viewing(ViewMode.FOLLOW, driver="a@b/1", gone_since=5.0))
    back = state_from_json(state_to_json(viewed))
    assert back.viewing == viewed.viewing and back.viewing.mode is ViewMode.FOLLOW


floats = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))


@given(value=floats, threshold=floats, samples=floats, status=st.sampled_from(GateStatus),
       severity=st.sampled_from(Severity), p99=floats)
def test_gate_and_sample_numbers_round_trip(value, threshold, samples, status, severity, p99) -> None:
    gate = GateResult(name="errors", metric="error_rate", severity=severity, status=status, value=value,
                      threshold=threshold, samples=samples, reason="r")
    sample = MetricSample(version="v2", at=1.0, latency_p99=p99, custom={"x": value})
    state = State(at=1.0, release="r", strategy="canary", platform_kind="local", metrics_source="s",
                  rollout=RolloutState(), steps=("10%",), hold=1.0, gates=(gate,),
                  history={"v2": (sample,)})
    back = state_from_json(state_to_json(state))
    for got, want in ((back.gates[0].value, value), (back.gates[0].threshold, threshold),
                      (back.history["v2"][0].latency_p99, p99), (back.history["v2"][0].custom["x"], value)):
        assert (got is None and want is None) or (math.isnan(want) and math.isnan(got)) or got == want
    assert back.gates[0].status is status and back.gates[0].severity is severity


@pytest.mark.parametrize(("text", "problem"), [
    ("{", "not JSON"),
    ('{"schema": 99, "state": {}}', "schema 99"),
    ('{"schema": 1, "state": {"at": 1}}', "state.release: missing"),
    ('{"schema": 1, "state": {"at": "x"}}', "state.at: expected a number"),
])
def test_bad_documents_are_one_clear_line(text: str, problem: str) -> None:
    with pytest.raises(StateFormatError) as caught:
        state_from_json(text)
    assert problem in str(caught.value) and "\n" not in str(caught.value)


def test_json_is_standard() -> None:
    state = driven_states()[-1]
    json.loads(state_to_json(state), parse_constant=lambda c: pytest.fail(f"non-standard {c}"))
