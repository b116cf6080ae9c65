"""The braille line plot (tui.app.line_plot): every picture fills its size exactly, points land
where their values say, the bound is a rule across, and the later line colours a shared cell."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.style import Style

from tui.app.line_plot import BRAILLE_BASE, Figure, draw, plain

BLUE, ORANGE, RED = (78, 161, 255), (255, 159, 28), (220, 60, 60)


def fig(lines: tuple[tuple[tuple[float, ...], tuple[float, ...], tuple[int, int, int]], ...],
        bound: float | None = None, top: float = 100.0) -> Figure:
    return Figure("error rate (%)", lines, bound, RED, (0.0, top / 2, top),
                  ("0%", f"{top / 2:g}%", f"{top:g}%"), (-60.0, -30.0, 0.0), ("-60s", "-30s", "now"))


def cells(rows: list[list[tuple[str, Style | None]]]) -> list[list[tuple[str, Style | None]]]:
    """Each cell with its style."""
    return [[(char, style) for text, style in row for char in text] for row in rows]


def braille(char: str) -> int:
    return ord(char) - BRAILLE_BASE if BRAILLE_BASE <= ord(char) <= BRAILLE_BASE + 0xFF else 0


values = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)
times = st.floats(min_value=-60.0, max_value=0.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(width=st.integers(0, 120), height=st.integers(0, 40),
       points=st.lists(st.tuples(times, values), max_size=40),
       bound=st.none() | values)
def test_every_row_is_exactly_the_width_and_there_are_never_more_rows_than_the_height(
        width: int, height: int, points: list[tuple[float, float]], bound: float | None) -> None:
    points.sort()
    lines = ((tuple(x for x, _ in points), tuple(y for _, y in points), BLUE),) if points else ()
    rows = draw(fig(lines, bound), width, height)
    assert len(rows) <= max(height, 0) or (height <= 0 and rows == [])
    assert all(len(line) == width for line in plain(rows))
    if height >= 5 and width >= 10:
        assert len(rows) == height


def test_the_picture_has_its_title_box_ticks_and_time_labels() -> None:
    rows = plain(draw(fig(()), 40, 10))
    assert rows[0].strip() == "error rate (%)"
    assert rows[1].lstrip().startswith("┌") and rows[1].rstrip().endswith("┐")
    assert rows[-2].lstrip().startswith("└") and rows[-2].count("┬") == 3
    assert rows[-1].split() == ["-60s", "-30s", "now"]
    ylabels = [row.split("┤")[0].strip() for row in rows[2:-2] if "┤" in row]
    assert ylabels == ["100%", "50%", "0%"]  # top first


def test_a_point_at_the_top_lights_the_top_row_and_a_zero_the_bottom_row() -> None:
    rows = plain(draw(fig((((-60.0, 0.0), (100.0, 0.0), BLUE),)), 40, 10))
    plot_rows = rows[2:-2]
    assert braille(plot_rows[0].split("┤", 1)[1][0]) & 0x01  # top-left dot of the first cell
    assert any(braille(c) & 0xC0 for c in plot_rows[-1])  # bottom dots in the last row
    assert all(braille(c) == 0 for row in plot_rows[1:-1] for c in row[-4:-1])


def test_the_bound_is_a_rule_across_that_gives_way_to_the_lines() -> None:
    rows = draw(fig((((-60.0, -30.0), (50.0, 50.0), BLUE),), bound=50.0), 40, 10)  # half way
    text = plain(rows)
    rule = [i for i, row in enumerate(text) if "├" in row]
    assert len(rule) == 1
    row = cells(rows)[rule[0]]
    kinds = {(char == "─", style) for char, style in row if char == "─" or braille(char)}
    assert (True, Style(color=f"rgb{RED}")) in kinds  # the rule, in the bound's colour
    assert (False, Style(color=f"rgb{BLUE}")) in kinds  # the line over it, in its own
    assert text[rule[0]].rstrip().endswith("┤")


def test_where_two_lines_share_a_cell_the_later_one_colours_it_and_both_show() -> None:
    # 0 and 5 of 100 on 6 rows of 4 dots: dots 0 and 1 up, both in the bottom row of cells
    rows = draw(fig((((-60.0, 0.0), (0.0, 0.0), BLUE), ((-60.0, 0.0), (5.0, 5.0), ORANGE))), 40, 10)
    bottom = cells(rows)[-3]
    shared = [(char, style) for char, style in bottom if braille(char)]
    assert shared and all(style == Style(color=f"rgb{ORANGE}") for _c, style in shared)
    assert all(braille(char) & 0xC0 and braille(char) & 0x24 for char, _s in shared)


def test_a_lone_point_is_drawn_and_no_room_for_a_box_leaves_only_the_title() -> None:
    rows = plain(draw(fig((((0.0,), (25.0,), BLUE),)), 40, 10))
    assert sum(1 for row in rows for c in row if braille(c)) == 1
    assert plain(draw(fig(()), 40, 4)) == ["error rate (%)".center(40)]
    assert plain(draw(fig(()), 7, 10)) == ["error r"]  # "100%┤" and "│" leave one cell
