"""The operator's keys, driven with Pilot over a real Driver and Engine (in-memory adapters,
a clock that moves only when told). Every wait is a bounded poll, never a fixed sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from support import World, make_scene
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import RichLog
from textual.widgets._toast import Toast

from strategies.model import Phase
from tui.app import ReleaseApp
from tui.app.app import ExtraAction
from tui.app.components import ConfirmScreen, WeightScreen
from tui.app.widgets import EventLog, RolloutBar, StatusBar

ACTION_KEYS = ("p", "P", "space", "r", "a", "w", "f")


async def until(pilot: Pilot, check: Callable[[], bool], *, seconds: float = 15.0) -> bool:
    """Poll `check` between frames until a deadline (generous: CI machines can be busy)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if check():
            return True
        await pilot.pause(0.01)
    return check()


async def started_world(*, read_only: bool = False) -> World:
    world = World(read_only=read_only)
    await world.run_for(3)  # step 1 of 4 (10%), 3 s into its 30 s hold
    await world.driver.tick()  # settle at the current instant
    return world


def text_of(widget: Widget) -> str:
    """What the widget shows on screen now, line by line (so clipping counts too)."""
    return "\n".join("".join(seg.text for seg in widget.render_line(y))
                     for y in range(widget.size.height))


def app_for(world: World, **kw: object) -> ReleaseApp:
    kw.setdefault("read_only", False)
    kw.setdefault("wallboard", False)
    return ReleaseApp(world.driver, refresh=0.05, **kw)  # type: ignore[arg-type]


def test_p_promotes_to_the_next_step() -> None:
    async def scenario() -> None:
        world = await started_world()
        assert world.engine.state.step == 0 and world.router.current["v2"] == 10.0
        app = app_for(world)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("p")
            assert await until(pilot, lambda: world.engine.state.step == 1)
            assert await until(pilot, lambda: "step 2/4" in text_of(app.screen.query_one(RolloutBar)))
            assert world.engine.state.weight == 25
            assert world.router.current["v2"] == 25.0
            steps = [r for r in world.journal.records if r.get("kind") == "step"]
            assert steps and steps[-1]["actor"] == "operator"

    asyncio.run(scenario())


def test_space_pauses_and_the_hold_timer_stops() -> None:
    async def scenario() -> None:
        world = await started_world()
        app = app_for(world)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("space")
            assert await until(pilot, lambda: world.engine.state.phase is Phase.PAUSED)
            left = world.driver.state.hold_left()
            ticks = world.driver.ticks
            world.clock.now += 20.0  # time passes while paused
            assert await until(pilot, lambda: world.driver.ticks >= ticks + 2)
            assert world.driver.state.hold_left() == left  # the timer did not move
            assert world.engine.state.step == 0  # and the step did not advance
            assert await until(pilot, lambda: "PAUSED" in text_of(app.screen.query_one(RolloutBar)))
            await pilot.press("space")
            assert await until(pilot, lambda: world.engine.state.phase is Phase.PROGRESSING)

    asyncio.run(scenario())


def test_r_with_confirm_rolls_back() -> None:
    async def scenario() -> None:
        world = await started_world()
        app = app_for(world)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("r")
            assert await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            assert await until(pilot, lambda: world.engine.state.phase is Phase.ROLLED_BACK)
            assert world.router.current["v2"] == 0.0
            assert world.engine.state.weight == 0
            assert await until(pilot, lambda: "ROLLED BACK" in text_of(app.screen.query_one(RolloutBar)))

    asyncio.run(scenario())


def test_retry_after_abort_starts_again_from_the_first_step() -> None:
    async def scenario() -> None:
        world = await started_world()
        app = app_for(world)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("a")
            assert await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            assert await until(pilot, lambda: world.engine.state.phase is Phase.ABORTED)
            await pilot.press("R")
            assert await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            assert await until(pilot, lambda: world.engine.state.phase is Phase.PROGRESSING)
            assert world.engine.state.step == 0 and world.engine.state.weight > 0
            assert await until(pilot, lambda: world.router.current["v2"] > 0.0)

    asyncio.run(scenario())


