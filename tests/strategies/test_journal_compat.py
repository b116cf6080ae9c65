"""Journals written before decision and action kinds became enums still read, write and resume.

The fixture was written by the engine as it was at commit d8e5d96 (kinds as bare strings): three
runs of one release (promoted fully, aborted, then a run that paused, had its weight set, went
stale, failed an action, rolled back, scaled down and was retried), 52 records, every kind of
decision there was. The `.expected.json` beside it is the RolloutState that old engine held at
the end of the last run.
"""

from __future__ import annotations

import json
from pathlib import Path

from strategies.engine import Engine
from strategies.journal import RunId, decision_to_record, last_run, read_records, record_to_decision
from strategies.model import ActionKind, DecisionKind, Phase
from tests.strategies.brain_kit import World, make_spec

FIXTURES = Path(__file__).parent / "fixtures"
JOURNAL = FIXTURES / "journal_before_kind_enums.jsonl"
EXPECTED = json.loads((FIXTURES / "journal_before_kind_enums.expected.json").read_text())
OLD_KINDS = {"started", "step", "paused", "resumed", "weight_set", "promoting", "promoted",
             "rolling_back", "rolled_back", "aborted", "scaled_down", "retried", "gate",
             "action_done", "action_failed", "refused", "stale", "fresh"}


def test_every_old_kind_is_in_the_fixture_and_reads_as_an_enum() -> None:
    read = read_records(JOURNAL)
    assert read.problems == []
    assert len(read.records) == 52
    assert {r["kind"] for r in read.records} == OLD_KINDS
    decisions = [record_to_decision(r) for r in read.records]
    assert all(isinstance(d.kind, DecisionKind) for d in decisions)
    actions = [a for d in decisions for a in d.actions]
    assert {a.kind for a in actions} == {ActionKind.SCALE, ActionKind.SET_WEIGHT}


def test_records_written_again_are_byte_for_byte_the_old_lines() -> None:
    lines = [line for line in JOURNAL.read_text(encoding="utf-8").splitlines() if line]
    for line in lines:
        record = json.loads(line)
        run = RunId(record["release"], record["baseline"], record["candidate"], record["run"])
        again = decision_to_record(record_to_decision(record), record["seq"], run)
        assert json.dumps(again, separators=(",", ":")) == line


def test_the_old_journal_resumes_where_the_old_engine_was() -> None:
    spec = make_spec()
    records = last_run(read_records(JOURNAL).records, "checkout", "v1", "v2")
    assert {r["run"] for r in records} == {"oldrun"}
    engine = Engine(spec, records=records)
    state = engine.state
    assert engine.resumed and engine.run.run == "oldrun"
    assert state.phase is Phase(EXPECTED["phase"]) is Phase.PROGRESSING
    assert (state.step, state.weight, state.seq) == (EXPECTED["step"], EXPECTED["weight"],
                                                     EXPECTED["seq"])
    assert sorted(state.done_actions) == EXPECTED["done_actions"]
    assert [a.to_dict() for a in state.pending] == EXPECTED["pending"]
    assert state.reason == EXPECTED["reason"]
    assert [dict(c) for c in state.cause] == EXPECTED["cause"]


def test_a_resumed_old_journal_applies_only_what_was_pending() -> None:
    spec = make_spec()
    records = last_run(read_records(JOURNAL).records, "checkout", "v1", "v2")
    written: list[dict] = []
    engine = Engine(spec, records=records, journal=written.append)
    world = World.for_spec(spec)
    pending = list(engine.state.pending)
    assert len(pending) == 1
    world.settle(engine, records[-1]["at"] + 1)
    assert world.applied == pending  # the one pending action, none of the done ones again
    assert [r["kind"] for r in written] == ["action_done"]
    assert written[0]["seq"] == EXPECTED["seq"] + 1 and written[0]["run"] == "oldrun"
