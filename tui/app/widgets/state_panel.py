"""A panel that shows the latest State and draws it again when its own size changes.

Its lines depend on its width (columns that fold, lines that wrap) and on the terminal's
height (resource lines need the rows), so a resize draws the panel again. It does so after the
resize's own layout pass: a layout asked for from inside the resize was lost, and a panel whose
height changed kept its old rows, blank (160×48 → 80×24 left two under the versions table).
"""

from __future__ import annotations

from strategies.model import State
from tui.app.widgets.drawn import Drawn


class StatePanel(Drawn):
    """A Drawn panel that shows a State (`show` keeps it in `_state`)."""

    _state: State | None = None  # the latest State shown (`show` keeps it)

    def show(self, state: State) -> None:
        raise NotImplementedError

    def on_resize(self) -> None:
        self.call_after_refresh(self._show_latest)

    def _show_latest(self) -> None:
        if self._state is not None:
            self.show(self._state)
