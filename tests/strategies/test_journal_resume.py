"""The journal on disk (torn lines, several runs) and the hold clock across pauses and restarts."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from strategies.engine import Engine
from strategies.journal import (
    JournalWriter,
    MemoryJournal,
    NotAJournal,
    last_run,
    read_records,
    torn_path,
)
from strategies.model import Command, CommandKind, Phase, RolloutState
from tests.strategies.brain_kit import T0, World, command, kinds, make_spec, run_until, tick


def _run_to_step(path: Path) -> tuple[Engine, World]:
    spec = make_spec()
    writer = JournalWriter(path)
    engine, world = Engine(spec, journal=writer, run="r1"), World.for_spec(spec)
    run_until(engine, world, T0, until=("step",))
    writer.close()
    return engine, world


def test_file_journal_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "j" / "release.journal"
    engine, _world = _run_to_step(path)
    read = read_records(path)
    assert read.problems == [] and not read.torn_tail
    assert [r["seq"] for r in read.records] == list(range(1, len(read.records) + 1))
    assert Engine(engine.spec, records=read.records).state == engine.state
    line = json.loads(path.read_text().splitlines()[0])
    assert line["ts"].endswith("Z") and line["release"] == "checkout" and line["run"] == "r1"


def test_torn_last_line_is_dropped_and_the_next_write_starts_a_fresh_line(tmp_path: Path) -> None:
    path = tmp_path / "release.journal"
    engine, world = _run_to_step(path)
    whole = path.read_text()
    path.write_text(whole + '{"journal":1,"kind":"ste')  # the crash
    read = read_records(path)
    assert read.torn_tail and len(read.problems) == 1 and "cut short" in read.problems[0]
    assert read.problems[0].startswith(f"{path}:{len(whole.splitlines()) + 1}:")
    resumed_state = Engine(engine.spec, records=read.records).state
    assert resumed_state == engine.state
    # Resume and keep writing: the new records must not be glued onto the torn fragment.
    writer = JournalWriter(path)
    resumed = Engine(engine.spec, journal=writer, records=read.records)
    run_until(resumed, world, T0 + 100, until=("step",))
    writer.close()
    # The torn fragment was cut off when the writer opened (kept in <journal>.torn): it was
    # warned about once, and every later read is quiet (before, it was glued mid-file and
    # warned "unreadable" on every run for good).
    again = read_records(path)
    assert not again.torn_tail and again.problems == []
    assert Engine(engine.spec, records=again.records).state == resumed.state
    assert torn_path(path).read_text() == '{"journal":1,"kind":"ste\n'
    assert path.read_text().startswith(whole) and "ste\n" not in path.read_text()


def test_a_journal_that_is_one_torn_line_is_set_aside_whole(tmp_path: Path) -> None:
    path = tmp_path / "release.journal"
    path.write_text('{"journal":1,"ki')
    assert read_records(path).torn_tail
    JournalWriter(path).close()
    assert path.read_text() == "" and read_records(path).problems == []
    assert torn_path(path).read_text() == '{"journal":1,"ki\n'


def test_a_fifo_or_device_or_folder_is_refused_not_read(tmp_path: Path) -> None:
    """`--journal /dev/full` used to be read forever; a FIFO would block the open."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for path, kind in ((Path("/dev/full"), "a character device"),
                       (fifo, "a FIFO (named pipe)"), (tmp_path, "a folder")):
        with pytest.raises(NotAJournal, match=f"not a regular file \\(it is {re.escape(kind)}\\)"):
            read_records(path)
        with pytest.raises(NotAJournal):
            JournalWriter(path)


def test_garbage_in_the_middle_is_reported_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "release.journal"
    _run_to_step(path)
    lines = path.read_text().splitlines()
    lines.insert(2, "not json at all")
    lines.insert(4, "[1, 2]")
    lines.insert(5, '{"kind": "step"}')  # missing fields
    path.write_text("\n".join(lines) + "\n")
    read = read_records(path)
    assert len(read.problems) == 3 and all("unreadable journal line, skipped" in p for p in read.problems)
    assert [p.split(":")[1] for p in read.problems] == ["3", "5", "6"]
    assert not read.torn_tail


def test_missing_journal_reads_as_empty(tmp_path: Path) -> None:
    read = read_records(tmp_path / "none")
    assert read.records == [] and read.problems == []


def test_last_run_picks_the_newest_run_of_this_release() -> None:
    def rec(run: str, candidate: str = "v2", seq: int = 1) -> dict:
        return {"release": "checkout", "baseline": "v1", "candidate": candidate, "run": run, "seq": seq}
    records = [rec("a"), rec("a", seq=2), rec("x", candidate="v3"), rec("b"), rec("b", seq=2), rec("b", seq=3)]
    assert [r["seq"] for r in last_run(records, "checkout", "v1", "v2")] == [1, 2, 3]
    assert [r["run"] for r in last_run(records, "checkout", "v1", "v3")] == ["x"]
    assert last_run(records, "other", "v1", "v2") == []


def test_actions_the_journal_shows_done_are_not_pending_after_resume() -> None:
    spec = make_spec()
    journal = MemoryJournal()
    engine, world = Engine(spec, journal=journal), World.for_spec(spec)
    engine.tick(world.healthy(T0), T0)
    first, *rest = engine.state.pending
    world.apply(first)
    engine.action_done(first, T0)
    resumed = Engine(spec, records=journal.records)
    assert [a.id for a in resumed.state.pending] == [a.id for a in rest]
    assert first.id in resumed.state.done_actions
    assert resumed.action_done(first, T0 + 1) == []  # a late duplicate confirmation is ignored