@pytest.mark.parametrize("key,answer", [("r", "n"), ("a", "escape"), ("P", "enter")])
def test_destructive_keys_do_nothing_unless_confirmed(key: str, answer: str) -> None:
    async def scenario() -> None:
        world = await started_world()
        app = app_for(world)
        async with app.run_test(size=(80, 24)) as pilot:
            before = world.engine.state
            await pilot.press(key)
            assert await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press(answer)  # Enter lands on the focused "No"
            assert await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
            await pilot.pause(0.05)
            assert world.engine.state == before

    asyncio.run(scenario())


def test_promote_full_with_confirm() -> None:
    async def scenario() -> None:
        world = await started_world()
        app = app_for(world)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("P")
            assert await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            assert await until(pilot, lambda: world.engine.state.phase is Phase.PROMOTING)
            assert world.router.current["v2"] == 100.0

    asyncio.run(scenario())


def test_w_sets_the_weight_and_pauses() -> None:
    async def scenario() -> None:
        world = await started_world()
        app = app_for(world)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("w")
            assert await until(pilot, lambda: isinstance(app.screen, WeightScreen))
            await pilot.press("end", "backspace", "backspace", "4", "0", "enter")
            assert await until(pilot, lambda: world.engine.state.weight == 40)
            assert world.engine.state.phase is Phase.PAUSED
            assert world.router.current["v2"] == 40.0

    asyncio.run(scenario())


def test_refused_command_shows_the_reason() -> None:
    async def scenario() -> None:
        world = await make_scene("rolled-back")
        app = ReleaseApp(world.driver, read_only=False, wallboard=False, refresh=0.05)
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await pilot.press("p")

            def toasts() -> str:
                return " ".join(" ".join(text_of(t).split()) for t in app.screen.query(Toast))

            assert await until(pilot, lambda: "already rolled back" in toasts())
            assert world.engine.state.phase is Phase.ROLLED_BACK
            # asked first: nothing was sent, so nothing was journaled as refused
            assert not [r for r in world.journal.records if r.get("kind") == "refused"]

    asyncio.run(scenario())


def test_extra_action_key_runs_the_callback() -> None:
    async def scenario() -> None:
        world = await started_world()
        calls: list[str] = []

        async def inject() -> None:
            calls.append("fault")
            await world.fault()

        app = app_for(world, extra_actions={"f": ExtraAction("Inject fault", "inject fault", inject)})
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("f")
            assert await until(pilot, lambda: calls == ["fault"])
            assert await until(pilot, lambda: any(
                "fault_injected" in line.plain for line in app.screen.query_one(EventLog).visible()))

    asyncio.run(scenario())


def test_read_only_every_key_changes_nothing() -> None:
    async def scenario() -> None:
        world = await started_world(read_only=True)
        calls: list[str] = []

        async def inject() -> None:
            calls.append("fault")

        app = ReleaseApp(world.driver, read_only=True, wallboard=False, refresh=0.05,
                         extra_actions={"f": ExtraAction("Inject fault", "inject fault", inject)})
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            shown = {k for k, b in app.screen.active_bindings.items() if b.binding.show}
            assert not shown & set(ACTION_KEYS), shown  # nothing offered in the footer
            titles = [c.title for c in app.get_system_commands(app.screen)]
            assert not [t for t in titles if t.split()[0] in
                        ("Promote", "Pause/Resume", "Rollback", "Abort", "Weight", "Inject")], titles
            before_state = world.engine.state
            before_journal = list(world.journal.records)
            ticks = world.driver.ticks
            for key in (*ACTION_KEYS, "y", "enter", "4", "0", "enter"):
                await pilot.press(key)
            for key in ("question_mark", "escape", "colon", "escape", "t", "slash", "p", "escape"):
                await pilot.press(key)
            assert await until(pilot, lambda: world.driver.ticks >= ticks + 1)
            assert world.engine.state == before_state
            assert world.journal.records == before_journal
            assert calls == []
            assert "READ-ONLY" in text_of(app.screen.query_one(StatusBar))
            # a pressed action key says why nothing happens
            assert any("cannot promote: this session is read-only" in m for m in app.said), app.said

    asyncio.run(scenario())


def test_read_only_engine_refuses_even_if_the_app_sends() -> None:
    """Belt and braces: the enforcement is the engine's, not the missing keys."""
    async def scenario() -> None:
        world = await started_world(read_only=True)
        from strategies.model import Command, CommandKind

        decisions = await world.driver.command(Command(CommandKind.ROLLBACK))
        assert [d.refused for d in decisions] == [True]
        assert world.engine.state.phase is Phase.PROGRESSING

    asyncio.run(scenario())


