"""`releasedeck demo --spec` assembles its run as `watch` does (tui.session): the spec's
[[alert]]s reach a real receiver, its [[webhook]] gates hold the demo's rollout, and --record
is refused with watch's one line when it cannot be written.

Each test runs the CLI as a subprocess over the real local stack (service processes, the
built-in router, load) and a real HTTP receiver on 127.0.0.1.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.demo.test_demo_headless import FAST, demo, fault_spec, names
from tui import exitcodes


def spec_with(tmp_path: Path, extra: str, *, base: str = FAST) -> str:
    path = tmp_path / "release.toml"
    path.write_text(Path(base).read_text() + "\n" + extra)
    return str(path)


def test_demo_spec_alerts_reach_a_real_receiver(tmp_path, receiver) -> None:
    spec = spec_with(tmp_path, f'[[alert]]\nkind = "webhook"\nurl = "{receiver.url}"\n'
                               'min_severity = "critical"\n', base=fault_spec(tmp_path))
    code, events, err = demo("--spec", spec, "--fault-at", "4", "--timeout", "90")
    assert code == exitcodes.ROLLED_BACK, err
    seen = names(events)
    assert seen.index("fault_injected") < seen.index("rolling_back") < seen.index("rolled_back")
    bodies = receiver.bodies()
    firing = [b for b in bodies if b["status"] == "firing"]
    assert firing and firing[0]["alertname"] == "ReleaseRolledBack", bodies
    assert firing[0]["service"] == "checkout"
    delivered = [e for e in events if e["event"] == "alert"]
    assert len(delivered) == len(bodies)  # each delivery reported once on the event stream
    assert "alerts 1 delivered, 0 undelivered" in err or f"alerts {len(bodies)} delivered" in err


def test_demo_spec_webhook_gate_holds_the_rollout(tmp_path, receiver) -> None:
    receiver.status = 503
    spec = spec_with(tmp_path, f'[[webhook]]\nname = "qa-ok"\ntype = "rollout"\n'
                               f'url = "{receiver.url}"\ntimeout = "1s"\n')
    code, events, err = demo("--spec", spec, "--timeout", "8")
    assert code == exitcodes.ROLLED_BACK, err  # timed out before promotion: held at step 1
    seen = names(events)
    assert "started" in seen and "step" not in seen and "promoted" not in seen
    [hook] = [e for e in events if e["event"] == "webhook"]  # one event per change of answer
    assert (hook["webhook"], hook["ok"], hook["detail"]) == ("qa-ok", False, "HTTP 503")
    calls = receiver.bodies()
    assert len(calls) >= 2 and {c["phase"] for c in calls} == {"rollout"}
    assert all(c["step"] == 0 and c["weight"] == 20 for c in calls)
    assert "holding: webhook qa-ok: HTTP 503" in err


def test_demo_record_that_cannot_be_written_is_one_line_and_exit_2(tmp_path) -> None:
    code, events, err = demo("--spec", FAST, "--record", str(tmp_path), "--timeout", "5")
    assert code == exitcodes.USAGE and events == []
    [line] = err.strip().splitlines()
    assert line.startswith(f"releasedeck: --record {tmp_path}: cannot write (")


def test_demo_record_writes_the_trace_watch_writes(tmp_path) -> None:
    trace = tmp_path / "demo.trace"
    code, _events, err = demo("--spec", FAST, "--record", str(trace), "--timeout", "90")
    assert code == exitcodes.PROMOTED, err
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    kinds = {line.get("kind", "counters") for line in lines}  # a counters line has no kind
    assert kinds == {"tick", "counters", "event"}
    counters = [line for line in lines if "kind" not in line]
    assert {line["version"] for line in counters} == {"v1", "v2"}
    assert all(line["service"] == "checkout" for line in counters)
    assert any(line.get("event") == "promoted" for line in lines)
