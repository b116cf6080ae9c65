"""The tick loop on a flag release: the real flagd lever as the lever, level-triggered.

Someone edits the flag file by hand; the next ticks see the share the file now gives (the
screen shows it), journal a reconcile and write the share the journal says back.
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from pathlib import Path

from collectors.flags.flagd import FlagdLever, shape
from strategies.engine import Engine
from strategies.journal import MemoryJournal
from strategies.spec import parse_spec
from tests.doubles import Clock, MemoryPlatform, ScriptedSource, healthy
from tests.tui.support import FLAG_SPEC
from tui.driver import Driver


def test_a_hand_edited_flag_is_put_back_and_shown_meanwhile(tmp_path: Path) -> None:
    spec = parse_spec(tomllib.loads(FLAG_SPEC), "<test>")
    path = tmp_path / "flags.json"
    lever = FlagdLever(path, "new-checkout", "off", "on", kill_switch=True)
    journal = MemoryJournal()
    clock = Clock()
    driver = Driver(spec, Engine(spec, journal=journal), MemoryPlatform({"v2": 2}), lever,
                    ScriptedSource(healthy), clock=clock)
    shown: list[float | None] = []

    async def scenario() -> None:
        for _ in range(5):  # the rollout starts: the first step writes share 10
            state = await driver.tick()
            clock.now += 1.0
        assert state.flag is not None and state.flag.share == 10.0
        document = json.loads(path.read_text())
        document["flags"]["new-checkout"] = shape("new-checkout", "off", "on", 60).definition()
        path.write_text(json.dumps(document))  # someone else moves the flag
        for _ in range(5):
            state = await driver.tick()
            shown.append(state.flag.share if state.flag else None)
            clock.now += 1.0
            if state.flag is not None and state.flag.share == 10.0 and shown.count(60.0):
                break

    asyncio.run(asyncio.wait_for(scenario(), 30))
    assert shown[0] == 60.0  # the drift was seen and shown ...
    assert shown[-1] == 10.0  # ... and undone
    assert [r["kind"] for r in journal.records].count("reconcile") == 1
    assert json.loads(path.read_text())["flags"]["new-checkout"]["targeting"]["fractional"][1] == ["on", 10]
    assert driver.state.flag is not None
    assert driver.state.flag.shares() == (("off", 90.0), ("on", 10.0))
