"""A release opened from the `:fleet` view of the operator's app: its dashboard, read-only.

The operator's own release keeps running underneath; this screen shows another release of the
fleet — its driver's published State when a session drives it, its journal's state otherwise —
and can change nothing: it is modal, so the app's operator keys (which act on the app's own
release) do not reach through it. Esc goes back to the list.
"""

from __future__ import annotations

import asyncio

from textual.binding import Binding
from textual.widgets import Input

from strategies.model import State
from tui.app.screens.dashboard import DashboardScreen
from tui.fleet.gather import FleetGatherer


class ReleaseViewScreen(DashboardScreen):
    BINDINGS = [Binding("escape", "back", "Back"), Binding("q", "back", "Back", show=False)]

    def __init__(self, gatherer: FleetGatherer, source: str, refresh: float = 1.0) -> None:
        super().__init__(read_only=True)
        self._modal = True  # the app's bindings (promote, rollback, …) stop here
        self.gatherer = gatherer
        self.source = source
        self.refresh_every = max(0.05, refresh)

    def on_mount(self) -> None:
        super().on_mount()
        self.sub_title = "READ-ONLY"
        self.run_worker(self._follow(), exclusive=True, group="release-view")

    async def _follow(self) -> None:
        while True:
            state: State | None = await self.gatherer.state_of(self.source)
            if state is not None and state is not self.state:
                self.show(state)
            await asyncio.sleep(self.refresh_every)

    def key_escape(self) -> None:
        """Esc is the `back` binding here (the dashboard's own Esc only clears a filter)."""

    def action_back(self) -> None:
        """Esc: close an open event filter first, then go back to the list."""
        box = self.query_one("#event-filter", Input)
        if box.has_class("-open"):
            box.value = ""
            self.close_filter()
        else:
            self.dismiss(None)
