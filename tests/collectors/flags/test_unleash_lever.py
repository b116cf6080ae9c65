"""The unleash lever against a real Unleash server + PostgreSQL started here on 127.0.0.1.

Unleash's own evaluation (its advanced playground, one call per 1,000 users) says who gets the
flag, so the share is checked where users would meet it, not only in the lever's own reading.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from collectors.flags.unleash import UnleashError, UnleashLever
from strategies.ports import TrafficRouter
from tests.collectors.flags.noise import within_binomial_noise
from tests.support.unleash import UnleashServer, find_unleash

pytestmark = [pytest.mark.unleash,
              pytest.mark.skipif(find_unleash() is not None, reason=find_unleash() or "")]

USERS = [f"user-{i}" for i in range(2000)]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


@pytest.fixture(scope="module")
def unleash() -> Iterator[UnleashServer]:
    # Not under pytest's tmp dir: that one is private to root, and PostgreSQL runs as `postgres`.
    workdir = Path(tempfile.mkdtemp(prefix="releasedeck-unleash-"))
    try:
        with UnleashServer(workdir) as server:
            yield server
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def lever(server: UnleashServer, flag: str, **kw) -> UnleashLever:
    return UnleashLever(server.url, server.admin_token, flag, "off", "on", **kw)


def test_set_and_read_back_the_rollout_as_unleash_evaluates_it(unleash: UnleashServer) -> None:
    async def scenario() -> None:
        flags = lever(unleash, "set-read")
        assert isinstance(flags, TrafficRouter)
        try:
            assert await flags.weights() == {"off": 100.0, "on": 0.0}  # the flag does not exist yet
            await flags.set_weights({"off": 90, "on": 10})  # creates flag + strategy, switches it on
            assert await flags.weights() == {"off": 90.0, "on": 10.0}
            first = unleash.evaluate("set-read", USERS)
            assert within_binomial_noise(len(first), len(USERS), 10), len(first)
            await flags.set_weights({"off": 60, "on": 40})
            assert await flags.weights() == {"off": 60.0, "on": 40.0}
            second = unleash.evaluate("set-read", USERS)
            assert within_binomial_noise(len(second), len(USERS), 40), len(second)
            assert first <= second  # sticky: nobody who had the flag lost it
            with unleash.admin() as admin:
                feature = admin.get("/api/admin/projects/default/features/set-read").json()
            env = next(e for e in feature["environments"] if e["name"] == "development")
            assert [s["name"] for s in env["strategies"]] == ["flexibleRollout"]  # updated, not added
            assert env["strategies"][0]["parameters"]["rollout"] == "40"
        finally:
            await flags.close()

    run(scenario())


def test_kill_switch_turns_the_flag_off_and_a_new_share_turns_it_on(unleash: UnleashServer) -> None:
    async def scenario() -> None:
        flags = lever(unleash, "kill", kill_switch=True)
        try:
            await flags.set_weights({"off": 50, "on": 50})
            assert await flags.enabled() is True
            await flags.set_weights({"off": 100, "on": 0})  # rollback
            assert await flags.enabled() is False
            assert await flags.weights() == {"off": 100.0, "on": 0.0}
            assert unleash.evaluate("kill", USERS[:1000]) == set()
            await flags.set_weights({"off": 80, "on": 20})  # retry
            assert await flags.enabled() is True
            assert within_binomial_noise(len(unleash.evaluate("kill", USERS)), len(USERS), 20)
        finally:
            await flags.close()

    run(scenario())


def test_someone_switching_the_flag_off_reads_as_share_0(unleash: UnleashServer) -> None:
    async def scenario() -> None:
        flags = lever(unleash, "drift")
        try:
            await flags.set_weights({"off": 70, "on": 30})
            with unleash.admin() as admin:
                admin.post("/api/admin/projects/default/features/drift/environments/development/off"
                           ).raise_for_status()
            assert await flags.weights() == {"off": 100.0, "on": 0.0}
            await flags.set_weights({"off": 70, "on": 30})  # reconcile puts it back
            assert await flags.weights() == {"off": 70.0, "on": 30.0}
        finally:
            await flags.close()

    run(scenario())


def test_a_strategy_it_does_not_drive_is_one_clear_line(unleash: UnleashServer) -> None:
    async def scenario() -> None:
        flags = lever(unleash, "foreign")
        try:
            await flags.set_weights({"off": 90, "on": 10})
            with unleash.admin() as admin:
                admin.post("/api/admin/projects/default/features/foreign/environments/development/strategies",
                           json={"name": "default", "parameters": {}}).raise_for_status()
            with pytest.raises(UnleashError) as caught:
                await flags.weights()
            assert "has strategies releasedeck does not drive (default)" in str(caught.value)
        finally:
            await flags.close()

    run(scenario())


def test_a_wrong_token_is_one_clear_line(unleash: UnleashServer) -> None:
    async def scenario() -> None:
        flags = UnleashLever(unleash.url, "*:*.not-a-token", "any", "off", "on")
        try:
            with pytest.raises(UnleashError) as caught:
                await flags.set_weights({"off": 90, "on": 10})
            assert "admin token was refused (HTTP 401" in str(caught.value)
            assert "\n" not in str(caught.value)
        finally:
            await flags.close()

    run(scenario())
