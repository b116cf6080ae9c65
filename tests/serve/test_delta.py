"""Deltas on the event stream rebuild exactly the driver's States: a follower that merges each
delta into the previous State holds, after every tick, what the driver published (history
trimmed to the same window, events capped the same way), through JSON both ways."""

from __future__ import annotations

import asyncio
import itertools

from strategies.engine import Engine
from strategies.journal import MemoryJournal
from strategies.model import Command, CommandKind
from strategies.state_json import encode, state_from_json, state_to_json
from tests.doubles import Clock, MemoryPlatform, MemoryRouter, ScriptedSource, broken
from tests.serve.support import quick_spec
from tui.driver import Driver
from tui.follow import merge
from tui.serve.server import delta


def test_merged_deltas_equal_the_published_states() -> None:
    spec = quick_spec(interval="1s", hold="40s", steps=tuple(range(5, 101, 5)))
    clock = Clock()
    source = ScriptedSource()
    driver = Driver(spec, Engine(spec, journal=MemoryJournal()), MemoryPlatform(), MemoryRouter(), source,
                    clock=clock, history_seconds=60.0)
    published = [driver.state]
    driver.add_listener(type("L", (), {"on_state": lambda self, s: published.append(s)})())

    async def scenario() -> None:
        for tick in range(250):  # history outgrows its 60 s window; events outgrow 200
            await driver.command(Command(CommandKind.PAUSE if tick % 2 == 0 else CommandKind.RESUME))
            if tick == 240:
                source.script = broken
            await driver.tick()
            clock.now += 1.0

    asyncio.run(scenario())
    assert len(published[-1].events) == 200 and len(driver.events) > 200 and len(published[-1].history["v2"]) == 61
    shown = state_from_json(state_to_json(published[0]))
    sizes = []
    for previous, state in itertools.pairwise(published):
        wire = state_to_json(delta(previous, state))
        sizes.append(len(wire))
        shown = merge(shown, state_from_json(wire), 60.0)
        assert encode(shown) == encode(state)
    assert max(sizes[100:]) * 10 < len(state_to_json(published[-1]))  # a delta is a small part of a State