def test_restart_between_last_action_and_rolled_back_still_finishes() -> None:
    spec = make_spec()
    journal = MemoryJournal()
    engine, world = Engine(spec, journal=journal), World.for_spec(spec)
    tick(engine, world, T0)
    engine.command(Command(CommandKind.ROLLBACK), T0 + 1)
    for action in list(engine.state.pending):
        world.apply(action)
        engine.action_done(action, T0 + 1)
    assert engine.state.phase is Phase.ROLLED_BACK
    # Cut the journal just before `rolled_back`, with every action already confirmed.
    cut = [r for r in journal.records if r["kind"] != "rolled_back"]
    resumed = Engine(spec, records=cut)
    assert resumed.state.phase is Phase.ROLLING_BACK and not resumed.state.pending
    assert kinds(resumed.tick(world.healthy(T0 + 2), T0 + 2)) == ["rolled_back"]
    assert resumed.state.cause[0]["command"] == "rollback"


# --------------------------------------------------------------------------- the hold clock


def test_hold_elapsed_edges() -> None:
    assert RolloutState().hold_elapsed(T0) == 0.0
    running = RolloutState(phase=Phase.PROGRESSING, step_started=T0, hold_elapsed_before_pause=3.0)
    assert running.hold_elapsed(T0 + 2) == 5.0
    assert running.hold_elapsed(T0 - 50) == 3.0  # a clock stepping back never makes it negative
    for phase in (Phase.PAUSED, Phase.ROLLING_BACK, Phase.SUCCEEDED, Phase.ROLLED_BACK, Phase.ABORTED):
        frozen = RolloutState(phase=phase, step_started=T0, hold_elapsed_before_pause=3.0)
        assert frozen.hold_elapsed(T0 + 1000) == 3.0, phase


def test_hold_clock_through_pause_set_weight_and_resume() -> None:
    spec = make_spec()  # hold 10s
    engine, world = Engine(spec), World.for_spec(spec)
    tick(engine, world, T0)
    command(engine, world, CommandKind.PAUSE, T0 + 3)
    command(engine, world, CommandKind.PAUSE, T0 + 5)  # refused; the clock stays frozen
    command(engine, world, CommandKind.SET_WEIGHT, T0 + 7, value=20)
    assert engine.state.hold_elapsed(T0 + 50) == pytest.approx(3)
    assert engine.state.paused_by == "operator"
    command(engine, world, CommandKind.RESUME, T0 + 60)
    assert engine.state.hold_elapsed(T0 + 62) == pytest.approx(5)
    # a new step starts a new clock, even when entered from a pause
    command(engine, world, CommandKind.PAUSE, T0 + 63)
    command(engine, world, CommandKind.PROMOTE, T0 + 64)
    assert engine.state.step == 1 and engine.state.hold_elapsed(T0 + 65) == pytest.approx(1)


def test_hold_clock_stops_where_the_rollout_stopped() -> None:
    spec = make_spec()
    engine, world = Engine(spec), World.for_spec(spec)
    tick(engine, world, T0)
    engine.command(Command(CommandKind.ROLLBACK), T0 + 4)
    assert engine.state.hold_elapsed(T0 + 100) == pytest.approx(4)
    world.settle(engine, T0 + 6)
    assert engine.state.phase is Phase.ROLLED_BACK
    assert engine.state.hold_elapsed(T0 + 100) == pytest.approx(4)


def test_a_restart_while_paused_restarts_the_hold_evidence() -> None:
    """Holds count observed time only: the 6 s seen before the restart were seen by a process
    that is gone; the resumed one observes the whole hold itself, from its first tick."""
    spec = make_spec()
    journal = MemoryJournal()
    engine, world = Engine(spec, journal=journal), World.for_spec(spec)
    tick(engine, world, T0)
    command(engine, world, CommandKind.PAUSE, T0 + 6)
    resumed = Engine(spec, records=journal.records)
    command(resumed, world, CommandKind.RESUME, T0 + 500)
    assert kinds(tick(resumed, world, T0 + 503)) == []
    assert kinds(tick(resumed, world, T0 + 512)) == []
    assert kinds(tick(resumed, world, T0 + 513)) == ["step"]


def test_a_journal_deleted_or_replaced_mid_run_is_written_again_whole(tmp_path) -> None:
    """A clean-up that deletes the journal (or swaps another file in) while the run goes on
    would leave it writing into a file nobody can open: the next start would begin the
    release again. The writer notices before its next line and writes the run again."""
    from strategies.journal import JournalWriter, read_records

    path = tmp_path / "j.releasedeck.journal"
    resumed = [{"at": 1.0, "kind": "started", "run": "r"}, {"at": 2.0, "kind": "step", "run": "r"}]
    said: list[str] = []
    writer = JournalWriter(path, carry=resumed, warn=said.append)
    writer({"at": 3.0, "kind": "gate", "run": "r"})
    path.unlink()
    writer({"at": 4.0, "kind": "step", "run": "r"})
    assert [r["at"] for r in read_records(path, validate=False).records] == [1.0, 2.0, 3.0, 4.0]
    assert len(said) == 1 and "deleted or replaced" in said[0] and "3 records" in said[0]

    path.rename(tmp_path / "moved")  # replaced: another file now has the name
    path.write_text('{"at": 99.0, "kind": "other", "run": "x"}\n')
    writer({"at": 5.0, "kind": "step", "run": "r"})
    writer({"at": 6.0, "kind": "step", "run": "r"})  # no second warning: nothing changed since
    writer.close()
    ats = [r["at"] for r in read_records(path, validate=False).records]
    assert ats == [99.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0] and len(said) == 2
