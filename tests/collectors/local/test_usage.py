"""Resources per version on real local processes: CPU after a second look, memory at once."""

from __future__ import annotations

import asyncio

from collectors.local.platform import LocalPlatform
from tests.collectors.local.test_platform import codes, run


def test_local_instances_report_cpu_after_a_second_look_and_memory_at_once() -> None:
    async def scenario() -> None:
        platform = LocalPlatform("checkout")
        try:
            await platform.scale("v1", 2)
            await platform.wait_ready(timeout=60)
            first = (await platform.snapshot(["v1"], now=1.0)).version("v1")
            # the first look cannot know a rate yet: not measured, never a made-up 0
            assert [i.cpu for i in first.instances] == [None, None]
            assert all(i.memory is not None and i.memory > 1_000_000 for i in first.instances)
            await codes(first.instances[0].address, 200)  # some work to measure
            await asyncio.sleep(0.2)
            second = (await platform.snapshot(["v1"], now=2.0)).version("v1")
            assert all(i.cpu is not None and i.cpu >= 0 for i in second.instances)
            assert second.cpu == sum(i.cpu for i in second.instances)
            assert second.memory == sum(i.memory for i in second.instances)
            assert second.restarts == 0
        finally:
            await platform.close()

    run(scenario())
