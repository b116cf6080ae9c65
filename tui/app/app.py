"""ReleaseApp: wires a Driver to the screens. Small on purpose; the screens and widgets do the work.

The driver ticks in a worker (async I/O, never on the render path); a timer redraws from the
latest published State every `refresh` seconds; operator commands go to the driver in workers
and the engine's answer (or refusal) comes back as a notification.

Before a key is offered (footer, palette) or a confirmation opens, the app asks the engine's own
rule (`strategies.commands.refusal`) whether the command is allowed now: keys the phase does not
allow are left out, and pressing one says why, in the operator's words.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from strategies.commands import refusal
from strategies.model import Command, CommandKind, DecisionKind, Phase, State
from tui import exitcodes
from tui.app.components import (
    ConfirmScreen,
    EventsScreen,
    HelpScreen,
    InfoScreen,
    RunInfo,
    WeightScreen,
)
from tui.app.screens import DashboardScreen, StateScreen, WallboardScreen
from tui.app.widgets.rollout import where
from tui.driver import Driver, describe_error
from tui.follow import Follower, Handover


@dataclass(frozen=True)
class ExtraAction:
    """A key a surface adds to the operator's (the demo's fault keys)."""

    label: str
    """The footer's word, capitalised like the operator keys' ("Inject fault")."""
    help: str
    """The help screen's and command palette's line, worded like theirs ("inject errors …")."""
    run: Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class OperatorKey:
    key: str
    action: str
    label: str  # footer
    help: str  # help and palette
    command: CommandKind  # what the engine is asked before the key is offered
    footer: bool = True  # False: in help and the palette only (the 80-column footer is full)


# Two bindings share space: the one the phase allows runs (Textual tries them in order).
OPERATOR_KEYS: tuple[OperatorKey, ...] = (
    OperatorKey("p", "promote", "Promote", "promote to the next step", CommandKind.PROMOTE),
    OperatorKey("P", "promote_full", "Promote all",
                "promote fully: skip the remaining steps (asks first)", CommandKind.PROMOTE_FULL,
                footer=False),
    OperatorKey("space", "pause", "Pause", "pause the rollout (the hold timer stops)",
                CommandKind.PAUSE),
    OperatorKey("space", "resume", "Resume", "resume a paused rollout", CommandKind.RESUME),
    OperatorKey("r", "rollback", "Rollback", "roll back to the baseline (asks first)",
                CommandKind.ROLLBACK),
    OperatorKey("a", "abort", "Abort", "abort the release (asks first)", CommandKind.ABORT),
    OperatorKey("w", "set_weight", "Weight", "set the candidate's weight by hand (pauses)",
                CommandKind.SET_WEIGHT),
    OperatorKey("R", "retry", "Retry", "start an aborted or rolled-back release again "
                "(asks first)", CommandKind.RETRY),
)
THEMES = ("textual-dark", "nord", "gruvbox", "tokyo-night", "textual-light")
DECISION_TITLES = {"step": "next step", "weight_set": "weight set", "rolling_back": "rolling back",
                   "rolled_back": "rolled back", "retried": "retrying"}


class ReleaseApp(App[int]):
    """The operator's screen (or the wallboard) over one running Driver."""

    CSS_PATH = str(Path(__file__).resolve().parent.parent / "app.tcss")
    TITLE = "releasedeck"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (140, "-wide")]
    BINDINGS = [
        Binding("colon", "command_palette", "Commands", key_display=":", show=False),
        Binding("e", "events", "Events", show=False),
        Binding("i", "info", "Info", show=False),
        Binding("t", "cycle_theme", "Theme", show=False),
        Binding("ctrl+c", "quit_now", "Quit", show=False, priority=True),
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
        info: RunInfo | None = None,
        extra_available: Mapping[str, Callable[[], bool]] | None = None,
        follower: Follower | None = None,
        release: str = "",
        handover: Handover | None = None,
    ):
        super().__init__()
        self.driver = driver
        self.follower = follower  # set instead of a driver: the State comes from another session
        self.release = release or (driver.spec.release.service if driver is not None else "")
        self.handover = handover  # observing: follow the first driver that takes the lease
        self.wallboard = wallboard
        self.read_only = read_only or wallboard or driver is None or driver.engine.read_only
        self.refresh_every = max(0.05, refresh)
        self.ticking = ticking
        self.info = info or RunInfo()
        self.extra_actions: dict[str, ExtraAction] = {} if self.read_only else dict(extra_actions or {})
        # when an extra (demo) key makes sense now, e.g. "clear fault" only after a fault
        self.extra_available = dict(extra_available or {})
        self.shown: State | None = None
        self.started = time.monotonic()
        self.summary = ""  # one line, printed by the caller after the app exits
        self.said: deque[str] = deque(maxlen=50)
        self._follow_marks: tuple[object, ...] = ()
        self._offered: tuple[bool, ...] = ()
        self.fleet_clock: Callable[[], float] = time.time  # the `:fleet` list's "since" (tests fix it)
        screen = WallboardScreen if wallboard else DashboardScreen
        self.main: StateScreen = screen(read_only=self.read_only)
        for op in OPERATOR_KEYS:
            # read-only: bound but never offered, so a pressed key can say why nothing happens
            self.bind(op.key, op.action, description=op.label,
                      show=op.footer and not self.read_only,
                      key_display="␣" if op.key == "space" else None)
        for key, extra in self.extra_actions.items():
            self.bind(key, f"extra('{key}')", description=extra.label)
        self.bind("question_mark", "help", description="Help", key_display="?")
        self.bind("q", "quit", description="Quit")

    # ------------------------------------------------------------------ lifecycle

    def get_default_screen(self) -> Screen:
        return self.main

    def on_mount(self) -> None:
        if self.read_only:
            self.sub_title = "READ-ONLY"
        self.render_state(force=True)
        self.set_interval(self.refresh_every, self.render_state)
        if self.follower is not None:
            self._start_following(self.follower)
        elif self.ticking:
            self.run_worker(self._tick_loop(), name="ticker", group="ticker", exclusive=True)
        if self.handover is not None and self.follower is None:
            self.run_worker(self._await_driver(self.handover), name="handover", group="handover")

    def _start_following(self, follower: Follower) -> None:
        """Show `follower`'s driver from now on; replaces this app's own ticking (same group)."""
        self.follower = follower
        follower.on_status = self.render_state
        follower.on_state = lambda _state: self.render_state()
        self.run_worker(follower.run(), name="follower", group="ticker", exclusive=True)

    async def _await_driver(self, handover: Handover) -> None:
        """Observing until a driver takes the lease: then stop evaluating gates here (no more
        metric queries) and follow it; the top bar turns from OBSERVING to FOLLOWING."""
        await handover.wait()
        ticking = [w for w in self.workers if w.name == "ticker"]
        self._start_following(handover.follower())
        self.notify(handover.taken(), title="following")
        self.render_state(force=True)
        for worker in ticking:  # its last tick must not meet adapters being closed
            with contextlib.suppress(Exception):
                await worker.wait()
        if handover.on_taken is not None:  # nothing here uses the observing run any more
            try:
                await handover.on_taken()
            except Exception as exc:
                self.notify(f"closing the observer failed: {describe_error(exc)}", severity="warning")

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
            if self.driver.lease_lost:  # another session may drive now: this screen must not
                self.exit(return_code=exitcodes.LEASE_HELD)
                return
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
        offered = self.offered()
        if offered != self._offered:  # the footer offers what the rollout allows now; it
            self._offered = offered   # is rebuilt (recomposed) only when that changed
            self.refresh_bindings()

    def offered(self) -> tuple[bool, ...]:
        """Which operator and extra keys the footer offers for the current State."""
        return (*(bool(self.check_action(op.action, ())) for op in OPERATOR_KEYS),
                *(bool(self.check_action("extra", (key,))) for key in self.extra_actions))

    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Every toast also goes to `said` (the last 50), which outlives the toast itself."""
        self.said.append(f"{title}: {message}" if title else message)
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    # ------------------------------------------------------------------ quitting

    def mid_rollout(self) -> bool:
        phase = self.current_state().rollout.phase
        return not self.read_only and not phase.terminal and phase is not Phase.PENDING

    async def action_quit(self) -> None:
        """Mid-rollout, ask first and say what happens to the rollout; otherwise just leave."""
        if not self.mid_rollout():
            self.leave()
            return
        state = self.current_state()
        detail = (f"The rollout stays where it is ({where(state)}, weight "
                  f"{state.rollout.weight}%) and nothing will move it on. "
                  f"{self.info.journal_note().capitalize()}.")

        def answered(yes: bool | None) -> None:
            if yes:
                self.leave()

        self.push_screen(ConfirmScreen("Quit mid-rollout?", detail), answered)

    def action_quit_now(self) -> None:
        """Ctrl-C quits at once, as in k9s (the journal already holds every decision)."""
        self.leave()

    def leave(self) -> None:
        self.workers.cancel_group(self, "ticker")
        self.summary = self.quit_summary()
        self.exit(0)

    def quit_summary(self) -> str:
        """One line, as headless prints: outcome, where, weight, the cause, the journal."""
        from tui.headless import summary

        if self.driver is None or self.follower is not None:  # following: the driver prints its own
            return ""
        state = self.current_state()
        phase = state.rollout.phase
        outcome = {Phase.SUCCEEDED: "promoted", Phase.ROLLED_BACK: "rolled back",
                   Phase.ABORTED: "aborted", Phase.ROLLING_BACK: "rolling back",
                   Phase.PENDING: "not started"}.get(phase, f"left {phase.value.replace('_', ' ')}")
        line = summary(self.driver, state, outcome, time.monotonic() - self.started, None)
        if not phase.terminal and not self.read_only and self.info.journal:
            line += f"; {self.info.journal_note()}"
        return line

    # ------------------------------------------------------------------ what is allowed now

    def refusal_for(self, kind: CommandKind, value: int | None = None) -> str | None:
        """Why `kind` cannot be done now, or None. A journal that refused a write refuses every
        command (none could be recorded before acting): the footer offers none, a key says why."""
        if self.driver is not None and self.driver.journal_failed:
            return self.driver.journal_failed
        return refusal(self.current_state().rollout, kind, read_only=self.read_only, value=value)

    def pause_kind(self) -> CommandKind:
        paused = self.current_state().rollout.phase is Phase.PAUSED
        return CommandKind.RESUME if paused else CommandKind.PAUSE

    def command_of(self, action: str) -> CommandKind | None:
        for op in OPERATOR_KEYS:
            if op.action == action:
                return op.command
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys the phase does not allow are left out of the footer (read-only: all of them
        stay bound, unshown, so pressing one can say why)."""
        if action == "extra" and parameters:
            available = self.extra_available.get(str(parameters[0]))
            return available is None or available()
        kind = self.command_of(action)
        if kind is None or self.read_only:
            return True
        return self.refusal_for(kind) is None

    def on_key(self, event: events.Key) -> None:
        """A key the phase does not allow was pressed: say why, instead of nothing."""
        if self.screen is not self.main:
            return
        kinds = [op.command for op in OPERATOR_KEYS if op.key == event.key]
        if event.key == "space":
            kinds = [self.pause_kind()]
        if kinds:
            why = self.refusal_for(kinds[0])
            if why is not None:
                self.notify(why, title="not now", severity="warning")
                event.stop()

    def allowed(self, kind: CommandKind) -> bool:
        """Ask first; when the answer is no, say why (nothing is journaled)."""
        why = self.refusal_for(kind)
        if why is not None:
            self.notify(why, title="not now", severity="warning")
            return False
        return True

    # ------------------------------------------------------------------ operator commands

    def send(self, kind: CommandKind, value: int | None = None) -> None:
        if not self.allowed(kind):
            return
        self.run_worker(self._send(Command(kind, value=value)), group="command")

    async def _send(self, command: Command) -> None:
        if self.driver is None:
            return
        try:
            decisions = await self.driver.command(command)
        except Exception as exc:
            self.notify(f"{command.kind.value.replace('_', ' ')} failed: {describe_error(exc)}",
                        severity="error")
            return
        for decision in decisions:
            if decision.refused:
                self.notify(decision.reason, title="refused", severity="warning")
            elif decision.kind not in (DecisionKind.ACTION_DONE, DecisionKind.GATE):
                self.notify(decision.reason or decision.kind,
                            title=DECISION_TITLES.get(decision.kind, decision.kind))
        self.render_state(force=True)

    def action_promote(self) -> None:
        self.send(CommandKind.PROMOTE)

    def action_promote_full(self) -> None:
        self.confirm("Promote fully?", "Skip the remaining steps and analysis, and send 100% of "
                     "the traffic to the candidate.", CommandKind.PROMOTE_FULL)

    def action_pause(self) -> None:
        self.send(CommandKind.PAUSE)

    def action_resume(self) -> None:
        self.send(CommandKind.RESUME)

    def action_rollback(self) -> None:
        self.confirm("Roll back?", "Send all traffic back to the baseline; the candidate is "
                     "scaled down after the delay.", CommandKind.ROLLBACK)

    def action_abort(self) -> None:
        self.confirm("Abort the release?", "Stop it here and send all traffic to the baseline.",
                     CommandKind.ABORT)

    def action_retry(self) -> None:
        self.confirm("Retry the release?", "Start again from the first step (as Argo's retry). "
                     "Clear the cause first, or the gates will fail again.", CommandKind.RETRY)

    def confirm(self, title: str, detail: str, kind: CommandKind) -> None:
        if not self.allowed(kind):
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.send(kind)

        self.push_screen(ConfirmScreen(title, detail), answered)

    def action_set_weight(self) -> None:
        if not self.allowed(CommandKind.SET_WEIGHT):
            return

        def answered(value: int | None) -> None:
            if value is not None:
                self.send(CommandKind.SET_WEIGHT, value)

        self.push_screen(WeightScreen(self.current_state().rollout.weight), answered)

    def action_extra(self, key: str) -> None:
        entry = self.extra_actions.get(key)
        if entry is None:
            return
        label, callback = entry.label, entry.run

        async def run() -> None:
            try:
                await callback()
            except Exception as exc:
                self.notify(f"{label} failed: {describe_error(exc)}", severity="error")
                return
            self.notify(label, title="done")
            self.refresh_bindings()

        self.run_worker(run(), group="command")

    # ------------------------------------------------------------------ views, help, palette

    def action_events(self) -> None:
        if not isinstance(self.screen, EventsScreen):
            self.push_screen(EventsScreen(self.current_state().events))

    def action_info(self) -> None:
        if not isinstance(self.screen, InfoScreen):
            self.push_screen(InfoScreen(self.info))

    def action_history(self) -> None:
        """`:history`: every past run of this release, from its journal (as `releasedeck history`)."""
        from tui.app.components.history import HistoryScreen

        if isinstance(self.screen, HistoryScreen):
            return
        paths = self.info.history_paths()
        if not paths:
            self.notify("no journal: this session keeps none, so there is no history to read",
                        severity="warning")
            return
        self.push_screen(HistoryScreen(paths, self.current_state().release or "this release"))

    def fleet_paths(self) -> list[str]:
        """What `:fleet` lists: the sources the app was given, else the specs beside its own."""
        if self.info.fleet:
            return list(self.info.fleet)
        spec = Path(self.info.spec_origin)
        return [str(spec.parent)] if self.info.spec_origin.endswith(".toml") and spec.is_file() else []

    def action_fleet(self) -> None:
        """`:fleet`: the list of the releases beside this one; Enter opens one (read-only), Esc
        comes back here. The app's own release keeps running underneath."""
        from tui.fleet.app import Choice, FleetView
        from tui.fleet.gather import FleetGatherer

        if isinstance(self.screen, FleetView):
            return
        paths = self.fleet_paths()
        if not paths:
            self.notify("no fleet to list: this release has no spec file; `watch SPEC --fleet DIR` "
                        "names one", severity="warning")
            return
        gatherer = FleetGatherer.from_paths(paths)
        own = Path(self.info.spec_origin).resolve() if self.info.spec_origin else None

        def choose(choice: Choice) -> None:
            row = choice.row
            if own is not None and Path(row.source).resolve() == own:
                self.pop_screen()  # this release: its own dashboard, where the keys act
            elif choice.drive:
                self.notify(f"{row.release}: drive it from its own session: releasedeck watch "
                            f"{row.source}", severity="warning")
            else:
                from tui.app.screens.release_view import ReleaseViewScreen

                self.push_screen(ReleaseViewScreen(gatherer, row.source, self.refresh_every))

        def leave() -> None:
            self.pop_screen()
            self.run_worker(gatherer.close(), group="fleet-close")

        self.push_screen(FleetView(gatherer, choose=choose, leave=leave, clock=self.fleet_clock))

    def key_help(self) -> list[tuple[str, str]]:
        keys: list[tuple[str, str]] = []
        if not self.read_only:
            for op in OPERATOR_KEYS:
                if op.key == "space":
                    if not any(key == "space" for key, _ in keys):
                        keys.append(("space", "pause / resume the rollout (the hold timer stops "
                                              "while paused)"))
                    continue
                keys.append((op.key, op.help))
        keys += [(key, extra.help) for key, extra in self.extra_actions.items()]
        keys += [("e", "events: any event or decision with its full evidence"),
                 ("i", "this run: the spec, router address, log files, journal"),
                 ("j / k", "scroll the event log down / up"),
                 ("g / G", "oldest / newest event (G follows new ones again)"),
                 ("/", "filter the event log (Enter keeps, Esc clears)"),
                 (":", "command palette: every action by name"),
                 (":history", "every past run of this release and the delivery figures (Esc back)"),
                 (":fleet", "the releases beside this one; Enter opens one read-only (Esc back)"),
                 ("t", "next theme"),
                 ("?", "this help"),
                 ("q", "quit (asks mid-rollout; the journal keeps the state)"),
                 ("ctrl+c", "quit at once")]
        return keys

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            why = " (wallboard)" if self.wallboard else ""
            self.push_screen(HelpScreen(self.key_help(), self.read_only, why))

    def action_cycle_theme(self) -> None:
        names = [t for t in THEMES if t in self.available_themes]
        current = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(current + 1) % len(names)]

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette: the actions the phase allows now (none when read-only), then the rest."""
        if not self.read_only:
            for op in OPERATOR_KEYS:
                if self.refusal_for(op.command) is None:
                    yield SystemCommand(f"{op.label} ({op.key})", op.help,
                                        getattr(self, f"action_{op.action}"))
            for key, extra in self.extra_actions.items():
                if self.check_action("extra", (key,)):
                    yield SystemCommand(f"{extra.label} ({key})", extra.help,
                                        lambda key=key: self.action_extra(key))
        yield SystemCommand("Events (e)", "any event or decision with its evidence",
                            self.action_events)
        yield SystemCommand("Run info (i)", "spec, router, logs, journal", self.action_info)
        from tui.fleet.app import FleetScreen

        if isinstance(screen, FleetScreen):
            yield SystemCommand("History (h)", "every run of these releases, from their journals",
                                screen.action_history)
        else:
            yield SystemCommand("History", "every run of this release and the delivery figures, "
                                "from its journal", self.action_history)
        yield SystemCommand("Fleet", "the releases beside this one; Enter opens one",
                            self.action_fleet)
        if isinstance(screen, DashboardScreen):
            yield SystemCommand("Filter events (/)", "show only matching events",
                                screen.action_filter)
        yield SystemCommand("Help (?)", "show the keys", self.action_help)
        yield SystemCommand("Next theme (t)", "cycle the colour theme", self.action_cycle_theme)
        yield SystemCommand("Quit (q)", "leave; the journal keeps the rollout's state",
                            self.action_quit)
