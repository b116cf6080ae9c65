"""Snapshots (pytest-textual-snapshot) of the main layouts at 80×24 and 160×48, from scenes the
real engine produced over in-memory adapters and a fixed clock, so every frame is the same.
Update after an intended change with: pytest tests/tui --snapshot-update
"""

from __future__ import annotations

import pytest
from support import scene

from tui.app import ReleaseApp

SIZES = [(80, 24), (160, 48)]


def still_app(name: str, *, wallboard: bool = False) -> ReleaseApp:
    world = scene(name, read_only=wallboard)
    return ReleaseApp(world.driver, read_only=wallboard, wallboard=wallboard, ticking=False)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", ["operate", "paused", "rolled-back", "flag", "ring"])
def test_dashboard(snap_compare, name: str, size: tuple[int, int]) -> None:
    assert snap_compare(still_app(name), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_wallboard(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(still_app("operate", wallboard=True), terminal_size=size)


def test_wallboard_after_rollback(snap_compare) -> None:
    assert snap_compare(still_app("rolled-back", wallboard=True), terminal_size=(80, 24))
