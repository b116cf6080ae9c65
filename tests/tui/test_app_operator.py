"""The operator's screen as a demanding user reads it (issue 15), pinned with Pilot at 80×24
and 160×48 over the real engine and driver (in-memory adapters, a clock moved by hand).

Each test names the point it pins: (1) the cause stays, (2) honest charts, (3) frozen figures,
(4) nothing clipped, (5) one clock, (6) ask first, (7) start-up, (8) layout, (9) what users
expect, (12) the demo's fault can be cleared so retry recovers.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import World, make_scene
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets._footer import FooterKey
from textual.widgets._toast import Toast

from strategies.model import Command, CommandKind, Phase
from tui.app import ReleaseApp
from tui.app.app import ExtraAction
from tui.app.charts_math import nice_axis, spark, tick_label
from tui.app.components import ConfirmScreen, EventsScreen, HelpScreen, InfoScreen, RunInfo
from tui.app.components.events import detail as as_json
from tui.app.widgets import EventLog, GatesPanel, RolloutBar, StatusBar, VersionsTable
from tui.app.widgets.charts import ChartRow
from tui.cli import build_parser

SIZES = [(80, 24), (160, 48)]


async def until(pilot: Pilot, check: Callable[[], bool], *, seconds: float = 15.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if check():
            return True
        await pilot.pause(0.01)
    return check()


def text_of(widget: Widget) -> str:
    """What the widget shows on screen now (clipped text is what a person sees)."""
    return "\n".join("".join(seg.text for seg in widget.render_line(y))
                     for y in range(widget.size.height))


def footer_text(app: ReleaseApp) -> str:
    """The footer's keys as shown, spaces removed: 'pPromote␣PauserRollback...'."""
    return "".join(text_of(key) for key in app.screen.query(FooterKey)).replace(" ", "")


def flat(text: str) -> str:
    return " ".join(text.split())


async def ended_world() -> World:
    """Rolled back on two critical gates, then long past the scale-down (candidate at 0)."""
    world = await make_scene("rolled-back")
    await world.run_for(12)
    assert world.engine.state.cleaned and world.engine.state.reason == "scale-down delay over"
    return world


def app_on(world: World, **kw: object) -> ReleaseApp:
    kw.setdefault("read_only", False)
    kw.setdefault("wallboard", False)
    return ReleaseApp(world.driver, ticking=False, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------ (1) the cause stays


@pytest.mark.parametrize("size", SIZES)
def test_a_rollback_keeps_its_cause_on_screen_after_scale_down(size: tuple[int, int]) -> None:
    async def scenario() -> None:
        world = await ended_world()
        app = app_on(world)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            bar = text_of(app.screen.query_one(RolloutBar))
            assert "ROLLED BACK" in bar and "critical gate p99 failed" in bar
            assert "at step 2/4" in bar and "08:00:5" in bar  # where and when
            assert "✖ 25%" in bar  # the failed step is marked
            assert "p99: 950ms > max 500ms (baseline" in bar  # value vs bound, and the baseline
            gates = text_of(app.screen.query_one(GatesPanel))
            for name, value in (("p99", "950ms"),):
                row = next(line for line in gates.splitlines() if line.startswith(name))
                assert value in row and "FAIL" in row and "unknown" not in row, row

    asyncio.run(scenario())


def test_the_wallboard_keeps_the_cause_too() -> None:
    async def scenario() -> None:
        world = await ended_world()
        app = app_on(world, read_only=True, wallboard=True)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            banner = text_of(app.screen.query_one("#phase"))
            assert "ROLLED BACK" in banner and "gate p99 failed" in banner
            strip = text_of(app.screen.query_one("#gates-strip"))
            assert "950ms" in strip and "unknown" not in strip

    asyncio.run(scenario())


# ------------------------------------------------------------------ (2) honest charts


@given(st.floats(min_value=1e-6, max_value=1e6))
def test_axes_start_at_zero_with_round_ticks_covering_the_data(top: float) -> None:
    ticks = nice_axis(top)
    assert ticks[0] == 0 and ticks[-1] >= top * (1 - 1e-9)
    step = ticks[1] - ticks[0]
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 6) in (1.0, 2.0, 2.5, 5.0, 10.0)
    assert 2 <= len(ticks) <= 6
    assert all(len(tick_label(t, "ms")) <= 9 for t in ticks)


