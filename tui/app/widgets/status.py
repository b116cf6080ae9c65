"""The top bar: which release, how fresh the metrics are, where it runs.

Freshness comes before the platform's detail, and a long error is cut at the edge with an
ellipsis, so a Docker error can never push "STALE" off the screen. Before the first read the bar
says it is waiting, calmly: nothing is wrong yet.
"""

from __future__ import annotations

from rich.text import Text

from strategies.model import State, ViewMode
from tui.app import facts, fmt
from tui.app.widgets.drawn import Drawn


class StatusBar(Drawn):
    """One line. Stale metrics turn the whole bar red: an operator must never act on old data.
    Redrawn only when a character of it changes; never laid out again (its height is 1)."""

    def show(self, state: State) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" releasedeck ", style="bold reverse")
        text.append(f" {state.release} ", style="bold")
        text.append(f"{facts.baseline(state) or '?'} → {facts.candidate(state) or '?'}")
        badge, style = self.badge(state)
        if badge:
            text.append("  ")
            text.append(f" {badge} ", style=style)
        waiting = facts.waiting_for_first_metrics(state)
        alarm = state.stale and not waiting
        if waiting:
            text.append(f"  │ {state.metrics_source}: waiting for first metrics…", style="italic")
        else:
            age = state.metrics_age
            fresh = "never" if age is None else f"{fmt.secs(age)} ago"
            text.append(f"  │ metrics {state.metrics_source} · {fresh}")
        if alarm:
            text.append(f"  ⚠ STALE: {facts.stale_reason(state)} ", style="bold reverse")
        elif state.metrics_error:
            text.append(f"  ✖ {state.metrics_error}", style="bold")
        text.append(f"  │ {state.platform_kind}", style="dim" if not state.platform_error else "bold")
        if state.platform_error:
            text.append(f" ✖ {state.platform_error}", style="bold red")
        self.set_class(alarm, "-stale")
        self.put(text, lambda: text)

    def badge(self, state: State) -> tuple[str, str]:
        """Who drives, when this screen does not: following, observing, driver gone, read-only."""
        viewing = state.viewing
        if viewing is not None and viewing.mode is ViewMode.OBSERVE:
            return f"OBSERVING: {viewing.note or 'nobody drives; no actions'}", "bold reverse"
        if viewing is not None and viewing.gone_since is not None:
            return (f"DRIVER GONE since {fmt.clock(viewing.gone_since)}: "
                    f"{viewing.note or 'waiting for the next driver'}", "bold reverse red")
        if viewing is not None:
            return f"FOLLOWING {viewing.driver or viewing.url}", "bold reverse"
        if state.read_only or getattr(self.app, "read_only", False):
            return "READ-ONLY", "bold reverse"
        return "", ""
