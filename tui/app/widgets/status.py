"""The top bar: which release, how fresh the metrics are, where it runs.

Freshness comes before the platform's detail, and a long error is cut at the edge with an
ellipsis, so a Docker error can never push "STALE" off the screen. Before the first read the bar
says it is waiting, calmly: nothing is wrong yet.
"""

from __future__ import annotations

from rich.text import Text

from strategies.model import State, ViewMode
from tui.app import facts, fmt
from tui.app.widgets.state_panel import StatePanel


class StatusBar(StatePanel):
    """One line. Stale metrics turn the whole bar red: an operator must never act on old data.

    When the line is wider than the terminal it gives up the least useful words first, k9s
    style, rather than cut the freshness off the end: the platform's name (kept when it has an
    error), then "metrics" before the source, then the host and pid of a followed driver.
    Redrawn only when a character of it changes; never laid out again (its height is 1).
    """

    def __init__(self, *, read_only: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.read_only = read_only
        """This screen changes nothing (the app's --read-only, a wallboard): the bar says so
        even when the State's own engine could act."""

    def show(self, state: State) -> None:
        self._state = state
        width = self.size.width or self.app.size.width
        for level in range(COMPACT_LEVELS):
            text = self.line(state, level)
            if text.cell_len <= width:
                break
        self.set_class(state.stale and not facts.waiting_for_first_metrics(state), "-stale")
        self.put(text, lambda: text)

    def line(self, state: State, level: int = 0) -> Text:
        """The bar's text at a compactness `level` (0: every word; higher: fewer words)."""
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" releasedeck ", style="bold reverse")
        text.append(f" {state.release} ", style="bold")
        text.append(f"{facts.baseline(state) or '?'} → {facts.candidate(state) or '?'}")
        badge, style = self.badge(state, short=level >= 3)
        if badge:
            text.append("  ")
            text.append(f" {badge} ", style=style)
        waiting = facts.waiting_for_first_metrics(state)
        if waiting:
            text.append(f"  │ {state.metrics_source}: waiting for first metrics…", style="italic")
        else:
            age = state.metrics_age
            fresh = "never" if age is None else f"{fmt.secs(age)} ago"
            label = "" if level >= 2 else "metrics "
            text.append(f"  │ {label}{state.metrics_source} · {fresh}")
        if state.stale and not waiting:
            text.append(f"  ⚠ STALE: {facts.stale_reason(state)} ", style="bold reverse")
        elif state.metrics_error:
            text.append(f"  ✖ {state.metrics_error}", style="bold")
        if state.platform_error:
            text.append(f"  │ {state.platform_kind}", style="bold")
            text.append(f" ✖ {state.platform_error}", style="bold red")
        elif level < 1:
            text.append(f"  │ {state.platform_kind}", style="dim")
        return text

    def badge(self, state: State, *, short: bool = False) -> tuple[str, str]:
        """Who drives, when this screen does not: following, observing, driver gone, read-only."""
        viewing = state.viewing
        if viewing is not None and viewing.mode is ViewMode.OBSERVE:
            return f"OBSERVING: {viewing.note or 'nobody drives; no actions'}", "bold reverse"
        if viewing is not None and viewing.gone_since is not None:
            return (f"DRIVER GONE since {fmt.clock(viewing.gone_since)}: "
                    f"{viewing.note or 'waiting for the next driver'}", "bold reverse red")
        if viewing is not None:
            who = viewing.driver or viewing.url
            return f"FOLLOWING {who.split('@', 1)[0] if short else who}", "bold reverse"
        if state.read_only or self.read_only:
            return "READ-ONLY", "bold reverse"
        return "", ""


COMPACT_LEVELS = 4
