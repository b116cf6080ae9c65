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
    if total >= sum(least):
        assert sum(widths) == total
    else:
        assert widths == least


def test_a_folding_cell_of_wide_characters_is_cut_by_cells_not_characters() -> None:
    out = grid([Column("gate", 4, fold=True)], [[Text("错误率门")]])  # 4 characters, 8 cells
    assert lines(out)[1:] == ["错误 ", "率门 "]


def test_a_long_version_name_is_cut_and_every_figure_column_stays_on_screen() -> None:
    from tui.app.widgets.versions import version_columns

    cells = [Text("checkout-2026.11.28-build.1234"), Text("candidate"), Text("25%/25%"),
             Text("2/2"), Text("12.0/s"), Text("0.30%"), Text("49ms"), Text("138ms"), Text("197ms")]
    columns = version_columns([cells], 76)
    table = lines(grid(columns, [cells]))
    assert all(len(line) <= 76 for line in table)
    assert table[0].split() == ["version", "role", "weight", "ready", "req/s", "err", "%", "p50",
                                "p95", "p99"]
    assert table[1].split()[0].endswith("…") and table[1].rstrip().endswith("197ms")
