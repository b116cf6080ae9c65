"""What every layout shares: it is handed a State and passes it to its views."""

from __future__ import annotations

from typing import Any

from textual.screen import Screen

from strategies.model import State


class StateScreen(Screen[None]):
    """Widgets with the `view` class render the State; the screen only routes it to them."""

    AUTO_FOCUS = None  # nothing grabs the keys: every binding works from the first frame

    state: State | None = None
    ready = False

    def show(self, state: State) -> None:
        self.state = state
        self.set_class(state.flag is not None, "-flag")  # a flag release shows one more line
        if not self.ready:  # drawn on mount instead, once the widgets exist
            return
        for view in self.query(".view"):
            show: Any = getattr(view, "show", None)
            if show is not None:
                show(state)

    def on_mount(self) -> None:
        self.ready = True
        if self.state is not None:
            self.show(self.state)