def test_slash_filters_the_event_log() -> None:
    async def scenario() -> None:
        world = await started_world()
        app = app_for(world)
        async with app.run_test(size=(80, 24)) as pilot:
            log = app.screen.query_one(EventLog)
            assert await until(pilot, lambda: len(log.visible()) > 3)
            everything = len(log.visible())
            await pilot.press("slash", *"weight")
            assert await until(pilot, lambda: 0 < len(log.visible()) < everything)
            assert all("weight" in line.plain.lower() for line in log.visible())
            assert len(app.screen.query_one("#event-lines", RichLog).lines) == len(log.visible())
            await pilot.press("escape")
            assert await until(pilot, lambda: len(log.visible()) == everything)
            await pilot.press("p")  # keys work again once the filter is closed
            assert await until(pilot, lambda: world.engine.state.step == 1)

    asyncio.run(scenario())


def test_help_and_theme_keys() -> None:
    async def scenario() -> None:
        world = await started_world()
        app = app_for(world)
        async with app.run_test(size=(80, 24)) as pilot:
            theme = app.theme
            await pilot.press("t")
            assert await until(pilot, lambda: app.theme != theme)
            await pilot.press("question_mark")
            assert await until(pilot, lambda: type(app.screen).__name__ == "HelpScreen")
            await pilot.press("escape")
            assert await until(pilot, lambda: type(app.screen).__name__ == "DashboardScreen")

    asyncio.run(scenario())


def test_q_quits_and_stops_ticking() -> None:
    async def scenario() -> None:
        world = await started_world()
        app = app_for(world)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("q")  # mid-rollout: asks first
            assert await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            assert await until(pilot, lambda: app._exit)
        ticks = world.driver.ticks
        await asyncio.sleep(0)
        assert world.driver.ticks == ticks
        assert app.return_code == 0

    asyncio.run(scenario())


@pytest.mark.parametrize("size", [(80, 24), (120, 36), (200, 60)])
@pytest.mark.parametrize("wallboard", [False, True])
def test_layout_has_no_overlap(size: tuple[int, int], wallboard: bool) -> None:
    async def scenario() -> None:
        world = await make_scene("operate")
        app = ReleaseApp(world.driver, read_only=wallboard, wallboard=wallboard, ticking=False)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            ids = (["status", "phase", "figures", "gates-strip", "rollout", "events"] if wallboard
                   else ["status", "rollout", "versions", "gates", "charts", "events"])
            regions = {i: app.screen.query_one(f"#{i}").region for i in ids}
            screen = app.screen.region
            for name, region in regions.items():
                assert region.area > 0, f"{name} has no room at {size}"
                assert screen.contains_region(region), f"{name} off screen at {size}"
            names = list(regions)
            for i, a in enumerate(names):
                for b in names[i + 1:]:
                    assert not regions[a].overlaps(regions[b]), f"{a} overlaps {b} at {size}"

    asyncio.run(scenario())


def test_palette_runs_actions_by_name() -> None:
    async def scenario() -> None:
        world = await started_world()
        app = app_for(world)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("colon")
            assert await until(pilot, lambda: type(app.screen).__name__ == "CommandPalette")
            await pilot.press(*"pause")
            await pilot.pause(0.2)
            await pilot.press("enter")
            assert await until(pilot, lambda: world.engine.state.phase is Phase.PAUSED)

    asyncio.run(scenario())


def test_stale_metrics_are_marked_loudly() -> None:
    async def scenario() -> None:
        world = await started_world()
        from strategies.model import MetricsSnapshot

        async def down(versions: object, platform: object, now: float) -> MetricsSnapshot:
            return MetricsSnapshot(at=now, source="scripted", error="scripted: connection refused")

        world.source.collect = down  # type: ignore[method-assign]
        world.clock.now += 10.0  # past stale_after (5 s)
        app = app_for(world)
        async with app.run_test(size=(80, 24)) as pilot:
            bar = app.screen.query_one(StatusBar)
            assert await until(pilot, lambda: bar.has_class("-stale"))
            assert "STALE: scripted:" in text_of(bar)  # the reason follows, cut at the edge
            lines = [line.plain for line in app.screen.query_one(EventLog).visible()]
            assert any(" stale " in f" {line} " for line in lines), lines
            assert world.engine.state.step == 0  # stale data never promotes

    asyncio.run(scenario())
