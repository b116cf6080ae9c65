"""An operator's commands, recorded as the transitions they made, are given again in a replay.

A live release with a manual pause step (`"pause"`: it waits for promote) was promoted by a
person; one that a person rolled back or set a weight on went where they sent it. A replay that
left them out sat paused to the end of the trace ("incomplete", exit 1), or walked on where the
live run had been stopped. The trace keeps every event; the transitions whose actor is a person
(not the engine, a gate, the experiment or reconcile) are commands given again at their moments.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from strategies.spec import load_spec
from strategies.trace import TraceCommand, parse_line, tick_line
from tests.support.traces import Behaviour, trace_lines
from tui.replay import run_replay

T0 = 1_800_000_000.0
HEALTHY = [Behaviour("v1", rps=90, weight=80.0), Behaviour("v2", rps=10, weight=20.0)]


def spec(tmp_path: Path, steps: str):
    text = Path(__file__).with_name("fast_replay.toml").read_text()
    assert "steps = [20, 50, 100]" in text
    path = tmp_path / "release.toml"
    path.write_text(text.replace("steps = [20, 50, 100]", f"steps = {steps}"))
    return load_spec(path)


def transition(at: float, event: str, actor: str = "operator", **fields: Any) -> str:
    """A transition event line as the recorder writes it."""
    return json.dumps({"kind": "event", "ts": "x", "at": T0 + at, "release": "checkout",
                       "event": event, "schema": 2, "actor": actor, "reason": f"{event} by hand",
                       **fields})


def replay(tmp_path: Path, steps: str, *extra: str) -> tuple[int, dict[str, Any]]:
    lines = [*trace_lines(HEALTHY, 120), *(tick_line(T0 + k, "checkout") for k in range(121)),
             *extra]
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    code = run_replay(spec(tmp_path, steps), str(path), summary=True, out=out, err=err)
    return code, json.loads(out.getvalue().splitlines()[-1])


def decisions(summary: dict[str, Any]) -> list[tuple]:
    return [(d["t"], d["event"], d["actor"]) for d in summary["decisions"]
            if d["event"] != "scaled_down"]


def test_a_manual_pause_waits_for_the_recorded_promote(tmp_path: Path):
    steps = '[20, "pause", 100]'
    code, summary = replay(tmp_path, steps)
    assert (code, summary["outcome"], summary["phase"]) == (1, "incomplete", "paused")
    code, summary = replay(tmp_path, steps, transition(40.5, "step", step=3, weight=100))
    assert (code, summary["outcome"]) == (0, "promoted")
    assert summary["trace"]["commands"] == 1
    assert decisions(summary)[1:3] == [(20.0, "step", "engine"), (40.5, "step", "operator")]
    assert [d["reason"] for d in summary["decisions"] if d["actor"] == "operator"] == \
        ["step by hand"]


def test_a_recorded_rollback_and_weight_go_where_the_operator_sent_them(tmp_path: Path):
    steps = "[20, 50, 100]"
    code, summary = replay(tmp_path, steps, transition(30.25, "weight_set", weight=35,
                                                       actor="alice"),
                           transition(33.5, "rolling_back"))
    assert (code, summary["outcome"], summary["decided_by"]) == (1, "rolled_back", "operator")
    assert ("weight_set", 35, "alice") in [(d["event"], d["weight"], d["actor"])
                                           for d in summary["decisions"]]
    assert (33.5, "rolling_back", "operator") in decisions(summary)


def test_transitions_of_the_engine_gates_and_experiment_are_not_commands():
    for actor in ("engine", "gate:errors", "experiment", "reconcile"):
        assert parse_line(transition(1.0, "paused", actor=actor)) is None
    assert parse_line(transition(1.0, "rolled_back")) is None  # the end of one, not a command
    assert parse_line(transition(1.0, "weight_set", weight="35")) is None
    assert parse_line(transition(1.0, "resumed")) == TraceCommand(
        T0 + 1.0, "resume", None, "operator", "checkout", "resumed by hand")
