"""An observer becomes a follower: `watch --read-only` started while nobody drives observes
(gates only, no actions), and follows the first driver that takes the release's lease.

Real processes for headless (a read-only watch first, then a driving watch on the same spec,
over the real local stack); the app under Pilot for the top bar (OBSERVING → FOLLOWING, a toast)
and for a driving app that closes itself when its lease is lost.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from collectors.lease import Holder
from collectors.lease.file_lease import FileLease
from strategies.engine import Engine
from strategies.journal import MemoryJournal
from strategies.model import Viewing, ViewMode
from tests.doubles import MemoryPlatform, MemoryRouter, ScriptedSource
from tests.serve.support import ServedDriver, quick_spec
from tests.serve.test_lease_processes import ROOT, journal, lock_holder, release, wait_for
from tui import exitcodes
from tui.app import ReleaseApp
from tui.driver import Driver
from tui.follow import Handover

ENV_PATH = str(ROOT)


class Lines:
    """A process's stream read line by line in a thread, so a test can wait on what it said."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.lines)

    def join(self) -> None:
        self._thread.join(timeout=30)


def start(spec: Path, *extra: str) -> tuple[subprocess.Popen[str], Lines, Lines]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "watch", str(spec), "--headless", *extra],
        cwd=spec.parent, env={**os.environ, "PYTHONPATH": ENV_PATH}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc, Lines(proc.stdout), Lines(proc.stderr)


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_headless_observer_follows_the_driver_that_comes_and_exits_with_its_code(tmp_path: Path) -> None:
    spec = release(tmp_path, "1h")  # the driver holds its first step until the test stops it
    observer, seen, said = start(spec, "--read-only", "--timeout", "240")
    driver = None
    try:
        wait_for(lambda: observer.poll() is None and any(
            "nobody drives checkout: observing" in x for x in said.lines), timeout=120)
        assert lock_holder(spec) is None  # an observer takes no lease
        assert journal(spec) == []  # and keeps no journal: it never acts

        driver, _out, driver_said = start(spec, "--timeout", "240")
        holder = wait_for(lambda: lock_holder(spec), timeout=120)
        assert holder.pid == driver.pid  # the observer never stood in its way
        line = wait_for(lambda: next((x for x in said.lines if "now drives" in x), None), timeout=120)
        assert line == (f"releasedeck: {holder.identity} now drives checkout: following it at "
                        f"{holder.attach}")
        # following: the driver's state lines, with its phase, arrive on the observer's stdout
        wait_for(lambda: any('"event":"state"' in x and '"phase":"progressing"' in x
                             for x in seen.lines), timeout=120)

        driver.send_signal(signal.SIGTERM)  # the driver ends (stopped before promotion: 1)
        driver_code = driver.wait(timeout=120)
        code = observer.wait(timeout=120)
        said.join()
        assert driver_code == exitcodes.ROLLED_BACK, driver_said.text()
        assert code == driver_code, said.text()
        assert f"the driver ended with exit code {driver_code}" in said.text()
        assert "Traceback" not in said.text()
        # every journaled action is the driver's: one run, no action decided twice
        records = journal(spec)
        assert len({r["run"] for r in records}) == 1
        decided = [a["id"] for r in records for a in r.get("actions", [])]
        assert decided and len(decided) == len(set(decided))
    finally:
        stop(observer)
        if driver is not None:
            stop(driver)


def _observing_app(spec, lock: Path) -> tuple[ReleaseApp, ScriptedSource, Handover]:
    source = ScriptedSource()
    engine = Engine(spec, journal=MemoryJournal(), observe=True, read_only=True)
    driver = Driver(spec, engine, MemoryPlatform(), MemoryRouter(), source,
                    viewing=Viewing(ViewMode.OBSERVE, note="nobody drives checkout: observing"))
    handover = Handover(FileLease(lock, "checkout"), "release.toml", "checkout", poll=0.1)
    app = ReleaseApp(driver, read_only=True, wallboard=False, refresh=0.1, handover=handover)
    return app, source, handover


def status_text(app: ReleaseApp) -> str:
    return str(app.main.query_one("#status").render())


async def _until(pilot, app: ReleaseApp, predicate, what: str) -> None:
    for _ in range(900):
        if predicate():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"never: {what}; status: {status_text(app)}")


def test_app_turns_from_observing_to_following_with_a_toast(tmp_path: Path) -> None:
    lock = tmp_path / "release.journal.lock"
    spec = quick_spec(hold="1h")

    async def scenario() -> None:
        app, source, handover = _observing_app(spec, lock)
        stopped: list[bool] = []

        async def stop_observing() -> None:
            stopped.append(True)

        handover.on_taken = stop_observing
        async with app.run_test(size=(160, 48)) as pilot:
            await _until(pilot, app, lambda: "OBSERVING" in status_text(app), "observing shown")
            await _until(pilot, app, lambda: source.calls > 0, "the observer evaluates gates")
            served = ServedDriver(spec)  # its own thread: entered and left off this loop
            await asyncio.to_thread(served.__enter__)
            lease = FileLease(lock, "checkout")
            try:
                await lease.acquire(Holder("checkout", "alpha", 101, "alice", time.time(),
                                           attach=served.url))
                await _until(pilot, app, lambda: "FOLLOWING alice@alpha/101" in status_text(app)
                             and app.shown is not None and app.shown.strategy == "canary",
                             "following the driver")
                assert "OBSERVING" not in status_text(app)
                assert app.shown.viewing.mode is ViewMode.FOLLOW
                assert any("alice@alpha/101 now drives checkout" in x for x in app.said)  # toast
                assert handover.holder is not None and handover.holder.pid == 101
                # the observer's own ticking stopped, and its run (adapters, stack) was ended
                await _until(pilot, app, lambda: stopped == [True], "the observing run ended")
                assert not [w for w in app.workers if w.name == "ticker" and w.is_running]
            finally:
                await lease.release()
                await asyncio.to_thread(served.__exit__, None, None, None)

    asyncio.run(scenario())


def test_driving_app_closes_when_its_lease_is_lost(tmp_path: Path) -> None:
    spec = quick_spec(hold="1h")

    async def scenario() -> None:
        lease = FileLease(tmp_path / "release.journal.lock", "checkout")
        await lease.acquire(Holder.me("checkout", time.time()))
        driver = Driver(spec, Engine(spec, journal=MemoryJournal()), MemoryPlatform(),
                        MemoryRouter(), ScriptedSource(), lease=lease)
        app = ReleaseApp(driver, read_only=False, wallboard=False, refresh=0.1)
        async with app.run_test(size=(160, 48)) as pilot:
            await _until(pilot, app, lambda: driver.engine.state.weight > 0, "the driver acts")
            await lease.release()  # as when a Kubernetes Lease is taken over after expiry
            await _until(pilot, app, lambda: app.return_code is not None, "the app closed")
        assert app.return_code == exitcodes.LEASE_HELD
        assert driver.lease_lost

    asyncio.run(scenario())
