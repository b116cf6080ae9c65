"""Draw only what changed: a view compares what it would print with what it printed last.

Each published State is a new object (one per tick), but most of what a panel prints does not
move from one tick to the next: the versions table between two scrapes, the gates while the
evidence holds still, every panel of a paused or finished release. Re-rendering a Rich table,
and worse, asking Textual for a layout pass (which measures every auto-height panel again and
recomposes the whole screen), costs more than all the rest of a tick. So a view first builds
its *facts* — plain comparable values: strings, numbers, Rich `Text` lines, which compare by
their characters and styles — and only when they differ from the last ones does it build the
renderable and refresh; and it asks for a layout pass only when its *shape* (what decides its
height at the current width) changed, not when a figure inside a fixed line did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from weakref import WeakKeyDictionary

from rich.console import RenderableType
from rich.text import Text
from textual.app import App
from textual.widget import Widget
from textual.widgets import Static

_NOTHING = object()


def frozen(value: object) -> object:
    """`value` as plain comparable data. A Rich Text compares by characters and spans only, not
    by its base style or wrapping, so those are taken along; lists and tuples are walked."""
    if isinstance(value, Text):
        return (value.plain, str(value.style), tuple(value.spans), value.justify,
                value.no_wrap, value.overflow)
    if isinstance(value, list | tuple):
        return tuple(frozen(item) for item in value)
    return value


def wrapped_lines(app: App[object], text: Text, width: int) -> int:
    """How many screen lines `text` takes at `width` (what decides a wrapping line's height)."""
    if width <= 0:
        return 1
    if text.no_wrap:
        return len(text.plain.split("\n"))
    return len(text.wrap(app.console, width))


def shape_of(app: App[object], wrapping: Iterable[Text], width: int) -> tuple[int, ...]:
    """The heights of the lines that may wrap, at `width`: equal shapes, equal heights."""
    return tuple(wrapped_lines(app, text, width) for text in wrapping)


class Drawn(Static):
    """A Static that is redrawn only when its facts change, and laid out only when its shape
    does. `draws` counts the redraws (tests count them; nothing here is timed)."""

    draws = 0
    _facts: object = _NOTHING
    _shape: object = _NOTHING

    def put(self, facts: object, build: Callable[[], RenderableType], shape: object = None) -> bool:
        """Show `build()` if `facts` differ from the last ones; returns whether it redrew."""
        facts = frozen(facts)
        if facts == self._facts:
            return False
        layout = shape != self._shape
        self._facts, self._shape = facts, shape
        self.draws += 1
        self.update(build(), layout=layout)
        return True

    def forget(self) -> None:
        """The next `put` redraws and lays out whatever it is given (after a resize, say)."""
        self._facts = self._shape = _NOTHING


_TITLES: WeakKeyDictionary[Widget, str] = WeakKeyDictionary()


def set_border_title(widget: Widget, title: str) -> None:
    """Setting a border title repaints the widget even when it is the same (and reads back as
    converted markup, so it cannot be compared): set it only when it differs from the last."""
    if _TITLES.get(widget) != title:
        _TITLES[widget] = title
        widget.border_title = title
