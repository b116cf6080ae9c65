"""A follower's screen (the app under Pilot) across drivers: it follows the lease holder, says
when the driver went away and since when, and picks up the next driver the lease names."""

from __future__ import annotations

import asyncio
from pathlib import Path

from collectors.lease import Holder
from collectors.lease.file_lease import FileLease
from strategies.model import ViewMode
from tests.serve.support import ServedDriver, quick_spec
from tui.app import ReleaseApp
from tui.follow import Follower, LeaseLocator


def status_text(app: ReleaseApp) -> str:
    return str(app.main.query_one("#status").render())


def test_follower_says_driver_gone_and_picks_up_the_next(tmp_path: Path) -> None:
    lock = tmp_path / "release.journal.lock"
    spec = quick_spec(hold="1h")

    async def scenario() -> None:
        lease = FileLease(lock, "checkout")
        follower = Follower(LeaseLocator(FileLease(lock, "checkout"), "release.toml"))
        app = ReleaseApp(None, follower=follower, release="checkout", read_only=True, wallboard=False,
                         refresh=0.1)
        async with app.run_test(size=(160, 48)) as pilot:

            async def until(predicate, what: str) -> None:
                for _ in range(600):
                    if predicate():
                        return
                    await pilot.pause(0.1)
                raise AssertionError(f"never: {what}; status: {status_text(app)}")

            first = ServedDriver(spec)  # its own thread: entered and left off this loop
            await asyncio.to_thread(first.__enter__)
            try:
                await lease.acquire(Holder("checkout", "alpha", 101, "alice", 1.0, attach=first.url))
                await until(lambda: follower.connected and app.shown is not None
                            and app.shown.strategy == "canary", "following the first driver")
                assert app.shown.viewing.mode is ViewMode.FOLLOW and "alice@alpha/101" in status_text(app)
                await lease.release()
            finally:
                await asyncio.to_thread(first.__exit__, None, None, None)
            await until(lambda: "DRIVER GONE since" in status_text(app), "driver gone shown")
            gone = app.shown.viewing.gone_since
            assert gone is not None and app.shown.strategy == "canary"  # the last frame stays

            second_lease = FileLease(lock, "checkout")
            second = ServedDriver(spec)
            await asyncio.to_thread(second.__enter__)
            try:
                await second_lease.acquire(Holder("checkout", "beta", 202, "bob", 2.0, attach=second.url))
                await until(lambda: "bob@beta/202" in status_text(app), "the next driver followed")
                assert "DRIVER GONE" not in status_text(app) and app.shown.viewing.gone_since is None
                assert follower.connections == 2
                await second_lease.release()
            finally:
                await asyncio.to_thread(second.__exit__, None, None, None)

    asyncio.run(scenario())
