"""A fault from the first step, recorded live, replays to the live decision on the same tick.

traces/fault_from_first_step.jsonl is a real recording (`releasedeck demo --headless --spec
traces/held_first_step.toml --fault-at 0 --record ...`): the candidate failed from its first
scrape. Its own event lines say what the live run decided and when; the replay must say the
same. Replay used to count the candidate's first counted interval, which the live scrape source
only uses to anchor its tally: it failed the gates one tick early and rolled back 2 s (two
ticks) before the live run did.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from strategies.spec import load_spec
from tui.replay import run_replay

HERE = Path(__file__).with_name("traces")
TRACE = HERE / "fault_from_first_step.jsonl"
SPEC = load_spec(HERE / "held_first_step.toml")


def _live_events() -> list[dict]:
    lines = [json.loads(line) for line in TRACE.read_text().splitlines()]
    return [line for line in lines if line.get("kind") == "event"]


def test_replay_rolls_back_on_the_live_tick_with_the_gates_live_saw_failing():
    out, err = io.StringIO(), io.StringIO()
    code = run_replay(SPEC, str(TRACE), summary=True, out=out, err=err)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    summary, replayed = events[-1], events[:-1]
    live = _live_events()
    assert code == 1 and summary["outcome"] == "rolled_back", err.getvalue()

    def decisions(evs: list[dict]) -> list[tuple[str, str]]:
        return [(e["ts"], e["event"]) for e in evs
                if e["event"] in ("started", "rolling_back")]

    assert decisions(replayed) == decisions(live)

    def failed(evs: list[dict]) -> list[tuple[str, str]]:
        return sorted((e["ts"], e["gate"]) for e in evs
                      if e["event"] == "gate" and e["evidence"][0]["status"] == "fail")

    assert failed(replayed) == failed(live)
