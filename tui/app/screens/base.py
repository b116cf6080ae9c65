"""What every layout shares: it is handed a State and passes it to its views."""

from __future__ import annotations

from typing import Protocol

from textual.screen import Screen

from strategies.model import State


class StateView(Protocol):
    """A widget that draws the State: every panel of a layout."""

    def show(self, state: State) -> None: ...


class StateScreen(Screen[None]):
    """A layout names the widgets that draw the State (`views`); the screen only routes each
    State to them."""

    AUTO_FOCUS = None  # nothing grabs the keys: every binding works from the first frame

    state: State | None = None
    ready = False
    _views: tuple[StateView, ...] = ()

    def __init__(self, *, read_only: bool = False) -> None:
        super().__init__()
        self.read_only = read_only
        """Nothing can be changed from this screen: its status bar says READ-ONLY."""

    def views(self) -> tuple[StateView, ...]:
        """This layout's views, asked once its widgets are mounted."""
        raise NotImplementedError

    def show(self, state: State) -> None:
        self.state = state
        self.set_class(state.flag is not None, "-flag")  # a flag release shows one more line
        if not self.ready:  # drawn on mount instead, once the widgets exist
            return
        for view in self._views:
            view.show(state)

    def on_mount(self) -> None:
        self._views = self.views()
        self.ready = True
        if self.state is not None:
            self.show(self.state)
