"""The tables' columns (tui.app.widgets.grid): cells padded to their column on the side their
justification leaves open, a folding column going on over the next lines, the width shared."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from rich.text import Text

from tui.app.widgets.grid import Column, grid, share


def lines(text: Text) -> list[str]:
    return text.plain.split("\n")


def test_cells_are_padded_to_their_columns_left_or_right() -> None:
    columns = [Column("name", 6), Column("p99", 6, "right")]
    out = grid(columns, [[Text("v1"), Text("163ms")], [Text("canary"), Text("9ms")]])
    assert lines(out) == ["name      p99 ", "v1      163ms ", "canary    9ms "]


def test_a_folding_column_goes_on_over_the_next_lines_with_the_others_blank() -> None:
    columns = [Column("gate", 5, fold=True), Column("state", 6)]
    out = grid(columns, [[Text("error-budget"), Text("✔ pass")]])
    assert lines(out) == ["gate  state  ", "error ✔ pass ", "-budg        ", "et           "]


def test_a_cell_wider_than_a_column_that_does_not_fold_is_cut_with_an_ellipsis() -> None:
    out = grid([Column("v", 4)], [[Text("candidate")]])
    assert lines(out)[1] == "can… "


def test_styles_stay_with_their_cells() -> None:
    out = grid([Column("state", 6, "right")], [[Text("FAIL", style="bold red")]])
    row = out.split("\n")[1]
    assert row.plain == "  FAIL "
    assert any(str(span.style) == "bold red" for span in row.spans)


@given(total=st.integers(-5, 200), least=st.lists(st.integers(0, 12), min_size=1, max_size=8))
def test_shares_are_even_and_never_below_their_least(total: int, least: list[int]) -> None:
    widths = share(total, len(least), least)
    assert all(w >= low for w, low in zip(widths, least, strict=True))
    free = [w for w, low in zip(widths, least, strict=True) if w > low]
    assert max(free, default=0) - min(free, default=0) <= 1
    if all(low == 0 for low in least) and total >= 0:
        assert sum(widths) == total