@given(st.lists(st.floats(min_value=0, max_value=100), min_size=1, max_size=40),
       st.integers(min_value=1, max_value=30), st.integers(min_value=1, max_value=3))
def test_sparklines_share_the_scale_and_never_stretch(values: list[float], width: int,
                                                      height: int) -> None:
    rows = spark(values, 100.0, width, height)
    assert len(rows) == height and all(len(r) == width for r in rows)
    drawn = min(width, len(values))
    assert rows[-1][: width - drawn] == " " * (width - drawn)  # fewer points: not stretched


def test_a_flat_low_series_is_drawn_low_on_a_shared_scale() -> None:
    flat_25ms = spark([25.0] * 10, 1000.0, 10)[0]
    assert set(flat_25ms) == {"▁"}  # 25 of 1000 is a low line, never full blocks


def test_chart_values_agree_with_the_table_and_plot_different_things() -> None:
    async def scenario() -> None:
        world = await ended_world()
        app = app_on(world)
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause()
            rows = {r.id: r for r in app.screen.query(ChartRow) if r.display}
            assert set(rows) == {"row-throughput", "row-weight"}  # wide: traffic here
            lines = app.screen.query_one("#lines")
            assert lines.display  # error % and p99 are on the line charts beside
        app = app_on(world)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            row = app.screen.query_one("#row-error_rate", ChartRow)
            assert "21.00%" in row.label.plain  # the frozen figure the table shows too
            assert "21.00%" in text_of(app.screen.query_one(VersionsTable))

    asyncio.run(scenario())


# ------------------------------------------------------------------ (3) frozen figures


def test_a_version_without_traffic_is_frozen_and_says_why() -> None:
    async def scenario() -> None:
        world = await ended_world()
        app = app_on(world)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            table = text_of(app.screen.query_one(VersionsTable))
            assert "v2: no traffic since 08:00:5" in table and "frozen" in table
            def v2_row(text: str) -> str:
                return next(line for line in text.splitlines() if line.startswith("v2 "))

            before = v2_row(table)
            assert "21.00%" in before and "950ms" in before  # the figures it was stopped with
            await world.run_for(5)  # the window keeps filling with 0%-weight requests
            app.render_state(force=True)
            await pilot.pause()
            after = v2_row(text_of(app.screen.query_one(VersionsTable)))
            assert after == before  # nothing "gets worse" while it takes no traffic

    asyncio.run(scenario())


# ------------------------------------------------------------------ (4) nothing clipped


@pytest.mark.parametrize("key,words", [
    ("P", "Skip the remaining steps and analysis, and send 100% of the traffic to the candidate."),
    ("r", "Send all traffic back to the baseline; the candidate is scaled down after the delay."),
    ("a", "Stop it here and send all traffic to the baseline."),
])
def test_dialogs_are_read_whole_at_80x24(key: str, words: str) -> None:
    async def scenario() -> None:
        world = World()
        await world.run_for(3)
        app = app_on(world)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press(key)
            assert await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.pause()
            assert words in flat(text_of(app.screen.query_one("#confirm-detail")))

    asyncio.run(scenario())


@pytest.mark.parametrize("read_only", [False, True])
def test_help_fits_at_80x24_and_lists_the_log_keys(read_only: bool) -> None:
    async def scenario() -> None:
        world = World(read_only=read_only)
        await world.run_for(2)
        app = app_on(world, read_only=read_only)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("question_mark")
            assert await until(pilot, lambda: isinstance(app.screen, HelpScreen))
            await pilot.pause()
            box = app.screen.query_one("#help-box")
            assert app.screen.region.contains_region(box.region)
            keys = flat(text_of(app.screen.query_one("#help-keys")))
            for key in ("j / k", "g / G", "ctrl+c", "e events", "i this run"):
                assert key in keys, keys
            foot = "#help-readonly" if read_only else "#help-foot"
            tail = "refuses every command." if read_only else "say why when pressed."
            await pilot.press(*"jjjjjjjjjj")  # j scrolls the help when it is taller than 24
            app.screen.query_one("#help-scroll").scroll_end(animate=False)
            await pilot.pause()
            assert flat(text_of(app.screen.query_one(foot))).endswith(tail)

    asyncio.run(scenario())


