"""The fleet's table: a DataTable that draws again only the cells that changed.

Textual's DataTable keys its cell cache on one counter that every `update_cell` bumps, so a
tick that changes one gate's figure draws every visible cell of the list again — at a hundred
releases that drawing was most of the fleet's CPU. Here a cell's drawing is kept until that
cell (or the table's structure: rows, columns, widths, order) changes; what it draws is the
same, only drawn less often.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.widgets import DataTable
from textual.widgets.data_table import CellType, ColumnKey, RowKey


class FleetTable(DataTable[CellType]):
    """A DataTable whose cell drawings outlive updates to other cells."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._cell_updates = 0  # bumps of the update counter made by update_cell alone
        self._cell_version: dict[tuple[RowKey, ColumnKey], int] = {}
        self.cells_drawn = 0  # cells drawn anew (tests count them)

    def update_cell(self, row_key: RowKey | str, column_key: ColumnKey | str, value: CellType,
                    *, update_width: bool = False) -> None:
        before = self._update_count
        super().update_cell(row_key, column_key, value, update_width=update_width)
        self._cell_updates += self._update_count - before
        self._cell_version[(RowKey(row_key) if isinstance(row_key, str) else row_key,
                            ColumnKey(column_key) if isinstance(column_key, str) else column_key)] \
            = self._update_count

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False) -> list[list[Segment]]:
        """The cell's drawing from the cache while neither it nor the table's structure changed.

        The key holds what the drawing depends on: the structure's count (every bump of the
        update counter not made by update_cell: rows or columns added, cleared, widths), the
        cell's own version, its place, width and styles."""
        row_key = self._header_row_key if row_index == -1 else self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        key = ("fleet-cell", row_index, row_key, column_key, base_style, width, cursor, hover,
               self._show_hover_cursor, self.show_cursor, self._pseudo_class_state,
               self._update_count - self._cell_updates,
               self._cell_version.get((row_key, column_key), 0))
        cached = self._cell_render_cache.get(key)
        if cached is None:
            self.cells_drawn += 1
            cached = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
            self._cell_render_cache[key] = cached
        return cached
