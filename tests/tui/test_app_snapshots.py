"""Snapshots (pytest-textual-snapshot) of the main layouts at 80×24 and 160×48, from scenes the
real engine produced over in-memory adapters and a fixed clock, so every frame is the same.
Update after an intended change with: pytest tests/tui --snapshot-update
"""

from __future__ import annotations

import pytest
from support import scene

from tui.app import ReleaseApp
from tui.app.app import ExtraAction
from tui.app.components import RunInfo
from tui.demo_specs import demo_spec_text

SIZES = [(80, 24), (160, 48)]


INFO = RunInfo(spec_text=demo_spec_text("canary"), spec_origin="built-in demo spec (canary)",
               router="http://127.0.0.1:18080", logs="/tmp/releasedeck-local-demo",
               journal="/tmp/releasedeck-demo-x/demo.journal", journal_kept=False)


def still_app(name: str, *, wallboard: bool = False, read_only: bool = False) -> ReleaseApp:
    world = scene(name, read_only=wallboard or read_only)
    return ReleaseApp(world.driver, read_only=wallboard or read_only, wallboard=wallboard,
                      ticking=False, info=INFO,
                      extra_actions=None if wallboard or read_only else {
                          "f": ExtraAction("Inject fault", "inject a fault into the candidate", world.fault),
                          "F": ExtraAction("Clear fault", "clear the fault", world.clear_fault)},
                      extra_available={"f": lambda: name not in ("rolled-back", "ended"),
                                       "F": lambda: name in ("rolled-back", "ended")})


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", ["operate", "paused", "rolled-back", "ended", "startup", "flag",
                                  "ring"])
def test_dashboard(snap_compare, name: str, size: tuple[int, int]) -> None:
    assert snap_compare(still_app(name), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_wallboard(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(still_app("operate", wallboard=True), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_wallboard_after_rollback(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(still_app("ended", wallboard=True), terminal_size=size)


# Dialogs and help at the smallest size they must fit (80×24), and the big one once.
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize(("name", "keys"), [
    ("operate", ["P"]), ("operate", ["r"]), ("operate", ["w"]), ("operate", ["q"]),
    ("operate", ["question_mark"]), ("ended", ["e"]), ("operate", ["i"])],
    ids=["promote-full", "rollback", "weight", "quit", "help", "events", "info"])
def test_dialogs(snap_compare, name: str, keys: list[str], size: tuple[int, int]) -> None:
    assert snap_compare(still_app(name), terminal_size=size, press=keys)


def test_read_only_help(snap_compare) -> None:
    assert snap_compare(still_app("operate", read_only=True), terminal_size=(80, 24),
                        press=["question_mark"])
