"""The top bar: which release, where it runs, where metrics come from and how fresh they are."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from strategies.model import State, ViewMode
from tui.app import fmt


class StatusBar(Static):
    """One line. Stale metrics turn the whole bar red: an operator must never act on old data."""

    def show(self, state: State) -> None:
        text = Text()
        text.append(" releasedeck ", style="bold reverse")
        text.append(f" {state.release} ", style="bold")
        text.append(f"{state.baseline or '?'} → {state.candidate or '?'}")
        text.append(f"  │ {state.platform_kind}", style="dim" if not state.platform_error else "bold")
        if state.platform_error:
            text.append(f" ✖ {state.platform_error}", style="bold red")
        age = state.metrics_age
        fresh = "never" if age is None else f"{fmt.secs(age)} ago"
        text.append(f"  │ metrics {state.metrics_source} · {fresh}")
        if state.stale:
            why = state.stale_reason or state.metrics_error or "no fresh metrics"
            text.append(f"  ⚠ STALE DATA: {why} ", style="bold blink reverse")
        elif state.metrics_error:
            text.append(f"  ✖ {state.metrics_error}", style="bold")
        viewing = state.viewing
        if viewing is not None and viewing.mode is ViewMode.OBSERVE:
            text.append(f"  OBSERVING: {viewing.note or 'nobody drives; no actions'} ",
                        style="bold reverse")
        elif viewing is not None and viewing.gone_since is not None:
            text.append(f"  DRIVER GONE since {fmt.clock(viewing.gone_since)}: "
                        f"{viewing.note or 'waiting for the next driver'} ", style="bold reverse red")
        elif viewing is not None:
            text.append(f"  FOLLOWING {viewing.driver or viewing.url} ", style="bold reverse")
        elif state.read_only or getattr(self.app, "read_only", False):
            text.append("  READ-ONLY ", style="bold reverse")
        self.set_class(state.stale, "-stale")
        self.update(text)
