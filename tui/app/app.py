"""ReleaseApp: wires a Driver to the screens. Small on purpose; the screens and widgets do the work.

The driver ticks in a worker (async I/O, never on the render path); a timer redraws from the
latest published State every `refresh` seconds; operator commands go to the driver in workers
and the engine's answer (or refusal) comes back as a notification.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from strategies.model import Command, CommandKind, DecisionKind, Phase, State
from tui.app.components import ConfirmScreen, HelpScreen, WeightScreen
from tui.app.screens import DashboardScreen, StateScreen, WallboardScreen
from tui.driver import Driver, describe_error
from tui.follow import Follower

ExtraAction = tuple[str, Callable[[], Awaitable[None]]]

# key, action, footer label, palette help; destructive ones ask first
OPERATOR_KEYS: tuple[tuple[str, str, str, str, str], ...] = (
    ("p", "promote", "Promote", "p", "promote to the next step"),
    ("P", "promote_full", "Promote all", "P", "promote fully: skip remaining steps (confirm)"),
    ("space", "pause_resume", "Pause/Resume", "space", "pause or resume the rollout"),
    ("r", "rollback", "Rollback", "r", "roll back to the baseline (confirm)"),
    ("a", "abort", "Abort", "a", "abort the release (confirm)"),
    ("w", "set_weight", "Weight", "w", "set the candidate weight by hand (pauses)"),
    ("R", "retry", "Retry", "R", "start an aborted or rolled-back release again (confirm)"),
)
THEMES = ("textual-dark", "nord", "gruvbox", "tokyo-night", "textual-light")


class ReleaseApp(App[int]):
    """The operator's screen (or the wallboard) over one running Driver."""

    CSS_PATH = str(Path(__file__).resolve().parent.parent / "app.tcss")
    TITLE = "releasedeck"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (140, "-wide")]
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("colon", "command_palette", "Commands", key_display=":"),
        Binding("t", "cycle_theme", "Theme"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        driver: Driver | None,
        *,
        read_only: bool,
        wallboard: bool,
        refresh: float = 1.0,
        extra_actions: Mapping[str, ExtraAction] | None = None,
        ticking: bool = True,
        follower: Follower | None = None,
        release: str = "",
    ):
        super().__init__()
        self.driver = driver
        self.follower = follower  # set instead of a driver: the State comes from another session
        self.release = release
        self.wallboard = wallboard
        self.read_only = read_only or wallboard or driver is None or driver.engine.read_only
        self.refresh_every = max(0.05, refresh)
        self.ticking = ticking
        self.extra_actions: dict[str, ExtraAction] = {} if self.read_only else dict(extra_actions or {})
        self.shown: State | None = None
        self._follow_marks: tuple[object, ...] = ()
        self.main: StateScreen = WallboardScreen() if wallboard else DashboardScreen()
        if not self.read_only:
            for key, action, label, _display, _help in OPERATOR_KEYS:
                self.bind(key, action, description=label)
            for key, (label, _callback) in self.extra_actions.items():
                self.bind(key, f"extra('{key}')", description=label)

    # ------------------------------------------------------------------ lifecycle

    def get_default_screen(self) -> Screen:
        return self.main

    def on_mount(self) -> None:
        if self.read_only:
            self.sub_title = "READ-ONLY"
        self.render_state(force=True)
        self.set_interval(self.refresh_every, self.render_state)
        if self.follower is not None:
            self.follower.on_status = self.render_state
            self.follower.on_state = lambda _state: self.render_state()
            self.run_worker(self.follower.run(), name="follower", group="ticker", exclusive=True)
        elif self.ticking:
            self.run_worker(self._tick_loop(), name="ticker", group="ticker", exclusive=True)

    def current_state(self) -> State:
        """The driver's latest State, or, when following, the followed driver's."""
        if self.follower is not None:
            from tui.attach import viewed

            return viewed(self.follower, self.release)
        assert self.driver is not None
        return self.driver.state

    async def _tick_loop(self) -> None:
        """Tick every metrics interval until the app quits; a failed tick is shown, not fatal."""
        assert self.driver is not None
        interval = max(0.05, self.driver.spec.metrics.interval)
        while True:
            began = time.monotonic()
            try:
                await self.driver.tick()
            except Exception as exc:
                self.notify(f"tick failed: {describe_error(exc)}", severity="error")
            await asyncio.sleep(max(0.05, interval - (time.monotonic() - began)))

    def render_state(self, force: bool = False) -> None:
        """Draw the latest published State, only if it is new (idle redraws cost nothing)."""
        if self.follower is not None:
            marks = (self.follower.state, self.follower.connected, self.follower.problem)
            if marks == self._follow_marks and not force:
                return
            self._follow_marks = marks
        state = self.current_state()
        if state is self.shown and not force:
            return
        self.shown = state
        self.main.show(state)

    async def action_quit(self) -> None:
        """Stop ticking and leave; the journal already holds the rollout's state."""
        self.workers.cancel_group(self, "ticker")
        self.exit(0)

    # ------------------------------------------------------------------ operator commands

    def send(self, kind: CommandKind, value: int | None = None) -> None:
        if self.read_only:  # no key is bound, but the palette or a test could still get here
            self.notify("read-only: this session cannot change the rollout", severity="warning")
            return
        self.run_worker(self._send(Command(kind, value=value)), group="command")

    async def _send(self, command: Command) -> None:
        if self.driver is None:
            return
        try:
            decisions = await self.driver.command(command)
        except Exception as exc:
            self.notify(f"{command.kind.value} failed: {describe_error(exc)}", severity="error")
            return
        for decision in decisions:
            if decision.refused:
                self.notify(decision.reason, title="refused", severity="warning")
            elif decision.kind not in (DecisionKind.ACTION_DONE, DecisionKind.GATE):
                self.notify(decision.reason or decision.kind, title=decision.kind)
        self.render_state(force=True)

    def action_promote(self) -> None:
        self.send(CommandKind.PROMOTE)

    def action_promote_full(self) -> None:
        self.confirm("Promote fully?", "Skip the remaining steps and send 100% to the candidate.",
                     CommandKind.PROMOTE_FULL)

    def action_pause_resume(self) -> None:
        paused = self.current_state().rollout.phase is Phase.PAUSED
        self.send(CommandKind.RESUME if paused else CommandKind.PAUSE)

    def action_rollback(self) -> None:
        self.confirm("Roll back?", "Send all traffic back to the baseline.", CommandKind.ROLLBACK)

    def action_abort(self) -> None:
        self.confirm("Abort the release?", "Stop it here and send all traffic to the baseline.",
                     CommandKind.ABORT)

    def action_retry(self) -> None:
        self.confirm("Retry the release?", "Start again from the first step (as Argo's retry).",
                     CommandKind.RETRY)

    def confirm(self, title: str, detail: str, kind: CommandKind) -> None:
        if self.read_only:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.send(kind)

        self.push_screen(ConfirmScreen(title, detail), answered)

    def action_set_weight(self) -> None:
        if self.read_only:
            return

        def answered(value: int | None) -> None:
            if value is not None:
                self.send(CommandKind.SET_WEIGHT, value)

        self.push_screen(WeightScreen(self.current_state().rollout.weight), answered)

    def action_extra(self, key: str) -> None:
        entry = self.extra_actions.get(key)
        if entry is None:
            return
        label, callback = entry

        async def run() -> None:
            try:
                await callback()
            except Exception as exc:
                self.notify(f"{label} failed: {describe_error(exc)}", severity="error")
                return
            self.notify(label, title="done")

        self.run_worker(run(), group="command")

    # ------------------------------------------------------------------ help, palette, theme

    def key_help(self) -> list[tuple[str, str]]:
        keys: list[tuple[str, str]] = []
        if not self.read_only:
            keys += [(display, what) for _k, _a, _l, display, what in OPERATOR_KEYS]
            keys += [(key, label) for key, (label, _cb) in self.extra_actions.items()]
        keys += [("?", "this help"), (":", "command palette (every action by name)"),
                 ("/", "filter the event log (Esc clears)"), ("t", "next theme"),
                 ("q", "quit (the journal keeps the rollout's state)")]
        return keys

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.key_help(), self.read_only))

    def action_cycle_theme(self) -> None:
        names = [t for t in THEMES if t in self.available_themes]
        current = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(current + 1) % len(names)]

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette: every operator action by name (none when read-only), then the basics."""
        if not self.read_only:
            for _key, action, label, display, what in OPERATOR_KEYS:
                yield SystemCommand(f"{label} ({display})", what, getattr(self, f"action_{action}"))
            for key, (label, _cb) in self.extra_actions.items():
                yield SystemCommand(f"{label} ({key})", "demo action",
                                    lambda key=key: self.action_extra(key))
        yield SystemCommand("Help (?)", "show the keys", self.action_help)
        yield SystemCommand("Next theme (t)", "cycle the colour theme", self.action_cycle_theme)
        yield SystemCommand("Quit (q)", "leave; the journal keeps the rollout's state",
                            self.action_quit)
