"""Does a replay decide what the recorded live run decided? The comparison tests and the
measurement share.

A trace recorded with --record holds the live run's own events (its "kind": "event" lines);
a replay prints its events as JSON lines. Both are reduced to what a release decided, in order:
transitions (started, step, paused, rolling_back, rolled_back, promoted, scaled_down ...), each
gate's status changes, staleness, and the levers pulled (kind, value, version), with the
evidence that decided a transition (each gate's status, test, estimate and bounds).

    python -m tests.replay.fidelity SPEC TRACE [LIVE] # replay TRACE with SPEC, compare with the
                                                      # events of LIVE (default: TRACE's own)
    python -m tests.replay.fidelity --demo N SPEC [--fault-at S] [--with-prometheus]
                                                      # N recorded demo runs, each compared

prints one line per difference (none: "same"), then the largest time difference between a live
event and its replayed twin, in milliseconds.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strategies.model import parse_rfc3339
from strategies.spec import load_spec
from tui.replay import run_replay

DECISIONS = frozenset({"started", "step", "adopted", "paused", "resumed", "weight_set",
                       "promoting", "promoted", "rolling_back", "rolled_back", "aborted",
                       "scaled_down", "retried"})
OTHERS = frozenset({"gate", "stale", "fresh", "action_done", "action_failed"})
EVIDENCE = ("gate", "status", "test", "estimate", "low", "high", "bound", "toward_fail",
            "toward_pass", "samples")


TO_THE_MS = 1.0
"""A replayed event prints its time to the millisecond (cut, not rounded): its twin's exact
live time is the same moment when they differ by less than this."""


def _rounded(value: Any) -> Any:
    return round(value, 9) if isinstance(value, float) else value


def _evidence(event: Mapping[str, Any]) -> tuple:
    return tuple(tuple(_rounded(item.get(key)) for key in EVIDENCE)
                 for item in event.get("evidence") or () if isinstance(item, dict) and "gate" in item)


def key(event: Mapping[str, Any]) -> tuple:
    """What must be the same for an event and its replayed twin."""
    name = event["event"]
    if name in DECISIONS:
        return (name, event.get("step"), event.get("weight"), event.get("actor"),
                _evidence(event))
    if name == "gate":
        shown = (event.get("evidence") or [{}])[0]
        return (name, shown.get("gate"), shown.get("status"))
    if name in ("action_done", "action_failed"):
        action = (event.get("evidence") or [{}])[0]
        return (name, action.get("kind"), action.get("value"), action.get("version"))
    return (name,)


def decided(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [e for e in events if e.get("event") in DECISIONS | OTHERS]


def at(event: Mapping[str, Any]) -> float:
    exact = event.get("at")
    return float(exact) if isinstance(exact, int | float) else parse_rfc3339(event["ts"])


@dataclass
class Comparison:
    live: list[Mapping[str, Any]]
    replay: list[Mapping[str, Any]]
    differences: list[str]
    max_ms: float  # largest |live - replay| time of twin events

    @property
    def same(self) -> bool:
        return not self.differences


def compare(live: Sequence[Mapping[str, Any]], replay: Sequence[Mapping[str, Any]]) -> Comparison:
    """Event by event, in order; the first difference of each kind is named with its index."""
    mine, theirs = decided(live), decided(replay)
    differences = []
    for index, (a, b) in enumerate(zip(mine, theirs, strict=False)):
        if key(a) != key(b):
            differences.append(f"#{index}: live {key(a)} vs replay {key(b)}")
            break
    if len(mine) != len(theirs):
        differences.append(f"live {len(mine)} events, replay {len(theirs)}: "
                           f"live ends {[key(e) for e in mine[len(theirs):]][:3]}, "
                           f"replay ends {[key(e) for e in theirs[len(mine):]][:3]}")
    deltas = [(abs(at(a) - at(b)) * 1000, index) for index, (a, b)
              in enumerate(zip(mine, theirs, strict=False)) if key(a) == key(b)]
    late = [(ms, index) for ms, index in deltas if ms >= TO_THE_MS]
    if late:
        ms, index = late[0]
        differences.append(f"#{index} {key(mine[index])[:2]}: replayed {ms:.1f} ms from live")
    return Comparison(mine, theirs, differences, max((ms for ms, _ in deltas), default=0.0))


def trace_events(trace: Path) -> list[dict[str, Any]]:
    """The live run's events, as its trace recorded them."""
    out = []
    for text in trace.read_text(encoding="utf-8").splitlines():
        line = json.loads(text)
        if line.get("kind") == "event":
            out.append(line)
    return out


def replayed(spec_path: Path, trace: Path) -> tuple[int, list[dict[str, Any]], dict[str, Any], str]:
    """(exit code, events, summary, stderr) of `releasedeck replay --summary`."""
    out, err = io.StringIO(), io.StringIO()
    code = run_replay(load_spec(spec_path), str(trace), summary=True, out=out, err=err)
    lines = [json.loads(text) for text in out.getvalue().splitlines()]
    summary = lines.pop() if lines and "outcome" in lines[-1] else {}
    return code, lines, summary, err.getvalue()


ROOT = Path(__file__).resolve().parents[2]


def record_demo(spec_path: Path, trace: Path, *extra: str, timeout: float = 300
                ) -> tuple[int, str]:
    """`releasedeck demo --headless --spec SPEC --record TRACE ...` (exit code, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "tui.cli", "demo", "--headless", "--spec",
                           str(spec_path), "--record", str(trace), *extra], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=timeout, check=False)
    return proc.returncode, proc.stderr


def _demo_runs(argv: Sequence[str]) -> int:
    runs, spec_path, extra = int(argv[1]), Path(argv[2]), list(argv[3:])
    same = 0
    with tempfile.TemporaryDirectory() as folder:
        for run in range(runs):
            trace = Path(folder) / f"run-{run}.jsonl"
            live_code, _ = record_demo(spec_path, trace, "--timeout", "240", *extra)
            print(f"run {run}: live exit {live_code}; ", end="")
            same += main([str(spec_path), str(trace)], live_code) == 0
    print(f"{same} of {runs} runs replayed to the same decisions")
    return 0 if same == runs else 1


def main(argv: Sequence[str], live_code: int | None = None) -> int:
    if argv and argv[0] == "--demo":
        return _demo_runs(argv)
    spec_path, trace = Path(argv[0]), Path(argv[1])
    code, events, summary, err = replayed(spec_path, trace)
    result = compare(trace_events(Path(argv[2]) if len(argv) > 2 else trace), events)
    if live_code is not None and live_code != code:
        result.differences.append(f"exit code: live {live_code}, replay {code}")
    print(f"replay exit {code}, outcome {summary.get('outcome')}, "
          f"{len(result.live)} live / {len(result.replay)} replayed events, "
          f"levers timed {summary.get('trace', {}).get('levers_timed')}")
    for line in result.differences or ["same"]:
        print(line)
    print(f"largest time difference of twin events: {result.max_ms:.3f} ms")
    if err.strip():
        print(err.strip().splitlines()[-1])
    return 0 if result.same else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
