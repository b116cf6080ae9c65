"""History and delivery figures from journals written by the real engine, checked by hand."""

from __future__ import annotations

import io
import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.engine import Engine
from strategies.history import Outcome, delivery_figures, summarise
from strategies.journal import JournalWriter, read_records
from strategies.model import CommandKind, rfc3339
from tests.strategies.brain_kit import T0, World, command, make_spec, run_until, tick
from tui.cli import build_parser
from tui.history import history_command

DAY = 86_400.0


def _healthy_run(journal, start: float) -> float:
    """A canary that is paused by hand for 30 s at its first step, then promoted."""
    spec = make_spec()
    engine, world = Engine(spec, journal=journal, run=f"ok-{start:.0f}"), World.for_spec(spec)
    tick(engine, world, start)
    command(engine, world, CommandKind.PAUSE, start + 2)
    command(engine, world, CommandKind.RESUME, start + 32)
    end, _ = run_until(engine, world, start + 33)
    return end


def _faulty_run(journal, start: float) -> tuple[float, float]:
    """A canary whose candidate fails the error gate from its fifth second: rolled back."""
    spec = make_spec()
    engine, world = Engine(spec, journal=journal, run=f"bad-{start:.0f}"), World.for_spec(spec)
    for second in range(5):
        tick(engine, world, start + second)
    end, decisions = run_until(engine, world, start + 5, until=("rolled_back",), error_ratio=0.5)
    first_fail = min(d.at for d in decisions if d.kind == "gate"
                     and any(e.get("status") == "fail" for e in d.evidence))
    return first_fail, end


def test_attempts_outcomes_and_figures_match_hand_computed_values(tmp_path: Path) -> None:
    path = tmp_path / ".release.releasedeck.journal"
    writer = JournalWriter(path)
    promoted_at = _healthy_run(writer, T0)
    failed_at, restored_at = _faulty_run(writer, T0 + DAY)
    writer.close()

    runs = summarise(read_records(path).records, strategy="canary")
    assert [r.outcome for r in runs] == [Outcome.PROMOTED, Outcome.ROLLED_BACK]
    healthy, faulty = runs
    assert healthy.started == T0 and healthy.ended == promoted_at
    assert [(c.kind, c.at) for c in healthy.commands] == [("paused", T0 + 2), ("resumed", T0 + 32)]
    assert healthy.waiting_seconds == 30.0
    # every other second up to the promotion was spent progressing through analysed steps
    assert healthy.analysis_seconds + healthy.waiting_seconds <= promoted_at - T0
    assert faulty.deciding is not None and faulty.deciding["gate"] == "errors"
    assert faulty.fault_detected == failed_at and faulty.restored == restored_at
    assert faulty.time_to_restore == restored_at - failed_at

    figures = delivery_figures(runs, commit_times={"v2": T0 - 3600})
    assert (figures.attempts, figures.promoted, figures.failed) == (2, 1, 1)
    assert figures.change_failure_rate == 0.5
    assert figures.time_to_restore_median == restored_at - failed_at
    assert figures.lead_time_median == promoted_at - (T0 - 3600)
    span_days = (restored_at - T0) / DAY
    assert figures.deployments_per_day == 1 / span_days
    assert [(p, f) for _, p, f in figures.per_day] == [(1, 0), (0, 1)]


def test_retry_opens_a_second_attempt_in_the_same_run(tmp_path: Path) -> None:
    spec = make_spec()
    journal = JournalWriter(tmp_path / "j.journal")
    engine, world = Engine(spec, journal=journal, run="r1"), World.for_spec(spec)
    tick(engine, world, T0)
    command(engine, world, CommandKind.ABORT, T0 + 3)
    command(engine, world, CommandKind.RETRY, T0 + 10)
    run_until(engine, world, T0 + 11)
    journal.close()
    runs = summarise(read_records(tmp_path / "j.journal").records)
    assert [(r.attempt, r.outcome) for r in runs] == [(1, Outcome.ABORTED), (2, Outcome.PROMOTED)]
    assert runs[0].decided_by == "operator" and runs[1].started == T0 + 10


def test_unfinished_attempt_is_counted_but_not_as_a_deployment(tmp_path: Path) -> None:
    spec = make_spec()
    journal = JournalWriter(tmp_path / "j.journal")
    engine, world = Engine(spec, journal=journal, run="r1"), World.for_spec(spec)
    for second in range(4):
        tick(engine, world, T0 + second)
    journal.close()
    runs = summarise(read_records(tmp_path / "j.journal").records)
    assert [r.outcome for r in runs] == [Outcome.UNFINISHED]
    figures = delivery_figures(runs)
    assert (figures.attempts, figures.finished, figures.change_failure_rate) == (1, 0, None)


