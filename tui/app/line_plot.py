"""A line plot in braille cells, pure: a Figure and a size in, rows of styled runs out.

Why not a plotting library: plotext drew the same picture, but rebuilt a full canvas of
coloured cells in Python and printed it as ANSI to be parsed back, about 15 ms a plot. A running
release gives both plots a new point every second, so on a wide screen that alone was about 2 %
of a core, as much as everything else the operator's screen draws. Here a plot costs what its
points and its cells cost, nothing more, and the picture is the same one: a box with round
ticks, the y axis from 0 with its unit, "seconds before now" below, each version a line of
braille dots (2 × 4 a cell), the gate's bound a rule across.

Where two lines share a cell, the later one in `Figure.lines` gives it its colour (the
candidate is drawn over the baseline); the bound's rule shows only in the cells no line uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from rich.style import Style

Colour = tuple[int, int, int]
Run = tuple[str, Style | None]  # characters (one cell each) in one style
Row = list[Run]
BRAILLE_BASE = 0x2800
# the bit of each dot of a braille cell, by (column, row) inside the cell, row 0 at the top
DOT_BITS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
LEFT_GAP = 0  # columns before the y labels (the panel has its own padding)
RIGHT_GAP = 0  # and after the box


@dataclass(frozen=True)
class Figure:
    """Everything one plot draws; equal figures draw the same picture, so a plot is drawn again
    only when this changes. `lines`: (xs, ys, colour) per line, xs ascending; `xticks` and
    `yticks` ascending, with one label each; the y axis runs from 0 to the last y tick."""

    title: str
    lines: tuple[tuple[tuple[float, ...], tuple[float, ...], Colour], ...]
    bound: float | None
    bound_colour: Colour
    yticks: tuple[float, ...]
    ylabels: tuple[str, ...]
    xticks: tuple[float, ...]
    xlabels: tuple[str, ...]


@dataclass(frozen=True)
class Frame:
    """Where the plot's cells sit inside the picture, and how values map to dots."""

    label_width: int  # columns left of the box's left edge
    cols: int  # cells inside the box
    rows: int
    x_low: float
    x_high: float
    y_top: float

    @property
    def dots_x(self) -> int:
        return 2 * self.cols

    @property
    def dots_y(self) -> int:
        return 4 * self.rows

    def dot_x(self, x: float) -> int:
        span = self.x_high - self.x_low
        where = (x - self.x_low) / span if span > 0 else 1.0
        return min(self.dots_x - 1, max(0, round(where * (self.dots_x - 1))))

    def dot_y(self, y: float) -> int:
        """Dots up from the bottom."""
        where = y / self.y_top if self.y_top > 0 else 0.0
        return min(self.dots_y - 1, max(0, round(where * (self.dots_y - 1))))

    def row_of(self, y: float) -> int:
        """The cell row (0 at the top) a value falls in."""
        return self.rows - 1 - self.dot_y(y) // 4


def frame(fig: Figure, width: int, height: int) -> Frame | None:
    """The box inside width × height, or None when there is no room for one: a title row, the
    box's top and bottom edges and a row of x labels around at least one row of cells."""
    label_width = LEFT_GAP + max((len(label) for label in fig.ylabels), default=0)
    cols = width - label_width - 2 - RIGHT_GAP
    rows = height - 4
    if cols < 2 or rows < 1 or not fig.xticks or not fig.yticks:
        return None
    x_low, x_high = fig.xticks[0], fig.xticks[-1]
    x_high += (x_high - x_low) * 0.02  # a hair past the last tick: a point at "now" shows
    return Frame(label_width, cols, rows, x_low, x_high, fig.yticks[-1])


