"""Headless runs of the real engine and driver with small in-test adapters.

Outcomes are asserted through exit codes, the JSON event lines, the summary line, what the
receivers and a real Alertmanager got, and what the platform was asked to do.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import threading
from typing import Any

import pytest

from strategies.journal import read_records
from tests.headless.conftest import am_alerts
from tests.headless.support import Platform, Source, make_spec, names, run
from tui import exitcodes
from tui.headless import run_headless
from tui.session import RunOptions, assemble
from tui.watch import watch_command
from tui.wiring import Adapters

# A failing candidate must be rolled back at its first step. With the base spec's 60 ms holds a
# loaded machine's slow ticks could walk all steps before the gate has gathered its evidence
# (promoted, a flake); a hold longer than any run leaves the gate to decide.
HOLD_UNTIL_THE_GATE_DECIDES = {"hold": "1h"}


def test_healthy_release_promotes_and_exits_0(tmp_path, receiver):
    spec = make_spec(alert=[{"kind": "webhook", "url": receiver.url, "min_severity": "info"}])
    platform = Platform()
    code, events, err, _wired = run(spec, platform, Source(), tmp_path)
    assert code == exitcodes.PROMOTED
    seen = names(events)
    assert seen.index("started") < seen.index("promoting") < seen.index("promoted")
    assert "rolling_back" not in seen
    assert all({"ts", "release", "event"} <= e.keys() and e["release"] == "checkout"
               for e in events)
    assert [c for c in platform.calls if c[0] == "set_weights"][-1][1] == {"v1": 0, "v2": 100}
    [summary] = err.strip().splitlines()
    assert "promoted" in summary and "at step 3/3" in summary and "0 undelivered" in summary
    promoted = [b for b in receiver.bodies() if b["alertname"] == "ReleasePromoted"]
    assert len(promoted) == 1 and promoted[0]["severity"] == "info"
    assert any(e["event"] == "alert" and e["alertname"] == "ReleasePromoted" for e in events)
    records = read_records(tmp_path / "journal").records
    kinds = [r["kind"] for r in records]
    assert "promoted" in kinds and kinds[-1] == "action_done"  # v1 scaled to 0 afterwards


@pytest.mark.alertmanager
def test_fault_rolls_back_exits_1_and_alertmanager_shows_the_critical_alert(
        tmp_path, alertmanager, receiver):
    spec = make_spec(alert=[{"kind": "alertmanager", "url": alertmanager,
                             "min_severity": "critical"},
                            {"kind": "slack", "url": receiver.url}],
                     strategy=HOLD_UNTIL_THE_GATE_DECIDES)
    platform = Platform()
    code, events, err, _ = run(spec, platform, Source(bad=True), tmp_path)
    assert code == exitcodes.ROLLED_BACK
    seen = names(events)
    assert "rolling_back" in seen and "rolled_back" in seen and "promoting" not in seen
    rolled = next(e for e in events if e["event"] == "rolling_back")
    assert (rolled["gate"], rolled["value"], rolled["threshold"]) == ("errors", 0.5, 0.05)
    assert "gate errors: value 0.5 vs threshold 0.05" in err
    critical = am_alerts(alertmanager, filter='severity="critical"')
    by_name = {a["labels"]["alertname"]: a for a in critical}
    assert "ReleaseRolledBack" in by_name
    labels = by_name["ReleaseRolledBack"]["labels"]
    assert (labels["service"], labels["version"]) == ("checkout", "v2")
    assert by_name["ReleaseRolledBack"]["annotations"]["gate"] == "errors"
    # the gate alert fired and was resolved once the candidate was out: not active any more
    assert "ReleaseGateFailing" not in by_name
    texts = [b["text"] for b in receiver.bodies()]
    assert any("ReleaseRolledBack" in t and "threshold 0.05" in t for t in texts)
    # the candidate got traffic first, and it ended with none
    assert [c for c in platform.calls if c[0] == "set_weights"][-1][1] == {"v1": 100, "v2": 0}


def test_stdout_sink_lines_keep_the_event_schema_in_headless_output(tmp_path):
    spec = make_spec(alert=[{"kind": "stdout", "min_severity": "info"}],
                     strategy=HOLD_UNTIL_THE_GATE_DECIDES)
    code, events, _, _ = run(spec, Platform(), Source(bad=True), tmp_path)
    assert code == exitcodes.ROLLED_BACK
    notes = [e for e in events if e["event"] == "notification"]
    # the gate's evidence shows the breach at the tick the rollout acts on it: the rollback's
    # notification names the gate (no separate "gate failing" one before it)
    rolled = [e for e in notes if e["alertname"] == "ReleaseRolledBack"]
    assert rolled and "errors" in json.dumps(rolled[0])
    assert all({"ts", "release", "event"} <= e.keys() for e in events)


def test_until_step_stops_successfully_at_that_step(tmp_path):
    platform = Platform()
    code, events, err, wired = run(make_spec(), platform, Source(), tmp_path, until="step:2")
    assert code == exitcodes.PROMOTED
    assert wired.driver.state.rollout.step == 1 and wired.driver.state.rollout.weight == 50
    assert "promoting" not in names(events)
    assert "reached step 2" in err


def test_until_promoted_and_bad_until_is_a_usage_error(tmp_path):
    code, events, _, _ = run(make_spec(), Platform(), Source(), tmp_path, until="promoted")
    assert code == exitcodes.PROMOTED and "promoted" in names(events)
    code, _, err, _ = run(make_spec(), Platform(), Source(), tmp_path, until="step:9", fresh=True)
    assert code == exitcodes.USAGE and "step must be a number from 1 to 3" in err


def test_timeout_before_promotion_exits_1(tmp_path):
    spec = make_spec(strategy={"hold": "1h"})
    code, events, err, _ = run(spec, Platform(), Source(), tmp_path, timeout=0.3,
                                   ticking=True)
    assert code == exitcodes.ROLLED_BACK
    assert "promoted" not in names(events) and "timed out before promotion" in err
    assert "holding: hold:" in err


def test_stale_metrics_never_promote_and_exit_3_past_the_rule(tmp_path, receiver):
    spec = make_spec(alert=[{"kind": "webhook", "url": receiver.url, "stale_after": "100ms"}])
    source = Source()
    source.down = True
    code, events, err, wired = run(spec, Platform(), source, tmp_path, timeout=20,
                                   ticking=True)
    assert code == exitcodes.UNREACHABLE
    seen = names(events)
    assert "promoting" not in seen and "promoted" not in seen and "stale" in seen
    assert wired.driver.state.rollout.step == 0
    assert "unreachable" in err and "connection refused" in err
    assert source.reads >= 4  # 3 × stale_after (0.1 s) at a 20 ms interval: several reads
    stale = [b for b in receiver.bodies() if b["alertname"] == "ReleaseMetricsStale"]
    assert stale and stale[0]["status"] == "firing"


def test_platform_errors_exit_3(tmp_path):
    platform = Platform()
    platform.failing = True
    code, events, err, _ = run(make_spec(), platform, Source(), tmp_path, ticking=True)
    assert code == exitcodes.UNREACHABLE and "platform test" in err
    assert "promoted" not in names(events)


def test_down_and_slow_alert_receivers_never_hold_the_release(tmp_path, receiver, dead_url):
    receiver.slow = threading.Event()  # holds every request until the test releases it
    spec = make_spec(alert=[{"kind": "webhook", "url": receiver.url, "min_severity": "info",
                             "timeout": "30s", "retries": 0},
                            {"kind": "slack", "url": dead_url, "min_severity": "info",
                             "retries": 1}])
    code, events, err, wired = run(spec, Platform(), Source(), tmp_path, flush=0.5)
    receiver.slow.set()
    assert code == exitcodes.PROMOTED  # the release went through while both sinks were stuck
    assert wired.driver.ticks >= 5
    failed = [e for e in events if e["event"] == "alert_failed"]
    assert {e["sink"] for e in failed} == {"webhook", "slack"}
    assert wired.alerts.undelivered == len(failed) >= 2
    assert f"{len(failed)} undelivered" in err


def test_observe_takes_no_action_and_alerts(tmp_path, receiver):
    spec = make_spec(alert=[{"kind": "webhook", "url": receiver.url, "reminder": "100ms"}])
    platform = Platform()
    code, events, err, _wired = run(spec, platform, Source(bad=True), tmp_path, observe=True,
                                    timeout=0.5, ticking=True)
    assert platform.calls == []  # not one lever pulled
    seen = names(events)
    assert "gate" in seen and not {"started", "step", "rolling_back"} & set(seen)
    assert code == exitcodes.ROLLED_BACK and "critical gate breach" in err
    fired, *reminders = [b for b in receiver.bodies() if b["alertname"] == "ReleaseGateFailing"]
    assert fired["details"]["action"] == "none (observe)" and "reminder" not in fired["details"]
    assert reminders and all(r["details"]["reminder"] is True for r in reminders)
    assert {r["startsAt"] for r in reminders} == {fired["startsAt"]}  # the same alert, re-sent
    assert not (tmp_path / "journal").exists()  # observe keeps no journal


def test_observe_healthy_exits_0(tmp_path):
    platform = Platform()
    code, _, err, _ = run(make_spec(), platform, Source(), tmp_path, observe=True, timeout=0.3,
                         ticking=True)
    assert code == exitcodes.PROMOTED and platform.calls == [] and "observed" in err


def test_sigterm_stops_cleanly_and_the_journal_resumes(tmp_path):
    spec = make_spec(strategy={"hold": "1h"})
    out, err = io.StringIO(), io.StringIO()
    session = assemble(spec, Adapters(Platform(), None, Source()),
                       RunOptions(journal_path=str(tmp_path / "journal"), alert_stream=out), err=err)

    class Killer:
        def on_state(self, state: Any) -> None:
            if session.driver.ticks == 3:
                os.kill(os.getpid(), signal.SIGTERM)

    session.add_listener(Killer())
    code = run_headless(session, timeout=20, out=out, err=err)
    assert code == exitcodes.ROLLED_BACK and "terminated before promotion" in err.getvalue()
    assert 3 <= session.driver.ticks <= 4  # the signal lands during tick 3 or right after
    first_run = [r["kind"] for r in read_records(tmp_path / "journal").records]
    assert first_run.count("started") == 1
    # a new watch resumes the same run: no second "started"; the only lever pulled is the
    # reconcile that puts the new platform's weight back where the journal says it is
    platform = Platform()
    out2, err2 = io.StringIO(), io.StringIO()
    resumed = assemble(spec, Adapters(platform, None, Source()),
                       RunOptions(journal_path=str(tmp_path / "journal"), alert_stream=out2),
                       err=err2)
    assert resumed.engine.resumed and resumed.engine.state.step == 0
    code = run_headless(resumed, until="step:1", timeout=20, out=out2, err=err2)
    assert code == exitcodes.PROMOTED, err2.getvalue()
    kinds = [r["kind"] for r in read_records(tmp_path / "journal").records]
    assert kinds.count("started") == 1 and kinds.count("reconcile") == 1
    assert platform.calls == [("set_weights", {"v1": 80, "v2": 20})]


def test_watch_command_spec_error_prints_every_problem(tmp_path):
    bad = tmp_path / "release.toml"
    bad.write_text('[release]\nservice = "x"\n[strategy]\nkind = "canery"\n')
    err = io.StringIO()
    args = argparse.Namespace(spec=str(bad), headless=True)
    assert watch_command(args, out=io.StringIO(), err=err) == exitcodes.USAGE
    text = err.getvalue()
    assert "release.baseline" in text and "release.candidate" in text and "canery" in text


SPEC_TOML = """
[release]
service = "checkout"
baseline = "v1"
candidate = "v2"

