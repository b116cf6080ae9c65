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

And when it redraws, it repaints only the lines that differ from what is on screen: a second
of a running canary moves a countdown, a figure or two and a bar, a few lines of a ten-line
panel. Textual repaints a widget whole when its content is replaced (every line through the
style cache, each frame ≈ 0.2 ms a line at 160 columns); a line left alone is taken from that
cache instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from weakref import WeakKeyDictionary

from rich.console import Group, RenderableType
from rich.text import Text
from textual.app import App
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.style import Style as VisualStyle
from textual.visual import RichVisual, Visual, visualize
from textual.widget import Widget

_NOTHING = object()


def frozen(value: object) -> object:
    """`value` as plain comparable data. A Rich Text compares by characters and spans only, not
    by its base style or wrapping, so those are taken along; lists and tuples are walked."""
    if isinstance(value, Text):
        return (value.plain, str(value.style), tuple(value.spans), value.justify,
                value.no_wrap, value.overflow, value.end, value.tab_size)
    if isinstance(value, list | tuple):
        return tuple(frozen(item) for item in value)
    return value


def wrapped_lines(app: App[object], text: Text, width: int) -> int:
    """How many screen lines `text` takes at `width` (what decides a wrapping line's height)."""
    if width <= 0:
        return 1
    if text.no_wrap:
        return len(text.plain.split("\n"))
    if "\n" not in text.plain and "\t" not in text.plain and text.cell_len <= width:
        return 1  # fits: no need to wrap it to know (wrapping costs more than the rest)
    return len(text.wrap(app.console, width))


def shape_of(app: App[object], wrapping: Iterable[Text], width: int) -> tuple[int, ...]:
    """The heights of the lines that may wrap, at `width`: equal shapes, equal heights."""
    return tuple(wrapped_lines(app, text, width) for text in wrapping)


def pieces(group: Group) -> Iterator[RenderableType]:
    """A group as the pieces that draw its lines one after another (Rich draws a group's items
    one under another, so alone they draw the same lines): its items, the items of the groups
    in it, and a text's lines (Rich wraps a text line by line)."""
    for item in group.renderables:
        if isinstance(item, Group):
            yield from pieces(item)
        elif isinstance(item, Text) and "\n" in item.plain:
            yield from text_lines(item)
        else:
            yield item


def text_lines(text: Text) -> list[Text]:
    """A text's lines as texts that draw as the text draws (Rich's split keeps the style,
    justification and overflow, not `no_wrap`, `tab_size` or the last line's `end`)."""
    lines = list(text.split("\n", allow_blank=True))
    for line in lines:
        line.no_wrap, line.tab_size = text.no_wrap, text.tab_size
    lines[-1].end = text.end
    return lines


def _ends_its_line(piece: RenderableType) -> bool:
    """A text that does not end its line runs on into the next piece: not drawn alone."""
    return not isinstance(piece, Text) or piece.end == "\n"


