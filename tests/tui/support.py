"""Test doubles of data for the app: an in-memory platform and router, a scripted metric source,
a settable clock, and deterministic scenes (operate, paused, rolled back) built by really
running the engine through the Driver. Also used by scripts/screenshots.py.
"""

from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
import tomllib
from pathlib import Path

from collectors.flags.flagd import FlagdLever
from strategies.engine import Engine
from strategies.journal import MemoryJournal
from strategies.model import (
    Command,
    CommandKind,
    Phase,
)
from strategies.spec import ReleaseSpec, parse_spec
from tests.doubles import (  # noqa: F401 (re-exported for the app tests and scripts)
    T0,
    Clock,
    MemoryPlatform,
    MemoryRouter,
    Script,
    ScriptedSource,
    broken,
    healthy,
)
from tui.driver import Driver

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
interval = "250ms"
window = "10s"
stale_after = "5s"

[strategy]
kind = "canary"
steps = [10, 25, 50, 100]
hold = "30s"
scale_down_delay = "2s"

[[gate]]
name = "errors"
metric = "error_rate"
max = 0.05
max_ratio = 3.0
for = "5s"
severity = "critical"
min_requests = 20

[[gate]]
name = "p99"
metric = "latency_p99"
max = 0.5
for = "5s"
severity = "critical"
min_requests = 20

[[gate]]
name = "p95-warn"
metric = "latency_p95"
max = 0.3
for = "10s"
severity = "warning"
min_requests = 20
"""


FLAG_SPEC = SPEC.replace('baseline = "v1"\ncandidate = "v2"', 'baseline = "off"\ncandidate = "on"').replace(
    """[strategy]
kind = "canary"
steps = [10, 25, 50, 100]
hold = "30s"
""", """[router]
kind = "flagd"
file = "flags.json"

[strategy]
kind = "flag"
flag = "new-checkout"
workload = "v2"
start_weight = 10
step_weight = 20
max_weight = 50
kill_switch = true
hold = "30s"
""")
"""The flag release of the snapshots: variants off/on of one workload, a flagd file as the lever."""


RING_SPEC = SPEC.replace("""[strategy]
kind = "canary"
steps = [10, 25, 50, 100]
hold = "30s"
""", """[strategy]
kind = "ring"
hold = "30s"
sticky = { header = "X-User-Id" }
rings = [
  { name = "staff", match = { header = "X-User-Group", values = ["staff"] } },
  { name = "early", weight = 25 },
  { name = "everyone", weight = 100 },
]
""")
"""The ring release of the snapshots: staff first by header, then sticky shares of everyone."""


def make_spec(text: str = SPEC) -> ReleaseSpec:
    return parse_spec(tomllib.loads(text), "<test>")


class World:
    """One Driver over the doubles, with handles on every part a test wants to inspect."""

    def __init__(self, *, read_only: bool = False, spec: ReleaseSpec | None = None,
                 flag: bool = False) -> None:
        self.spec = spec or make_spec(FLAG_SPEC if flag else SPEC)
        self.clock = Clock()
        self.journal = MemoryJournal()
        self.platform = MemoryPlatform({"v2": 2} if flag else None)
        # a flag release moves a real flagd file (in a temp dir: the spec's "flags.json" is only shown)
        self.router = FlagdLever(_scratch() / "flags.json", "new-checkout", "off", "on", kill_switch=True) \
            if flag else MemoryRouter()
        self.source = ScriptedSource()
        self.engine = Engine(self.spec, read_only=read_only, journal=self.journal, run="testrun")
        self.driver = Driver(self.spec, self.engine, self.platform, self.router, self.source,
                             clock=self.clock, demo=True)

    async def run_for(self, seconds: int) -> None:
        """Tick once per simulated second (bounded by `seconds`)."""
        for _ in range(seconds):
            await self.driver.tick()
            self.clock.now += 1.0

    async def fault(self) -> None:
        self.source.script = broken
        self.driver.emit("fault_injected", {"version": "v2", "error_rate": 0.2},
                         severity="warning")


def _scratch() -> Path:
    path = Path(tempfile.mkdtemp(prefix="releasedeck-scene-"))
    atexit.register(shutil.rmtree, path, True)
    return path


async def make_scene(name: str, *, read_only: bool = False) -> World:
    """A deterministic world in one of the states the screenshots and snapshots show
    (operate, paused, rolled-back; flag: a flag release 14 s into its second step; ring: a ring
    release 14 s into its second ring)."""
    world = World(read_only=read_only, flag=name == "flag",
                  spec=make_spec(RING_SPEC) if name == "ring" else None)
    await world.run_for(45)  # step 1 (10%) held 30s, now 14s into step 2 (25%)
    if name == "paused":
        await world.driver.command(Command(CommandKind.PAUSE))
        world.clock.now += 3.0
        await world.driver.tick()
    elif name == "rolled-back":
        await world.fault()
        for _ in range(30):  # bounded: the critical gates need 5s of failure
            await world.run_for(1)
            if world.engine.state.phase is Phase.ROLLED_BACK:
                break
        await world.run_for(1)
    return world


def scene(name: str, *, read_only: bool = False) -> World:
    """`make_scene` for code that is not in an event loop yet (snapshot tests, scripts)."""
    return asyncio.run(make_scene(name, read_only=read_only))