class Canvas:
    """Braille dots per cell, and which line gave each cell its colour."""

    def __init__(self, box: Frame) -> None:
        self.box = box
        self.bits = [[0] * box.cols for _ in range(box.rows)]
        self.owner: list[list[int]] = [[-1] * box.cols for _ in range(box.rows)]

    def dot(self, x: int, y: int, owner: int) -> None:
        """Light the dot x from the left, y up from the bottom (both in dots)."""
        row = self.box.rows - 1 - y // 4
        col = x // 2
        self.bits[row][col] |= DOT_BITS[x % 2][3 - y % 4]
        self.owner[row][col] = owner

    def segment(self, start: tuple[int, int], end: tuple[int, int], owner: int) -> None:
        """The dots of a straight line between two dots (Bresenham), both ends lit."""
        (x0, y0), (x1, y1) = start, end
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        step_x, step_y = (1 if x1 > x0 else -1), (1 if y1 > y0 else -1)
        error = dx + dy
        while True:
            self.dot(x0, y0, owner)
            if (x0, y0) == (x1, y1):
                return
            twice = 2 * error
            if twice >= dy:
                error += dy
                x0 += step_x
            if twice <= dx:
                error += dx
                y0 += step_y

    def line(self, xs: tuple[float, ...], ys: tuple[float, ...], owner: int) -> None:
        dots = [(self.box.dot_x(x), self.box.dot_y(y)) for x, y in zip(xs, ys, strict=True)]
        if len(dots) == 1:
            self.dot(*dots[0], owner)
        for start, end in pairwise(dots):
            self.segment(start, end, owner)


def draw(fig: Figure, width: int, height: int) -> list[Row]:
    """The picture of `fig` in width × height cells: `height` rows (fewer when there is no room
    for a box), each exactly `width` cells wide."""
    title: Row = [(fig.title[:width].center(width), None)]
    box = frame(fig, width, height)
    if box is None:
        return [title][:height]
    canvas = Canvas(box)
    for owner, (xs, ys, _colour) in enumerate(fig.lines):
        canvas.line(xs, ys, owner)
    styles = [Style(color=f"rgb{colour}") for _xs, _ys, colour in fig.lines]
    edge = " " * box.label_width
    rows: list[Row] = [title, [(f"{edge}┌{'─' * box.cols}┐{' ' * RIGHT_GAP}", None)]]
    labels = {box.row_of(tick): label for tick, label in zip(fig.yticks, fig.ylabels, strict=True)}
    bound_row = box.row_of(fig.bound) if fig.bound is not None else None
    bound_style = Style(color=f"rgb{fig.bound_colour}")
    for row in range(box.rows):
        label = labels.get(row)
        left = "├" if row == bound_row else ("┤" if label is not None else "│")
        line: Row = [(f"{(label or ''):>{box.label_width}}{left}", None)]
        line += _cells(canvas, row, styles, bound_style if row == bound_row else None)
        line.append((("┤" if row == bound_row else "│") + " " * RIGHT_GAP, None))
        rows.append(line)
    columns = [box.dot_x(tick) // 2 for tick in fig.xticks]
    bottom = ["─"] * box.cols
    for column in columns:
        bottom[column] = "┬"
    rows.append([(f"{edge}└{''.join(bottom)}┘{' ' * RIGHT_GAP}", None)])
    rows.append([(_x_labels(columns, fig.xlabels, box.label_width + 1, width), None)])
    return rows


def plain(rows: list[Row]) -> list[str]:
    """The characters of each row, without styles (for reading a picture in tests)."""
    return ["".join(text for text, _style in row) for row in rows]


def _cells(canvas: Canvas, row: int, styles: list[Style], rule: Style | None) -> Row:
    """One row of cells, in runs of one style: dots in their line's colour, the bound's rule
    (when this is its row) where no line is, blank elsewhere."""
    runs: Row = []
    run: list[str] = []
    run_style: Style | None = None
    for bits, owner in zip(canvas.bits[row], canvas.owner[row], strict=True):
        if bits:
            char, style = chr(BRAILLE_BASE + bits), styles[owner]
        elif rule is not None:
            char, style = "─", rule
        else:
            char, style = " ", None
        if style is not run_style and run:
            runs.append(("".join(run), run_style))
            run = []
        run_style = style
        run.append(char)
    if run:
        runs.append(("".join(run), run_style))
    return runs


def _x_labels(columns: list[int], labels: tuple[str, ...], offset: int, width: int) -> str:
    """The x labels centred under their ticks, each dropped when it would touch the one before
    or run off the picture (the last, "now", is kept over its neighbour)."""
    placed: list[tuple[int, str]] = []
    for column, label in zip(columns, labels, strict=True):
        start = min(max(0, offset + column - len(label) // 2), max(0, width - len(label)))
        while placed and start <= placed[-1][0] + len(placed[-1][1]):
            placed.pop()
        placed.append((start, label))
    line = [" "] * width
    for start, label in placed:
        line[start:start + len(label)] = label
    return "".join(line[:width])
