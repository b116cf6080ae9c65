"""One driver, three followers: a Textual app under Pilot, `attach --headless` (JSON lines) and
a real headless Chromium showing the browser wallboard (textual-serve). Every change of phase,
step and weight the driver publishes reaches every follower, in order, none skipped; every
metric query the release costs comes from the driver's own ticks (counted at the source)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from strategies.model import Phase, State
from tests.serve.support import ServedDriver, quick_spec
from tests.support.chromium import Chromium, chromium_binary
from tests.support.prometheus import free_port
from tui.app import ReleaseApp
from tui.follow import Follower, UrlLocator

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
ANSI = re.compile(r"\x1b\[[0-9;?$]*[A-Za-z]|\x1b\][^\x07]*\x07")

# Installed before the page's scripts: keep every frame the wallboard's WebSocket receives.
RECORD_FRAMES = """
window.__frames = [];
const Native = window.WebSocket;
window.WebSocket = function (...args) {
  const socket = new Native(...args);
  socket.addEventListener("message", (e) => {
    if (typeof e.data === "string") { window.__frames.push(e.data); return; }
    const decode = (buffer) => window.__frames.push(new TextDecoder().decode(buffer));
    if (e.data instanceof ArrayBuffer) decode(e.data); else e.data.arrayBuffer().then(decode);
  });
  return socket;
};
window.WebSocket.prototype = Native.prototype;
Object.assign(window.WebSocket, Native);
"""


def mark(state: State) -> tuple[str, int, int]:
    return state.rollout.phase.value, state.rollout.step, state.rollout.weight


def changes(marks: list) -> list:
    """Consecutive duplicates dropped: the sequence of changes."""
    return [m for i, m in enumerate(marks) if i == 0 or marks[i - 1] != m]


def rollout_text(phase_step_weight: tuple[str, int, int], steps: int) -> str:
    """What the rollout bar draws for one mark (tui/app/widgets/rollout.py)."""
    _phase, step, weight = phase_step_weight
    return f"step {min(step + 1, steps)}/{steps}  weight {weight}%"


class Recorder:
    def __init__(self) -> None:
        self.marks: list[tuple[str, int, int]] = []

    def on_state(self, state: State) -> None:
        self.marks.append(mark(state))


def wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.1)


@pytest.mark.skipif(chromium_binary() is None, reason="chromium not on PATH (Debian package 'chromium')")
def test_driver_and_three_followers(tmp_path: Path) -> None:
    spec = quick_spec(interval="400ms", hold="3s", steps=(20, 50, 100))
    steps = 3
    recorder = Recorder()
    web_port = free_port()
    with ServedDriver(spec, ticking=False, listeners=(recorder,)) as served:
        recorder.on_state(served.driver.state)
        headless = subprocess.Popen([sys.executable, "-m", "tui.cli", "attach", served.url, "--headless",
                                     "--timeout", "300"], env=ENV, text=True, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
        web = subprocess.Popen([sys.executable, "-m", "tui.cli", "attach", served.url, "--web",
                                f"127.0.0.1:{web_port}"], env=ENV, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        shown: list[tuple[str, int, int]] = []

        async def pilot_and_browser() -> str:
            follower = Follower(UrlLocator(served.url))
            app = ReleaseApp(None, follower=follower, release="checkout", read_only=True, wallboard=False,
                             refresh=0.2)
            original = app.main.show

            def show(state: State) -> None:
                if state.strategy:  # not the "waiting for a driver" placeholder
                    shown.append(mark(state))
                original(state)

            app.main.show = show  # type: ignore[method-assign]
            async with Chromium(tmp_path) as browser, app.run_test(size=(160, 48)) as pilot:
                await browser.add_init_script(RECORD_FRAMES)
                deadline = time.monotonic() + 120
                while True:  # the page comes up once textual-serve listens
                    await browser.open(f"http://127.0.0.1:{web_port}/")
                    await asyncio.sleep(2)
                    if await browser.evaluate("document.querySelector('.textual-terminal') !== null"):
                        break
                    assert time.monotonic() < deadline, "textual-serve did not answer"
                while served.server.followers < 3:  # pilot, headless, the browser tab's app
                    assert time.monotonic() < deadline, f"{served.server.followers} followers"
                    await asyncio.sleep(0.2)
                while "step 1/3  weight 0%" not in ANSI.sub("", await browser.evaluate("window.__frames.join('')")):
                    assert time.monotonic() < deadline, "the browser never drew the first frame"
                    await asyncio.sleep(0.5)
                served.start_ticking()
                while served.driver.state.rollout.phase is not Phase.SUCCEEDED or \
                        (shown and shown[-1] != mark(served.driver.state)):
                    assert time.monotonic() < deadline + 180, "release did not finish"
                    await pilot.pause(0.2)
                final = rollout_text(mark(served.driver.state), steps)
                while final not in ANSI.sub("", await browser.evaluate("window.__frames.join('')")):
                    # the browser's last frames: waited for, not slept on (a loaded machine)
                    assert time.monotonic() < deadline + 240, f"the browser never drew {final!r}"
                    await asyncio.sleep(0.5)
                await browser.screenshot(tmp_path / "wallboard.png")
                if os.environ.get("RELEASEDECK_SCREENSHOTS"):  # refresh the README's picture
                    shutil.copy(tmp_path / "wallboard.png", ROOT / "screenshots" / "wallboard-browser.png")
                frames = await browser.evaluate("window.__frames.join('')")
            return str(frames)

        frames = asyncio.run(pilot_and_browser())
        ticks, queries = served.driver.ticks, served.source.calls
    out, err = headless.communicate(timeout=120)
    web.terminate()
    web.wait(timeout=30)

    decided = changes(recorder.marks)
    assert decided[0] == ("pending", 0, 0) and decided[-1] == ("succeeded", steps, 100)
    assert [w for _p, _s, w in decided if _p == "progressing"][:3] == [20, 50, 100]

    # 1. the Pilot app drew every change, in order
    assert changes(shown) == decided

    # 2. attach --headless printed every change as a state line, then the driver's exit code
    assert headless.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    printed = [(b["phase"], b["step"], b["weight"]) for b in lines if b["event"] == "state"]
    assert changes(printed) == decided
    assert [b["event"] for b in lines if b["event"] != "state"].count("promoted") == 1

    # 3. the browser wallboard received every change's rollout line, in order
    text = ANSI.sub("", frames)
    drawn = changes([t for t in re.findall(r"step \d+/\d+  weight \d+%", text) if not t.startswith("step 0/0")])
    assert drawn == changes([rollout_text(m, steps) for m in decided]), drawn

    # 4. every metric query came from a driver tick: the followers cost the source nothing
    assert queries == ticks > 0
