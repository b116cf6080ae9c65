"""A composite view draws a State only once its own children exist.

The screen may hand over a State before a container's children are mounted (a fresh screen,
a first frame); the latest State is kept and drawn on mount, so nothing is lost or raced.
Likewise on quit, children are removed before their parent: a late redraw is dropped.
"""

from __future__ import annotations

import contextlib

from textual.css.query import NoMatches

from strategies.model import State


class Deferred:
    _pending: State | None = None
    _ready: bool = False

    def show(self, state: State) -> None:
        self._pending = state
        if self._ready:
            # On quit the children go first; a redraw racing that teardown has nothing to draw.
            with contextlib.suppress(NoMatches):
                self.draw(state)

    def on_mount(self) -> None:
        self._ready = True
        if self._pending is not None:
            self.draw(self._pending)

    def draw(self, state: State) -> None:
        raise NotImplementedError