[platform]
kind = "local"

[router]
kind = "none"

[metrics]
interval = "20ms"
window = "1s"
stale_after = "100ms"

[strategy]
kind = "canary"
steps = [50, 100]
hold = "40ms"
scale_down_delay = "0s"

[[gate]]
metric = "error_rate"
max = 0.05
min_requests = 10
"""


def test_watch_command_headless_end_to_end_with_journal_next_to_spec(tmp_path):
    path = tmp_path / "release.toml"
    path.write_text(SPEC_TOML)
    out, err = io.StringIO(), io.StringIO()
    args = argparse.Namespace(spec=str(path), headless=True, observe=False, until="done",
                              timeout=20.0, journal=None, fresh=False, record=None,
                              read_only=False)
    code = watch_command(args, out=out, err=err, adapters=Adapters(Platform(), None, Source()))
    assert code == exitcodes.PROMOTED, err.getvalue()
    assert (tmp_path / ".release.releasedeck.journal").exists()
    assert "promoted" in [json.loads(line)["event"] for line in out.getvalue().splitlines()]
    # watching the finished release again resumes it: already promoted, exit 0 at once
    again = watch_command(args, out=io.StringIO(), err=io.StringIO(),
                          adapters=Adapters(Platform(), None, Source()))
    assert again == exitcodes.PROMOTED


def test_adapters_with_start_are_started_and_a_failed_start_exits_3(tmp_path):
    class Starting(Platform):
        def __init__(self, fail: bool) -> None:
            super().__init__()
            self.fail = fail
            self.started = 0

        async def start(self) -> None:
            self.started += 1
            if self.fail:
                raise OSError("address already in use")

    ok = Starting(fail=False)
    code, _, _, _ = run(make_spec(), ok, Source(), tmp_path)
    assert code == exitcodes.PROMOTED and ok.started == 1
    broken = Starting(fail=True)
    code, events, err, _ = run(make_spec(), broken, Source(), tmp_path, fresh=True)
    assert code == exitcodes.UNREACHABLE and events == [] and broken.calls == []
    assert "could not start test: OSError: address already in use" in err


def test_interactive_watch_with_an_adapter_that_cannot_start_exits_3(tmp_path):
    class NoStart(Platform):
        async def start(self) -> None:
            raise ConnectionError("docker daemon not reachable")

    path = tmp_path / "release.toml"
    path.write_text(SPEC_TOML)
    err = io.StringIO()
    args = argparse.Namespace(spec=str(path), headless=False, observe=False, journal=None,
                              fresh=False, record=None, read_only=False, wallboard=False,
                              refresh=1.0)
    code = watch_command(args, out=io.StringIO(), err=err, adapters=Adapters(NoStart(), None, Source()))
    assert code == exitcodes.UNREACHABLE
    assert "could not start test: ConnectionError: docker daemon not reachable" in err.getvalue()


def test_record_writes_a_trace_of_the_headless_run(tmp_path):
    path = tmp_path / "release.toml"
    path.write_text(SPEC_TOML)
    trace = tmp_path / "trace.jsonl"
    args = argparse.Namespace(spec=str(path), headless=True, observe=False, until="done",
                              timeout=20.0, journal=None, fresh=False, record=str(trace),
                              read_only=False)
    code = watch_command(args, out=io.StringIO(), err=io.StringIO(),
                         adapters=Adapters(Platform(), None, Source()))
    assert code == exitcodes.PROMOTED
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    assert any(line.get("event") == "promoted" for line in lines)


def test_a_run_journaled_by_a_newer_releasedeck_is_not_resumed(tmp_path):
    """Its decisions may mean what this version cannot read: one line, exit 2, no lever
    pulled; --fresh starts a new run beside it."""
    path = tmp_path / "release.toml"
    path.write_text(SPEC_TOML)
    journal = tmp_path / ".release.releasedeck.journal"
    args = argparse.Namespace(spec=str(path), headless=True, observe=False, until="step:1",
                              timeout=20.0, journal=None, fresh=False, record=None,
                              read_only=False)
    first = watch_command(args, out=io.StringIO(), err=io.StringIO(),
                          adapters=Adapters(Platform(), None, Source()))
    assert first == exitcodes.PROMOTED and journal.exists()  # --until step:1 ends it unfinished
    journal.write_text(journal.read_text().replace('"journal":1,', '"journal":3,'))
    platform, err = Platform(), io.StringIO()
    code = watch_command(args, out=io.StringIO(), err=err,
                         adapters=Adapters(platform, None, Source()))
    assert code == exitcodes.USAGE, err.getvalue()
    assert err.getvalue().count("\n") == 1 and "journal format 3" in err.getvalue()
    assert platform.calls == []
    args.fresh = True
    fresh = watch_command(args, out=io.StringIO(), err=io.StringIO(),
                          adapters=Adapters(Platform(), None, Source()))
    assert fresh == exitcodes.PROMOTED