def _cli(tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    args = build_parser().parse_args(["history", str(tmp_path), *extra])
    code = history_command(args, out, err, now=T0 + 10 * DAY)
    return code, out.getvalue(), err.getvalue()


def test_cli_reads_a_folder_of_specs_and_journals_in_every_form(tmp_path: Path) -> None:
    spec_text = (Path(__file__).parents[2] / "examples" / "canary.toml").read_text()
    (tmp_path / "checkout.toml").write_text(spec_text)
    writer = JournalWriter(tmp_path / ".checkout.releasedeck.journal")
    _healthy_run(writer, T0)
    _faulty_run(writer, T0 + DAY)
    writer.close()

    code, out, err = _cli(tmp_path)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["started", "(UTC)", "release"]
    assert "promoted" in lines[1] and "canary" in lines[1] and "paused, resumed" in lines[1]
    assert "rolled back" in lines[2] and "errors 0.5 vs 0.05" in lines[2]
    assert "change failure rate 50%" in out

    code, out, _ = _cli(tmp_path, "--json", "--commit-time", f"v2={rfc3339(T0 - 60)}")
    body = json.loads(out)
    assert [r["outcome"] for r in body["runs"]] == ["promoted", "rolled_back"]
    assert body["runs"][1]["deciding_gate"]["gate"] == "errors"
    assert body["figures"]["change_failure_rate"] == 0.5
    assert body["figures"]["lead_time_median_seconds"] > 60

    code, out, _ = _cli(tmp_path, "--csv")
    rows = out.splitlines()
    assert len(rows) == 3 and rows[0].startswith("started,ended,release")

    code, out, _ = _cli(tmp_path, "--since", rfc3339(T0 + DAY / 2))
    assert "1 attempt, 0 promoted, 1 rolled back" in out

    code, out, _ = _cli(tmp_path, "--plot")
    chart = out[out.index("releases per day"):].splitlines()
    assert chart[1].split()[0] == rfc3339(T0)[:10] and "1 ✓   0 ✗" in chart[1]
    assert "0 ✓   1 ✗  100% failed" in chart[2]


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    code, _, err = _cli(tmp_path, "--since", "yesterday-ish")
    assert code == 2 and err.count("\n") == 1 and "neither an RFC 3339 time" in err
    code, _, err = _cli(tmp_path)
    assert code == 2 and "no journals found" in err
    (tmp_path / ".x.releasedeck.journal").write_bytes(b"\xff\xfe{not json\n")
    code, _, err = _cli(tmp_path)
    assert code == 0 and "cut short" in err


def test_a_file_that_is_not_a_journal_says_so_instead_of_zero_attempts(tmp_path: Path) -> None:
    """`--headless` events saved from a pipeline, or a journal of a newer format, are read
    by people who expect history: they get a line saying what the file is, not a silent "0"."""
    events = tmp_path / "ci-events.jsonl"
    events.write_text('{"ts":"2026-11-01T10:00:00Z","release":"x","event":"started"}\n'
                      '{"ts":"2026-11-01T10:05:00Z","release":"x","event":"promoted"}\n')
    code, out, err = _cli(events)
    assert code == 0 and "0 attempts" in out
    assert err.count("\n") == 1 and "2 of 2 readable lines are not journal records" in err
    assert "look like releasedeck events" in err

    newer = tmp_path / ".y.releasedeck.journal"
    writer = JournalWriter(newer)
    _healthy_run(writer, T0)
    writer.close()
    newer.write_text(newer.read_text().replace('"journal":1,', '"journal":7,'))
    code, out, err = _cli(newer)
    assert code == 0 and "1 promoted" in out  # read as far as understood
    assert err.count("\n") == 1 and "journal format 7 by a newer releasedeck" in err

    writer = JournalWriter(tmp_path / ".z.releasedeck.journal")
    _healthy_run(writer, T0)
    writer.close()
    code, _, err = _cli(tmp_path / ".z.releasedeck.journal")
    assert code == 0 and err == ""  # our own journal: nothing to say


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=10)
journal_keys = st.sampled_from(["at", "kind", "run", "release", "phase", "step", "actor",
                                "evidence", "refused", "reason"])
field_values = st.one_of(json_values, st.sampled_from(
    ["started", "retried", "rolling_back", "rolled_back", "promoted", "aborted", "gate", "paused",
     "operator", "progressing"]), st.floats(min_value=0, max_value=2e9))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.dictionaries(journal_keys, field_values, max_size=10), max_size=30))
def test_any_damaged_journal_summarises_without_raising(records) -> None:
    runs = summarise(records)
    figures = delivery_figures(runs)
    assert figures.attempts == len(runs)
    assert all(r.outcome in Outcome for r in runs)


def test_a_journal_read_alone_names_its_strategy_and_counts_a_promotion_at_the_last_step() -> None:
    """Without its spec, the start's plan print says the strategy; a promotion is journaled one
    past the last step and is shown at the last one ("4/4"), as every screen does."""
    from strategies.history import summarise

    base = {"release": "checkout", "baseline": "v1", "candidate": "v2", "run": "r1"}
    plan = {"plan": "ab12", "strategy": "canary", "steps": ["10%", "25%", "50%", "100%"]}
    records = [{**base, "kind": "started", "at": 1.0, "step": 0, "phase": "progressing",
                "evidence": [plan]}]
    records += [{**base, "kind": "step", "at": 2.0 + i, "step": i, "phase": "progressing"}
                for i in (1, 2, 3)]
    records += [{**base, "kind": "promoting", "at": 9.0, "step": 4, "phase": "promoting"},
                {**base, "kind": "promoted", "at": 10.0, "step": 4, "phase": "succeeded"}]
    [run] = summarise(records)
    assert (run.strategy, run.steps_reached) == ("canary", 3)
    [given] = summarise(records, strategy="blue-green")  # the spec beside it still wins
    assert given.strategy == "blue-green"
