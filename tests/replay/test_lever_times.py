"""A lever takes the time it took live, and fails where it failed live.

A live driver stamps a lever's outcome when the lever answered (the router, the platform), and
the engine counts from there: a rollback ends when its set-weight answered, and the scale-down
delay counts from that end. A replay whose levers answered at once ended rollbacks a few
milliseconds early, so with ticks a delay apart its `scaled_down` came a tick before live's
(12 of 31 recorded demo runs). The trace keeps the live outcomes (`action_done` /
`action_failed` event lines, with their exact `at`), and the replay's levers take them.

Synthetic traces (tests.support.traces) with one tick line a second: the replay's own decision
times are known, so each case adds the lever outcome the live run would have recorded.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from strategies.spec import load_spec
from strategies.trace import tick_line
from tests.support.traces import Behaviour, trace_lines
from tui.replay import run_replay

SPEC = load_spec(Path(__file__).with_name("fast_replay.toml"))  # scale_down_delay = "1s"
T0 = 1_800_000_000.0
FAULTY = [Behaviour("v1", rps=90, weight=80.0),
          Behaviour("v2", rps=10, weight=20.0, fault_at=25, fault_error_ratio=0.5)]
ROLLBACK = 27.0  # when this trace's replay decides to roll back (test_replay's figure)


def lever(at: float, kind: str, value: int, version: str = "", *, failed: str = "") -> str:
    """An action_done (or action_failed) event line as the recorder writes it."""
    action = {"action": "a", "id": "a", "kind": kind, "value": value, "version": version}
    return json.dumps({"kind": "event", "ts": "x", "at": T0 + at, "release": "checkout",
                       "event": "action_failed" if failed else "action_done", "schema": 2,
                       "reason": failed or "done", "evidence": [action]})


def replay(tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any], list[dict], str]:
    lines = [*trace_lines(FAULTY, 60), *(tick_line(T0 + k, "checkout") for k in range(61)),
             *extra]
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    code = run_replay(SPEC, str(path), summary=True, out=out, err=err)
    *events, summary = (json.loads(line) for line in out.getvalue().splitlines())
    return code, summary, events, err.getvalue()


def times(summary: dict[str, Any]) -> dict[str, float]:
    return {d["event"]: d["t"] for d in summary["decisions"]}


def test_without_recorded_levers_they_answer_at_once(tmp_path: Path):
    code, summary, _, err = replay(tmp_path)
    assert code == 1, err
    assert {k: v for k, v in times(summary).items() if k not in ("started", "step")} == {
        "rolling_back": ROLLBACK, "rolled_back": ROLLBACK, "scaled_down": ROLLBACK + 1}
    assert summary["trace"]["levers_timed"] == 0


def test_a_rollback_ends_when_its_lever_answered_live_and_the_delay_counts_from_there(
        tmp_path: Path):
    """Live the router answered 50 ms after the decision: the rollback ended then, and on
    the next tick (1 s after the decision) the 1 s delay was not yet over."""
    code, summary, events, err = replay(tmp_path, lever(ROLLBACK + 0.05, "set_weight", 0))
    assert code == 1, err
    assert times(summary)["rolling_back"] == ROLLBACK
    assert times(summary)["rolled_back"] == ROLLBACK + 0.05
    assert times(summary)["scaled_down"] == ROLLBACK + 2
    assert summary["trace"]["levers_timed"] == 1
    done = [e for e in events if e["event"] == "action_done"
            and e["evidence"][0]["kind"] == "set_weight" and e["evidence"][0]["value"] == 0]
    assert [e["ts"] for e in done] == ["2027-01-15T08:00:27.050Z"]


def test_a_lever_that_failed_live_fails_in_the_replay_and_is_retried(tmp_path: Path):
    """The router refused the set-weight live: the replay's fails at the same moment with
    the live reason, and the driver retries it on the next tick (which the live run did not
    record an outcome for: it answers at once)."""
    refused = "set candidate weight to 0% failed: ConnectError: connection refused"
    code, summary, events, err = replay(
        tmp_path, lever(ROLLBACK + 0.02, "set_weight", 0, failed=refused))
    assert code == 1, err
    failed = [e for e in events if e["event"] == "action_failed"]
    assert [(e["ts"], e["reason"]) for e in failed] == [
        ("2027-01-15T08:00:27.020Z", "set candidate weight to 0% failed: FailedLive: "
                                     "ConnectError: connection refused")]
    assert times(summary)["rolled_back"] == ROLLBACK + 1
    assert times(summary)["scaled_down"] == ROLLBACK + 2


def test_a_lever_recorded_on_another_tick_or_of_another_kind_is_not_taken(tmp_path: Path):
    """Only the outcomes recorded between this tick's decision and the next tick are this
    tick's: a live run that pulled its levers elsewhere lends the replay no time."""
    code, summary, _, err = replay(tmp_path, lever(ROLLBACK + 1.05, "set_weight", 0),
                                   lever(ROLLBACK + 0.05, "set_weight", 20),
                                   lever(ROLLBACK - 0.5, "set_weight", 0))
    assert code == 1, err
    assert times(summary)["rolled_back"] == ROLLBACK
    assert summary["trace"]["levers_timed"] == 0


def test_lever_lines_that_are_not_whole_are_other_lines_not_bad_ones(tmp_path: Path):
    """Events are for people: one whose action is missing or odd is skipped, never a bad
    line, and never a lever."""
    odd = [json.dumps({"kind": "event", "event": "action_done", "ts": "2027-01-15T08:00:27Z"}),
           json.dumps({"kind": "event", "event": "action_done", "at": T0 + 27.01,
                       "evidence": [{"kind": "set_weight", "value": "0"}]}),
           json.dumps({"kind": "event", "event": "action_done", "ts": "yesterday",
                       "evidence": [{"kind": "set_weight", "value": 0}]})]
    code, summary, _, err = replay(tmp_path, *odd)
    assert code == 1 and "bad trace line" not in err, err
    assert times(summary)["rolled_back"] == ROLLBACK
    assert summary["trace"]["other_lines"] == 3
