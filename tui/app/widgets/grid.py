"""Rows of cells in columns, as one Rich Text: the versions and gates tables, drawn cheaply.

Why not a Rich Table: both panels change on every tick of a running release, and a Table
measures every cell, shares out its columns and renders each cell through a console each time
(about 3 ms a table, the largest part of drawing a running release once the plots were cheap).
Our cells are single lines whose widths the panels already know, so padding each to its
column is all the work there is. One column may fold (the gate's name on a narrow screen):
its cell goes on over the next lines, the other columns blank beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich.cells import cell_len
from rich.text import Text

GAP = 1  # spaces after every column, the last one too (as a Rich Table's right padding)


@dataclass(frozen=True)
class Column:
    title: str
    width: int  # cells, the gap after it not counted
    justify: Literal["left", "right"] = "left"
    fold: bool = False  # a longer cell goes on over the next lines instead of being cut


def share(total: int, count: int, least: Sequence[int]) -> list[int]:
    """`total` cells shared among `count` columns as evenly as their `least` widths allow: a
    column that needs more than an even share keeps what it needs and the others share the
    rest (the first ones take any remainder). Exactly `total` when it covers every least."""
    widths = list(least[:count])
    free = list(range(count))
    remaining = total
    while free:
        each, extra = divmod(max(0, remaining), len(free))
        over = [i for i in free if least[i] > each]
        if not over:
            for rank, i in enumerate(free):
                widths[i] = each + (1 if rank < extra else 0)
            break
        for i in over:
            remaining -= least[i]
            free.remove(i)
    return widths


def grid(columns: Sequence[Column], rows: Sequence[Sequence[Text]],
         header_style: str = "bold underline") -> Text:
    """The header and the rows, each line as wide as the columns and their gaps."""
    out = Text(no_wrap=True, overflow="crop")
    for column in columns:
        out.append_text(_fit(Text(column.title, style=header_style), column))
        out.append(" " * GAP)
    for row in rows:
        for line in _lines(columns, row):
            out.append("\n")
            out.append_text(line)
    return out


def _lines(columns: Sequence[Column], row: Sequence[Text]) -> list[Text]:
    """One row's screen lines: one, or more where a folding cell is longer than its column."""
    pieces = [_pieces(cell, column) for cell, column in zip(row, columns, strict=True)]
    lines = []
    for index in range(max(len(p) for p in pieces)):
        line = Text()
        for column, cell in zip(columns, pieces, strict=True):
            line.append_text(_fit(cell[index], column) if index < len(cell) else Text(" " * column.width))
            line.append(" " * GAP)
        lines.append(line)
    return lines


def _pieces(cell: Text, column: Column) -> list[Text]:
    """A folding cell cut into pieces of at most the column's width in cells (a wide
    character counts two)."""
    if not column.fold or cell.cell_len <= column.width or column.width <= 0:
        return [cell]
    cuts = []
    used = 0
    for index, char in enumerate(cell.plain):
        size = cell_len(char)
        if used and used + size > column.width:
            cuts.append(index)
            used = 0
        used += size
    return list(cell.divide(cuts))


def _fit(cell: Text, column: Column) -> Text:
    """The cell padded to its column's width on the side its justification leaves open, or
    cut with an ellipsis when it is wider (the panels size columns so that this is rare)."""
    cell = cell.copy()
    if cell.cell_len > column.width:
        cell.truncate(column.width, overflow="ellipsis")
    pad = " " * (column.width - cell.cell_len)
    if column.justify == "right":
        return Text(pad).append_text(cell)
    cell.append(pad)
    return cell
