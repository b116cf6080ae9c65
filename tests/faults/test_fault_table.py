"""The fault table (issue 12): one test per fault an operator injected by hand, each asserting
the exact outcome — exit code, journal lines, router weights read back, processes alive.

Every test runs `releasedeck watch SPEC --headless` as a real subprocess over the real local
stack (demo service processes, the built-in router on a known port, a load generator)."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys

import pytest

from collectors.local.stack import LocalStack
from strategies.journal import read_records
from strategies.model import Command, CommandKind
from strategies.spec import load_spec
from tests.faults.support import (
    Release,
    Tmux,
    all_gone,
    command_line,
    confirmed,
    decision_actions,
    descendants,
    env,
    kill,
    owned_dirs,
    port_closed,
    wait_for,
)
from tests.support.ports import free_port
from tui import exitcodes
from tui.session import RunOptions, assemble
from tui.wiring import Adapters, build_source


@pytest.fixture
def release(tmp_path):
    return Release(tmp_path, free_port()).write()


# ---------------------------------------------------------------- 1. a resumed release moves


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_1_resumed_canary_restores_the_weight_and_promotes(release, sig):
    first = release.start()
    wait_for("step 1 (20%) applied", lambda: confirmed(release, "set_weight", 20), proc=first)
    assert release.weights()["weights"]["v2"] == 20
    kill(first, sig)
    wait_for("the router to die with releasedeck", lambda: port_closed(release.port))

    code, events, err = release.run("--timeout", "150")

    assert code == exitcodes.PROMOTED, err
    records = release.records()
    kinds = [r["kind"] for r in records if r["kind"] != "gate"]
    assert kinds.count("started") == 1 and kinds.count("promoted") == 1
    # The restarted router came back at v2 0 %: the first tick found the drift and re-applied
    # the journal's weight, as a reconcile record (not a decision) carrying the drift it saw.
    fixes = [r for r in records if r["kind"] == "reconcile"]
    assert fixes, kinds
    drift = fixes[0]["evidence"][0]
    assert (drift["lever"], drift["desired"], drift["observed"]) == ("set_weight:", 20, 0.0)
    assert [(a["kind"], a["value"]) for a in fixes[0]["actions"]] == [("set_weight", 20)]
    assert kinds.index("reconcile") < kinds.index("step")
    # Each decision was journaled once (the resume did not decide step 1 again) and no
    # action id was confirmed twice.
    steps = [(r["kind"], r["weight"]) for r in records if r["kind"] in ("started", "step")]
    assert steps == [("started", 20), ("step", 50), ("step", 100)]
    weights = [a[1] for a in decision_actions(records) if a[0] == "set_weight"]
    assert weights == [20, 50, 100, 100]  # the last: promoting confirms 100 %
    done = [e["action"] for r in records if r["kind"] == "action_done" for e in r["evidence"]]
    assert len(done) == len(set(done))
    assert [e["event"] for e in events].count("reconcile") == len(fixes)


# ---------------------------------------------------------------- 2. a spec edited between runs


def test_2_a_changed_plan_stops_with_one_line_then_adopt_spec_continues(release):
    first = release.start()
    wait_for("step 2 (50%) applied", lambda: confirmed(release, "set_weight", 50), proc=first)
    kill(first)
    wait_for("the router to die with releasedeck", lambda: port_closed(release.port))
    before = release.records()
    release.write(strategy='steps = [30, 100]\nhold = "2s"')

    code, events, err = release.run("--timeout", "30")

    assert code == exitcodes.USAGE and events == []
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "the plan changed since this release started (steps 20% 50% 100% → 30% 100%)" \
        in lines[0] and "--fresh" in lines[0] and "--adopt-spec" in lines[0]
    assert release.records() == before  # nothing decided, nothing journaled

    code, events, err = release.run("--timeout", "150", "--adopt-spec")

    assert code == exitcodes.PROMOTED, err
    kinds = [r["kind"] for r in release.records() if r["kind"] != "gate"]
    assert kinds.count("started") == 1 and kinds.count("adopted") == 1
    adopted = next(r for r in release.records() if r["kind"] == "adopted")
    assert (adopted["step"], adopted["weight"]) == (0, 30)
    promoting = next(r for r in release.records() if r["kind"] == "promoting")
    assert promoting["at"] - adopted["at"] >= 2.0  # the adopted step's hold, from scratch
    assert [e["event"] for e in events].index("adopted") < \
        [e["event"] for e in events].index("promoted")


# ---------------------------------------------------------------- 3. holds count observed time


def test_3_a_resume_restarts_the_step_hold_instead_of_counting_the_downtime(release):
    release.write(strategy='steps = [20, 50, 100]\nhold = "4s"')
    first = release.start()
    wait_for("step 1 (20%) applied", lambda: confirmed(release, "set_weight", 20), proc=first)
    kill(first)
    wait_for("the router to die with releasedeck", lambda: port_closed(release.port))
    entered = next(r for r in release.records() if r["kind"] == "started")
    journaled = len(release.records())

    code, _, err = release.run("--timeout", "150")

    assert code == exitcodes.PROMOTED, err
    resumed = release.records()[journaled:]
    first_seen = resumed[0]["at"]  # the resumed process's first record (its reconcile)
    step2 = next(r for r in resumed if r["kind"] == "step")
    assert step2["step"] == 1
    # The whole 4 s hold was observed by the resumed process, after the weight was restored;
    # the time the step spent with nobody watching (before and during the restart) is not in it.
    assert step2["at"] - first_seen >= 4.0
    assert first_seen - entered["at"] > 0  # there was downtime to (not) count


# ---------------------------------------------------------------- 4. blue-green preview


def test_4_blue_green_leaves_preview_only_once_the_gates_pass(release):
    release.write(kind="blue-green", strategy='preview_hold = "1s"\nhold = "1s"')

    code, _, err = release.run("--timeout", "150")

    assert code == exitcodes.PROMOTED, err
    records = release.records()
    switch = next(i for i, r in enumerate(records) if r["kind"] == "step")
    assert records[switch]["weight"] == 100 and records[switch]["step"] == 1
    # Before the switch the gate went from unknown (no data yet) to pass on the preview
    # traffic: its last verdict before the switch is a pass, never unknown.
    verdicts = [e["status"] for r in records[:switch] if r["kind"] == "gate"
                for e in r["evidence"] if e["gate"] == "errors"]
    assert verdicts and verdicts[-1] == "pass", verdicts


# ---------------------------------------------------------------- 5. a manual weight stays


def test_5_resuming_after_a_manual_weight_never_lowers_it(release, tmp_path):
    release.write(strategy='steps = [10, 25, 50, 100]\nhold = "2s"')
    spec = load_spec(str(release.spec))

    async def scenario() -> list[tuple[str, float]]:
        seen: list[tuple[str, float]] = []
        async with LocalStack(spec, rate=50, load_duration=120, sync_interval=0.2) as stack:
            session = assemble(spec, Adapters(stack.platform, stack.router, build_source(spec),
                                              stack_owned=True),
                               RunOptions(journal_path=str(tmp_path / "journal")),
                               err=io.StringIO())
            driver = session.driver
            try:
                for _ in range(200):  # bounded: step 1 is entered on the first ticks
                    await driver.tick()
                    if confirmed_in(driver, "set_weight", 10):
                        break
                    await asyncio.sleep(0.1)
                await driver.command(Command(CommandKind.SET_WEIGHT, value=30))
                seen.append(("set 30", (await stack.router.weights())["v2"]))
                resumed = await driver.command(Command(CommandKind.RESUME))
                seen.append((resumed[0].reason, (await stack.router.weights())["v2"]))
                for _ in range(400):  # bounded: the 2 s hold at 30 %, then the next step
                    await driver.tick()
                    seen.append(("tick", (await stack.router.weights())["v2"]))
                    if driver.engine.state.step >= 2:
                        break
                    await asyncio.sleep(0.1)
            finally:
                await session.close(1.0)
        return seen

    seen = asyncio.run(scenario())
    assert seen[0] == ("set 30", 30.0)
    assert "the manual weight 30% stays until step 3/4 (50%)" in seen[1][0] and seen[1][1] == 30
    weights = [w for _, w in seen[2:]]
    assert weights[-1] == 50.0 and min(weights) == 30.0  # never 25 %: step 2 was skipped
    steps = [r for r in read_records(tmp_path / "journal").records
             if r["kind"] in ("started", "step")]
    assert [(r["step"], r["weight"]) for r in steps] == [(0, 10), (2, 50)]


def confirmed_in(driver, kind: str, value: int) -> bool:
    return any(t.kind == kind and t.value == value
               for t in driver.engine.state.targets.values())


# ---------------------------------------------------------------- 6. processes, terminal, temp


def test_6_every_child_dies_with_releasedeck_and_its_temp_dirs_are_swept(release, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    first = release.start(env_extra={"TMPDIR": str(tmp)})
    wait_for("step 1 applied", lambda: confirmed(release, "set_weight", 20), proc=first)
    children = descendants(first.pid)
    assert len(children) >= 3  # two service instances and the router, at least
    left = owned_dirs(tmp, first.pid)
    assert left  # the router's and the platform's logs
    kill(first)
    wait_for("every child of the killed releasedeck to die", lambda: all_gone(children))
    assert owned_dirs(tmp, first.pid) == left  # kill -9 leaves them ...

    code, _, err = release.run("--timeout", "150", env_extra={"TMPDIR": str(tmp)})

    assert code == exitcodes.PROMOTED, err
    assert owned_dirs(tmp, first.pid) == []  # ... the next run sweeps them
    assert list(tmp.glob("releasedeck-*")) == []  # and removes its own at exit


def test_6_a_dead_local_router_is_restarted_like_an_instance(release):
    # stale_after 10 s: a restarted router process may take seconds to start on a busy machine,
    # and 3 × stale_after of platform errors would end the run with exit 3 first
    release.write(strategy='steps = [20, 50, 100]\nhold = "3s"', stale_after="10s")
    first = release.start()
    wait_for("step 1 applied", lambda: confirmed(release, "set_weight", 20), proc=first)
    router = next(p for p in descendants(first.pid) if "router_process" in command_line(p))
    router.kill()
    wait_for("a new router process", lambda: [
        p for p in descendants(first.pid)
        if "router_process" in command_line(p) and p.pid != router.pid], proc=first)
    wait_for("the router to route again", lambda: release.weights()["weights"]["v2"] >= 20,
             proc=first)
    first.wait(180)
    assert first.returncode == exitcodes.PROMOTED, first.stderr.read() if first.stderr else ""
    kill(first)
    records = release.records()
    kinds = [r["kind"] for r in records if r["kind"] != "gate"]
    assert kinds.count("promoted") == 1 and "rolling_back" not in kinds
    # the tick that found it dead held the step and journaled it, once, naming the process
    found = [r for r in records if r["kind"] == "reconcile" and any(
        e.get("detail") == f"local router: pid {router.pid} exited (killed by SIGKILL)"
        for e in r["evidence"])]
    assert len(found) == 1, [r for r in records if r["kind"] == "reconcile"]


@pytest.mark.prometheus
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_6_demo_with_prometheus_leaves_no_prometheus_behind(tmp_path, sig):
    demo = subprocess.Popen([sys.executable, "-m", "tui.cli", "demo", "--headless",
                             "--with-prometheus"], cwd=tmp_path, env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        prometheus = wait_for("the demo's Prometheus", lambda: [
            p for p in descendants(demo.pid) if p.name() == "prometheus"], timeout=60, proc=demo)
        children = descendants(demo.pid)
        kill(demo, sig)
        wait_for("Prometheus and every other child to die", lambda: all_gone(children))
        assert all_gone(prometheus)
    finally:
        if demo.poll() is None:
            kill(demo)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["sigterm", "sighup"])
def test_6_a_signal_to_the_app_gives_the_terminal_back(tmp_path, sig):
    tmux = Tmux(f"releasedeck-fault-{tmp_path.name}")
    try:
        tmux.start(f"exec {sys.executable} -m tui.cli demo", tmp_path)
        wait_for("the app on the alternate screen with the mouse on",
                 lambda: tmux.show("#{alternate_on}#{mouse_any_flag}") == "11", timeout=60)
        pid = int(tmux.show("#{pane_pid}"))
        children = descendants(pid)
        os.kill(pid, sig)
        wait_for("the app to exit", lambda: tmux.show("#{pane_dead}") == "1", timeout=60)
        assert tmux.show("#{alternate_on} #{mouse_any_flag}") == "0 0"
        wait_for("its children to go too", lambda: all_gone(children))
    finally:
        tmux.close()


# ---------------------------------------------------------------- 7. one line, never a traceback


def cli(*args: str, cwd, extra: list[str] | None = None, timeout: float = 60
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*(extra or [sys.executable]), "-m", "tui.cli", *args], cwd=cwd,
                          env=env(), capture_output=True, text=True, timeout=timeout,
                          check=False)


def test_7_bad_bytes_and_deep_nesting_in_specs_are_one_line_each_and_check_goes_on(release):
    (release.dir / "binary.toml").write_bytes(b'service = "\xff\xfe"\n')
    (release.dir / "deep.toml").write_text("a = " + "[" * 50000 + "]" * 50000 + "\n")
    (release.dir / "huge.toml").write_text(
        release.spec.read_text().replace('steps = [20, 50, 100]',
                                         "steps = [" + ", ".join(["50"] * 5000) + "]")
        .replace('hold = "2s"', 'hold = "99999999999999999999d"'))

    done = cli("check", "release.toml", "binary.toml", "deep.toml", "huge.toml", "release.toml",
               cwd=release.dir)

    assert done.returncode == exitcodes.USAGE and "Traceback" not in done.stderr
    assert done.stdout.count("release.toml: ok") == 2  # the good spec after the bad ones too
    problems = done.stderr.splitlines()
    assert "binary.toml: line 1: not UTF-8 text (byte 0xff at offset 11): a TOML spec is UTF-8" \
        in problems
    assert "deep.toml: not valid TOML: arrays or tables nested too deeply" in problems
    assert "huge.toml: strategy.steps: too many steps: 5000 (at most 100)" in problems
    assert "huge.toml: strategy.hold: duration too long: '99999999999999999999d' (at most 30d)" \
        in problems


def test_7_bad_numbers_on_the_command_line_are_usage_errors(release):
    for args, flag in ((("demo", "--rate", "0"), "--rate"), (("demo", "--rate", "-5"), "--rate"),
                       (("watch", "release.toml", "--headless", "--timeout", "nan"), "--timeout"),
                       (("watch", "release.toml", "--headless", "--timeout", "0"), "--timeout")):
        done = cli(*args, cwd=release.dir)
        assert done.returncode == exitcodes.USAGE, (args, done.stderr)
        assert f"argument {flag}: must be a number above 0" in done.stderr.splitlines()[-1]
        assert "Traceback" not in done.stderr
    assert not release.journal.exists()  # nothing started: no release, no journal


def test_7_a_deeply_nested_or_inconsistent_trace_line_is_one_problem(release):
    trace = release.dir / "trace.jsonl"
    ok = '{"ts":"2026-01-01T00:00:00Z","service":"checkout","version":"v1",' \
         '"requests_total":10,"errors_total":1}'
    trace.write_text("[" * 50000 + "]" * 50000 + "\n" + ok.replace('"errors_total":1',
                                                                    '"errors_total":12') + "\n")
    done = cli("replay", "release.toml", "trace.jsonl", cwd=release.dir)
    assert done.returncode == exitcodes.USAGE and "Traceback" not in done.stderr
    assert "trace.jsonl:1: bad trace line: not a trace line: JSON nested too deeply" \
        in done.stderr
    assert "trace.jsonl:2: bad trace line: errors_total 12 exceeds requests_total 10" \
        in done.stderr


def test_7_a_journal_that_stops_being_writable_ends_in_exit_3_and_one_line(release):
    limit = [sys.executable, "-c",
             "import os, resource, signal, sys\n"
             "resource.setrlimit(resource.RLIMIT_FSIZE, (12000, 12000))\n"
             "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
             "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])\n"]

    done = cli("watch", "release.toml", "--headless", "--timeout", "60", cwd=release.dir,
               extra=limit, timeout=90)

    assert done.returncode == exitcodes.UNREACHABLE, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "cannot write (File too large); nothing more is decided" in last
    assert release.journal.stat().st_size <= 12000