def test_footer_at_80_columns_offers_rollback_abort_weight() -> None:
    async def scenario() -> None:
        world = World()
        await world.run_for(3)
        app = app_on(world, extra_actions={"f": ExtraAction("Inject fault", "inject fault", world.fault)})
        async with app.run_test(size=(80, 24)) as pilot:
            assert await until(pilot, lambda: "qQuit" in footer_text(app))
            footer = footer_text(app)
            for item in ("pPromote", "␣Pause", "rRollback", "aAbort", "wWeight", "fInjectfault",
                         "?Help", "qQuit"):
                assert item in footer, footer
            assert "RRetry" not in footer and "␣Resume" not in footer  # not now

    asyncio.run(scenario())


def test_event_lines_wrap_instead_of_cutting_numbers() -> None:
    async def scenario() -> None:
        world = await make_scene("rolled-back")
        app = app_on(world)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            log = app.screen.query_one("#event-lines")
            log.scroll_home(animate=False)
            await pilot.pause()
            shown = flat(" ".join(str(line.text) for line in log.lines))
            assert "p95-warn: pass → fail: 620ms > max 300ms" in shown

    asyncio.run(scenario())


def test_a_long_platform_error_never_pushes_stale_off_the_bar() -> None:
    async def scenario() -> None:
        world = World()
        await world.run_for(2)
        from strategies.model import MetricsSnapshot

        async def down(versions: object, platform: object, now: float) -> MetricsSnapshot:
            return MetricsSnapshot(at=now, source="scripted", error="scripted: refused")

        async def broken_platform(versions: object, now: float) -> object:
            raise RuntimeError("docker: " + "cannot reach the daemon " * 10)

        world.source.collect = down  # type: ignore[method-assign]
        world.platform.snapshot = broken_platform  # type: ignore[method-assign,assignment]
        await world.run_for(8)
        app = app_on(world)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            bar = text_of(app.screen.query_one(StatusBar))
            assert "STALE" in bar and "ago" in bar and "cannot reach" not in bar.split("STALE")[0]

    asyncio.run(scenario())


# ------------------------------------------------------------------ (5) one clock


def test_the_bar_and_the_holding_line_say_the_same_time_left() -> None:
    async def scenario() -> None:
        world = World()
        await world.run_for(3)
        world.clock.now += 0.6  # between two seconds, where two roundings would disagree
        await world.driver.tick()
        app = app_on(world)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            bar = text_of(app.screen.query_one(RolloutBar))
            gates = flat(text_of(app.screen.query_one(GatesPanel)))
            left = bar.split("hold ")[1].split(" left")[0]
            assert f"holding: hold {left} left" in gates, (bar, gates)
            assert "hold:" not in gates

    asyncio.run(scenario())


# ------------------------------------------------------------------ (6) ask first


def test_a_refused_command_never_opens_a_dialog_and_the_footer_hides_it() -> None:
    async def scenario() -> None:
        world = await ended_world()
        app = app_on(world)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            footer = footer_text(app)
            assert "RRetry" in footer and "rRollback" not in footer and "wWeight" not in footer
            titles = [c.title for c in app.get_system_commands(app.screen)]
            assert any(t.startswith("Retry") for t in titles)
            assert not any(t.startswith(("Rollback", "Weight", "Promote")) for t in titles)
            for key in ("r", "w", "space"):
                await pilot.press(key)
                await pilot.pause()
                assert not isinstance(app.screen, ConfirmScreen)
            assert any("cannot roll back: the release is already rolled back" in m
                       for m in app.said), app.said
            assert any("cannot set weight" in m for m in app.said)
            assert not any("set_weight" in m or "weight_set" in m for m in app.said)

    asyncio.run(scenario())


# ------------------------------------------------------------------ (7) start-up


@pytest.mark.parametrize("size", SIZES)
def test_start_up_waits_calmly_and_the_first_frame_has_its_layout(size: tuple[int, int]) -> None:
    async def scenario() -> None:
        world = World()  # nothing read yet
        app = app_on(world)
        async with app.run_test(size=size):
            bar = app.screen.query_one(StatusBar)
            assert app.screen.has_class("-wide" if size[0] >= 140 else "-narrow")
            assert not bar.has_class("-stale")
            assert "waiting for first metrics" in text_of(bar) and "STALE" not in text_of(bar)

    asyncio.run(scenario())


