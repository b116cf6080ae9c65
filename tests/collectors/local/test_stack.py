"""LocalStack starts the whole demo on real processes and always tears it down."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from collectors.local.loadgen import LoadGenerator
from collectors.local.stack import LocalStack, LocalStackError
from strategies.spec import parse_spec
from tests.collectors.local.procs import children_of, pid_alive

SPEC = {
    "release": {"service": "checkout", "baseline": "v1", "candidate": "v2"},
    "platform": {"kind": "local", "replicas": 1,
                 "behaviour": {"v1": {"latency_ms": 2}, "v2": {"latency_ms": 2}}},
    "strategy": {"kind": "canary", "steps": [10, 100]},
}


async def until(check, timeout: float = 15.0, what: str = "condition") -> None:
    """Poll an async-friendly predicate with a deadline (no fixed sleeps in assertions)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def test_stack_runs_the_demo_and_cleans_up() -> None:
    spec = parse_spec(SPEC)
    before = set(children_of(os.getpid()))

    async def scenario() -> list[int]:
        async with LocalStack(spec, rate=80, load_duration=30, sync_interval=0.2) as stack:
            snap = await stack.platform.snapshot(spec.versions, now=1.0)
            assert (snap.version("v1").ready, snap.version("v2").ready) == (1, 1)
            assert await stack.router.weights() == {"v1": 100.0, "v2": 0.0}
            load = stack.load
            assert load is not None and load.running
            await until(lambda: load.stats.ok >= 20, what="20 answered requests")
            assert set(load.stats.by_version) == {"v1"} and load.stats.errors == 0
            # the candidate breaks; traffic moves half over; the errors show on v2 only
            assert await stack.inject_fault(error_ratio=1.0) == 1
            await stack.router.set_weights({"v1": 50, "v2": 50})
            await until(lambda: load.stats.errors_by_version["v2"] >= 10, what="errors on v2")
            assert load.stats.errors_by_version["v1"] == 0
            # a crashed instance comes back and the sync loop points the router at its new port
            old = stack.platform.addresses("v1")
            (victim,) = stack.platform.pids("v1")
            os.kill(victim, signal.SIGKILL)
            await until(lambda: stack.platform.addresses("v1") and stack.platform.addresses("v1") != old,
                        what="v1 restarted on a new port")
            await until(lambda: stack.sync_error is None, what="sync to succeed")
            pids = [*stack.platform.pids(), stack.router.pid]
            assert len(pids) == 3 and all(pid_alive(p) for p in pids)
        assert not load.running
        return pids

    pids = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert not any(pid_alive(p) for p in pids)
    assert set(children_of(os.getpid())) <= before


def test_stack_cleans_up_on_error_and_cancellation() -> None:
    spec = parse_spec(SPEC)
    before = set(children_of(os.getpid()))
    seen: list[int] = []

    async def failing() -> None:
        async with LocalStack(spec, load=False) as stack:
            seen.extend([*stack.platform.pids(), stack.router.pid])
            raise RuntimeError("the app broke")

    with pytest.raises(RuntimeError, match="the app broke"):
        asyncio.run(asyncio.wait_for(failing(), 40))
    assert len(seen) == 3 and not any(pid_alive(p) for p in seen)

    async def cancelled() -> None:
        stack = LocalStack(spec, rate=20)
        started = asyncio.Event()

        async def body() -> None:
            async with stack:
                seen.extend([*stack.platform.pids(), stack.router.pid])
                started.set()
                await asyncio.sleep(60)

        task = asyncio.create_task(body())
        await asyncio.wait_for(started.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    seen.clear()
    asyncio.run(asyncio.wait_for(cancelled(), 40))
    assert len(seen) == 3 and not any(pid_alive(p) for p in seen)
    assert set(children_of(os.getpid())) <= before


def test_stack_start_failure_is_one_clear_line() -> None:
    spec = parse_spec({**SPEC, "platform": {"kind": "local", "replicas": 1, "ready_timeout": "1s",
                                             "command": ["/bin/sh", "-c", "echo no luck >&2; exit 3"]}})
    before = set(children_of(os.getpid()))

    async def scenario() -> None:
        with pytest.raises(LocalStackError, match=r"did not start: local instances not ready after 1s.*no luck"):
            async with LocalStack(spec):
                pass

    asyncio.run(asyncio.wait_for(scenario(), 30))
    assert set(children_of(os.getpid())) <= before
    docker = parse_spec({**SPEC, "platform": {"kind": "docker"}})
    with pytest.raises(LocalStackError, match="needs kind"):
        LocalStack(docker)


def test_load_generator_is_bounded(demo_service: str) -> None:
    async def scenario() -> None:
        load = LoadGenerator(demo_service, rate=100, duration=0.5)
        stats = await asyncio.wait_for(load.run(), 10)  # stops by itself
        assert 1 <= stats.sent <= 51 and stats.ok == stats.sent and stats.errors == stats.failed == 0
        with pytest.raises(ValueError, match="above 0"):
            LoadGenerator(demo_service, rate=0)

    asyncio.run(scenario())


def test_scaling_under_load_fails_no_request() -> None:
    spec = parse_spec({**SPEC, "platform": {**SPEC["platform"], "replicas": 2}})

    async def scenario() -> None:
        async with LocalStack(spec, rate=60, load_duration=30, sync_interval=0.2) as stack:
            load = stack.load
            assert load is not None
            await until(lambda: load.stats.ok >= 10, what="traffic to flow")
            await stack.platform.scale("v1", 1)  # the router still lists the removed one for a moment
            seen = load.stats.done
            await until(lambda: load.stats.done >= seen + 30, what="30 more answers after the scale-down")
            await stack.platform.scale("v1", 3)
            await stack.platform.wait_ready(15)
            await until(lambda: len(stack.router.backends.get("v1", [])) == 3, what="router to see 3 backends")
            await stack.platform.scale("v1", 1)
            seen = load.stats.done
            await until(lambda: load.stats.done >= seen + 30, what="30 more answers after the second scale-down")
            assert (load.stats.errors, load.stats.failed) == (0, 0), load.stats.to_dict()
            assert load.stats.by_version["v1"] >= 70

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_teardown_ends_a_sync_task_that_swallowed_its_cancel() -> None:
    """Python 3.11's wait_for can lose a cancel that lands as the inner call finishes; the
    sync loop then sleeps on. Teardown must still end it (this hung `demo` at exit)."""
    spec = parse_spec(SPEC)
    swallowed: list[int] = []

    async def stubborn() -> None:
        while True:
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                if not swallowed:  # the first cancel is lost, as wait_for can lose it
                    swallowed.append(1)
                    asyncio.current_task().uncancel()
                    continue
                raise

    async def scenario() -> tuple[bool, bool]:
        stack = LocalStack(spec)
        stack._sync_task = sync = asyncio.create_task(stubborn())
        await asyncio.sleep(0.1)
        teardown = asyncio.create_task(stack._teardown())
        await asyncio.wait({teardown}, timeout=30)  # bounded: a hang shows as "not done"
        done = teardown.done()
        for task in (teardown, sync):
            task.cancel()
        await asyncio.gather(teardown, sync, return_exceptions=True)
        return done, sync.cancelled()

    assert asyncio.run(scenario()) == (True, True)
    assert swallowed == [1]