class Drawn(Widget):
    """A panel redrawn only when its facts change, laid out only when its shape does, and
    repainted only where its lines differ. `draws` counts the redraws and `repaints` the lines
    repainted since (tests count them; nothing here is timed)."""

    DEFAULT_CSS = "Drawn { height: auto; }"

    draws = 0
    repaints = 0
    _facts: object = _NOTHING
    _shape: object = _NOTHING
    _build: Callable[[], RenderableType] = str
    # the last build at the size it was for, and its pieces when it is drawn piece by piece
    _made: tuple[Size, RenderableType, list[RenderableType] | None] | None = None
    _picture: tuple[Size, VisualStyle, list[Strip]] | None = None  # the lines on screen, as drawn
    _known: tuple[object, dict[object, list[Strip]]] = ((), {})  # last picture's text lines, drawn

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        # No panel shows links; Textual would work out a link style for every line drawn.
        self.auto_links = False

    def put(self, facts: object, build: Callable[[], RenderableType], shape: object = None) -> bool:
        """Show `build()` if `facts` differ from the last ones; returns whether it redrew.
        `build` is kept: it is called again when the panel's size changes."""
        facts = frozen(facts)
        if facts == self._facts:
            return False
        layout = shape != self._shape
        self._facts, self._shape, self._build = facts, shape, build
        self.draws += 1
        old, self._picture, self._made = self._picture, None, None
        if layout or old is None or old[:2] != (self.size, self.visual_style) or not self._by_line():
            self.refresh(layout=layout)
            return True
        self._repaint(old[2], self._lines())
        return True

    def _by_line(self) -> bool:
        """Whether the panel draws piece by piece, so that its lines can be compared with the
        last ones; anything else is drawn whole, as a Static is."""
        return self._pieces() is not None

    def _repaint(self, old: list[Strip], new: list[Strip]) -> None:
        if len(old) != len(new):  # a height the shape did not foresee: never cut a line
            self.refresh(layout=True)
            return
        width = self.size.width
        for y, (before, after) in enumerate(zip(old, new, strict=True)):
            if before != after:
                self.repaints += 1
                self.refresh(Region(0, y, width, 1))

    def render(self) -> RenderableType:
        """What Textual measures (the auto height, the width) is what `render_line` shows."""
        return self._renderable()

    def render_line(self, y: int) -> Strip:
        lines = self._lines()
        if y < min(len(lines), self.size.height):
            return lines[y]
        return Strip.blank(self.size.width, self.visual_style.rich_style)

    def _lines(self) -> list[Strip]:
        """The panel's lines at its size and in its style (a class that recolours the panel
        draws it again), rendered as a Static would render them."""
        size, style = self.size, self.visual_style
        if self._picture is None or self._picture[:2] != (size, style):
            by_line = self._pieces()
            if by_line is not None:
                # every line, even past the panel's height: a panel that grew is seen to
                strips = self._piece_lines(by_line, size.width, style)
            else:
                visual = visualize(self, self._renderable())
                strips = Visual.to_strips(self, visual, size.width, size.height, style)
            self._picture = (size, style, strips)
        return self._picture[2]

    def _piece_lines(self, by_line: list[RenderableType], width: int, style: VisualStyle) -> list[Strip]:
        """A group's lines, piece by piece: a piece of text equal to one drawn last time is
        taken as drawn. A second of a running canary changes a few lines of a table, and
        rendering text is most of a redraw's cost."""
        known = self._known[1] if self._known[0] == (width, style) else {}
        drawn: dict[object, list[Strip]] = {}
        strips: list[Strip] = []
        for piece in by_line:
            key = frozen(piece) if isinstance(piece, Text) else _NOTHING
            lines = known.get(key) or drawn.get(key)
            if lines is None:
                lines = Visual.to_strips(self, RichVisual(self, piece), width, None, style)
            if key is not _NOTHING:
                drawn[key] = lines
            strips += lines
        self._known = ((width, style), drawn)
        return strips

    def _renderable(self) -> RenderableType:
        """Built once per change of facts, and again at a new size (a builder may draw to it)."""
        return self._made_now()[1]

    def _pieces(self) -> list[RenderableType] | None:
        """The pieces of the built group, or None when it is not drawn piece by piece: not a
        group, aligned other than top left, or a text in it that runs on into the next piece."""
        return self._made_now()[2]

    def _made_now(self) -> tuple[Size, RenderableType, list[RenderableType] | None]:
        size = self.size
        if self._made is None or self._made[0] != size:
            renderable = self._build()
            by_line = list(pieces(renderable)) if isinstance(renderable, Group) else None
            if by_line is not None and (self.styles.content_align != ("left", "top")
                                        or not all(_ends_its_line(p) for p in by_line)):
                by_line = None
            self._made = (size, renderable, by_line)
        return self._made


_TITLES: WeakKeyDictionary[Widget, str] = WeakKeyDictionary()


def set_border_title(widget: Widget, title: str) -> None:
    """Setting a border title repaints the widget even when it is the same (and reads back as
    converted markup, so it cannot be compared): set it only when it differs from the last."""
    if _TITLES.get(widget) != title:
        _TITLES[widget] = title
        widget.border_title = title