# ------------------------------------------------------------------ (8) layout


def test_gate_columns_do_not_move_when_verdicts_change() -> None:
    async def scenario() -> None:
        world = World()
        await world.run_for(3)
        app = app_on(world)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            header = text_of(app.screen.query_one(GatesPanel)).splitlines()[0]
            await world.fault()
            await world.run_for(3)
            app.render_state(force=True)
            await pilot.pause()
            assert text_of(app.screen.query_one(GatesPanel)).splitlines()[0] == header

    asyncio.run(scenario())


def test_a_log_scrolled_up_says_new_events_wait_below_and_G_follows_again() -> None:
    async def scenario() -> None:
        world = await make_scene("operate")
        app = ReleaseApp(world.driver, read_only=False, wallboard=False, ticking=False,
                         refresh=0.05)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            log = app.screen.query_one(EventLog)
            await pilot.press("g")  # read the oldest
            await pilot.pause()
            await world.driver.command(Command(CommandKind.PAUSE))
            assert await until(pilot, lambda: log.unseen >= 1)
            assert await until(pilot, lambda: "new event" in text_of(
                app.screen.query_one("#event-unseen")))
            await pilot.press("G")
            assert await until(pilot, lambda: log.unseen == 0)

    asyncio.run(scenario())


def test_after_a_resize_the_log_shows_the_newest_events() -> None:
    async def scenario() -> None:
        world = await make_scene("rolled-back")
        app = app_on(world)
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause()
            await pilot.resize_terminal(80, 24)
            await pilot.pause()
            log = app.screen.query_one("#event-lines")
            assert await until(pilot, lambda: log.scroll_y >= log.max_scroll_y - 1)
            assert "scale v1 to 2" in flat(text_of(log)) or "rolled_back" in text_of(log)

    asyncio.run(scenario())


# ------------------------------------------------------------------ (9) what users expect


def test_events_view_shows_a_decision_with_its_full_evidence() -> None:
    async def scenario() -> None:
        world = await make_scene("rolled-back")
        app = app_on(world)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("e")
            assert await until(pilot, lambda: isinstance(app.screen, EventsScreen))
            screen = app.screen
            assert isinstance(screen, EventsScreen)
            index = next(i for i, e in enumerate(screen.events) if e.event == "rolling_back")
            screen.show_event(index)
            await pilot.pause()
            text = as_json(screen.events[index])
            assert text.splitlines()[1] in flat(text_of(screen.query_one("#event-detail"))) or \
                '"ts"' in text_of(screen.query_one("#event-detail"))
            assert '"evidence"' in text and '"gate": "p99"' in text and '"unit": "seconds"' in text
            assert '"step": 2' in text  # as the screen says: step 2/4

    asyncio.run(scenario())


def test_info_view_shows_the_spec_router_logs_and_journal() -> None:
    async def scenario() -> None:
        world = World()
        await world.run_for(2)
        info = RunInfo(spec_text="[release]\nservice = \"checkout\"\n",
                       spec_origin="built-in demo spec (canary)", router="http://127.0.0.1:8080",
                       logs="/tmp/releasedeck-local-x", journal="/tmp/d/demo.journal",
                       journal_kept=False)
        app = app_on(world, info=info)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("i")
            assert await until(pilot, lambda: isinstance(app.screen, InfoScreen))
            await pilot.pause()
            facts = flat(text_of(app.screen.query_one("#info-facts")))
            for part in ("built-in demo spec (canary)", "http://127.0.0.1:8080",
                         "/tmp/releasedeck-local-x", "deleted on exit"):
                assert part in facts, facts
            assert 'service = "checkout"' in text_of(app.screen.query_one("#info-spec"))

    asyncio.run(scenario())


def test_q_mid_rollout_asks_says_what_the_journal_keeps_and_prints_a_summary() -> None:
    async def scenario() -> None:
        world = World()
        await world.run_for(3)
        info = RunInfo(journal="/tmp/j/checkout.journal", resume_hint="releasedeck watch r.toml")
        app = app_on(world, info=info)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("q")
            assert await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.pause()
            detail = flat(text_of(app.screen.query_one("#confirm-detail")))
            assert "step 1/4" in detail and "/tmp/j/checkout.journal keeps" in detail
            assert "`releasedeck watch r.toml` resumes it" in detail
            await pilot.press("n")
            assert await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
            await pilot.press("ctrl+c")  # quits at once
            assert await until(pilot, lambda: app._exit)
        assert app.summary.startswith("releasedeck: checkout v1→v2 left progressing")
        assert "at step 1/4" in app.summary and "checkout.journal keeps" in app.summary

    asyncio.run(scenario())


def test_cli_version_and_argument_help() -> None:
    parser = build_parser()
    with pytest.raises(SystemExit) as done:
        parser.parse_args(["--version"])
    assert done.value.code == 0
    sub = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for command, words in (("watch", "release spec"), ("replay", "recorded with --record"),
                           ("check", "Validate each SPEC"), ("demo", "F clears it")):
        assert words in " ".join(sub[command].format_help().split()), command


# ------------------------------------------------------------------ (12) clear the fault


def test_demo_fault_can_be_cleared_so_retry_recovers() -> None:
    async def scenario() -> None:
        world = World()
        await world.run_for(3)
        faulty = [False]

        async def inject() -> None:
            faulty[0] = True
            await world.fault()

        async def clear() -> None:
            faulty[0] = False
            await world.clear_fault()

        app = ReleaseApp(world.driver, read_only=False, wallboard=False, ticking=False,
                         extra_actions={"f": ExtraAction("Inject fault", "inject fault", inject),
                                        "F": ExtraAction("Clear fault", "clear fault", clear)},
                         extra_available={"f": lambda: not faulty[0], "F": lambda: faulty[0]})
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("f")
            assert await until(pilot, lambda: faulty[0])
            for _ in range(30):
                await world.run_for(1)
                if world.engine.state.phase is Phase.ROLLED_BACK:
                    break
            app.render_state(force=True)
            await pilot.pause()
            assert "FClearfault" in footer_text(app) and "fInject" not in footer_text(app)
            await pilot.press("F")
            assert await until(pilot, lambda: not faulty[0])
            await pilot.press("R")
            assert await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            assert await until(pilot, lambda: world.engine.state.phase is Phase.PROGRESSING)
            await world.run_for(12)  # longer than the gates' 5 s `for`: no rollback this time
            assert world.engine.state.phase is Phase.PROGRESSING
        kinds = [e.event for e in world.driver.events]
        assert kinds.index("fault_cleared") < kinds.index("retried")

    asyncio.run(scenario())


# ------------------------------------------------------------------ (9) elapsed and ETA


@pytest.mark.parametrize("size", SIZES)
def test_the_bar_shows_elapsed_time_and_the_least_time_left(size: tuple[int, int]) -> None:
    async def scenario() -> None:
        world = World()
        await world.run_for(3)
        await world.driver.tick()  # 3 s into step 1's 30 s hold; three 30 s holds and 2 s after
        app = app_on(world)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            bar = text_of(app.screen.query_one(RolloutBar))
            assert "elapsed 3s · ≥1m59s to go" in bar, bar
            await pilot.press("space")
            assert await until(pilot, lambda: "paused: no ETA" in text_of(
                app.screen.query_one(RolloutBar)))

    asyncio.run(scenario())


def test_time_left_stops_at_a_step_that_waits_for_the_operator() -> None:
    from strategies.plans import Plan, PlanStep

    plan = Plan("canary", (PlanStep("10%", 10, 30.0), PlanStep("pause", None, 0.0, pause=True),
                           PlanStep("50%", 50, 30.0)), {}, {}, 5.0)
    assert plan.time_left(0, 12.0) == (12.0, 1)
    assert plan.time_left(1, 0.0) == (35.0, None)  # past the pause: holds ahead + scale-down


@pytest.mark.parametrize("size", SIZES)
def test_toasts_stay_off_the_event_log(size: tuple[int, int]) -> None:
    async def scenario() -> None:
        world = await ended_world()
        app = app_on(world)
        async with app.run_test(size=size, notifications=True) as pilot:
            await pilot.press("r")  # refused: says why in a toast
            assert await until(pilot, lambda: bool(app.screen.query(Toast)))
            await pilot.pause()
            events = app.screen.query_one("#events").region
            for toast in app.screen.query(Toast):
                assert not toast.region.overlaps(events), (toast.region, events)

    asyncio.run(scenario())
