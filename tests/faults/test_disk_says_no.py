"""When the disk says no: the journal, the `--record` trace and the event stream meet a file
size limit, a read-only folder or an unreadable file, for real.

A full disk is a file size limit here (RLIMIT_FSIZE set in the child before exec, SIGXFSZ
ignored, so a write past it fails with EFBIG as a full filesystem fails with ENOSPC: the same
partial write, then the same error). Permissions are real chmods; a root test process drops
CAP_DAC_OVERRIDE from its child's bounding set, so the child meets them as any user does.

What must hold: never a traceback; one line naming the file and the OS's reason; nothing is
done that the journal did not record first; what was journaled stays whole and resumes.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from strategies.alerting import AlertPolicy
from strategies.engine import Engine
from strategies.journal import JournalError, JournalWriter, read_records, torn_path
from strategies.model import Command, CommandKind, Severity
from tests.doubles import Clock, MemoryPlatform, MemoryRouter, ScriptedSource, healthy
from tests.faults.support import Release, env, events
from tests.support.ports import free_port
from tui import exitcodes
from tui.demo_specs import demo_spec
from tui.driver import Driver

SCHEMA = Path(__file__).resolve().parents[2] / "tui" / "schemas" / "events.schema.json"
TEN_STEPS = 'steps = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]\nhold = "1s"'


def file_limit(size: int) -> Callable[[], None]:
    """A child whose files cannot grow past `size` bytes: writes past it fail with EFBIG."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return limit


def as_any_user() -> None:
    """Root passes every permission check: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from
    the bounding set, so that after exec this child meets chmod as any user does."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def watch(release: Release, *args: str, preexec: Callable[[], None] | None = None,
          stdout: Any = subprocess.PIPE, timeout: float = 180
          ) -> tuple[int, list[dict[str, Any]], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "tui.cli", "watch", str(release.spec), "--headless", *args],
        cwd=release.dir, env=env(), stdout=stdout, stderr=subprocess.PIPE, text=True,
        timeout=timeout, check=False, preexec_fn=preexec)
    return proc.returncode, events(proc.stdout or ""), proc.stderr


def journal_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of the journal, each a whole record (a torn or garbled one fails here)."""
    data = path.read_bytes()
    assert data.endswith(b"\n"), data[-200:]
    return [json.loads(line) for line in data.decode("utf-8").splitlines()]


@pytest.fixture
def release(tmp_path: Path) -> Release:
    return Release(tmp_path, free_port()).write()


# ------------------------------------------------------------------ the journal, by itself


WRITER = """
import sys
from strategies.journal import JournalError, JournalWriter
writer = JournalWriter(sys.argv[1])
written = 0
try:
    while True:
        writer({"seq": written + 1, "kind": "evidence", "pad": "x" * 700})
        written += 1
except JournalError as exc:
    print(written)
    print(exc.line)
"""


def test_a_line_the_disk_refuses_is_cut_off_and_the_journal_reads_whole(tmp_path: Path):
    journal = tmp_path / "j.journal"
    done = subprocess.run([sys.executable, "-c", WRITER, str(journal)], env=env(), text=True,
                          capture_output=True, timeout=60, check=False,
                          preexec_fn=file_limit(5000))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    written, line = done.stdout.splitlines()
    assert line == (f"journal {journal}: cannot write (File too large); nothing more is decided "
                    "or done: fix it, then run again to resume")
    # the part of the refused line that reached the file was cut off again
    assert [r["seq"] for r in journal_lines(journal)] == list(range(1, int(written) + 1))
    assert int(written) >= 1 and journal.stat().st_size < 5000

    again = JournalWriter(journal)  # the disk fixed: the next run appends after the last record
    again({"seq": int(written) + 1, "kind": "evidence"})
    again.close()
    assert [r["seq"] for r in journal_lines(journal)] == list(range(1, int(written) + 2))
    assert not torn_path(journal).exists()


def test_a_last_line_that_lost_only_its_newline_stays_a_record(tmp_path: Path):
    """Readers take such a line as a record (a resume folds it), so the next writer ends it
    instead of setting it aside; a line really cut short is still set aside."""
    journal = tmp_path / "j.journal"
    journal.write_text('{"seq":1}\n{"seq":2}')
    JournalWriter(journal).close()
    assert journal.read_text() == '{"seq":1}\n{"seq":2}\n' and not torn_path(journal).exists()

    journal.write_text('{"seq":1}\n{"seq":2,"ki')
    assert read_records(journal, validate=False).torn_tail
    JournalWriter(journal).close()
    assert journal.read_text() == '{"seq":1}\n'
    assert torn_path(journal).read_text() == '{"seq":2,"ki\n'


# ------------------------------------------------------------------ the driver and the app


def test_the_driver_holds_once_its_journal_cannot_be_written(tmp_path: Path):
    """No lever moves after the failure, however long the holds have been over; commands are
    refused with the same line; every State says it first among its holding reasons."""
    import asyncio

    path = tmp_path / "j.journal"
    spec = demo_spec("canary")
    clock = Clock()
    router = MemoryRouter()
    driver = Driver(spec, Engine(spec, journal=JournalWriter(path)), MemoryPlatform(), router,
                    ScriptedSource(healthy), clock=clock)

    async def scenario() -> None:
        for _ in range(3):  # started, its actions done: the candidate takes its first weight
            await driver.tick()
            clock.now += 1.0
        first = dict(router.current)
        journaled = len(journal_lines(path))
        path.unlink()
        path.mkdir()  # the journal's path now names a folder: it cannot be written
        for _ in range(300):  # far past every hold of the plan
            await driver.tick()
            clock.now += 1.0
        assert router.current == first  # not one lever moved
        assert driver.engine.state.step == 0
        with pytest.raises(JournalError):
            await driver.command(Command(CommandKind.PROMOTE_FULL))
        assert router.current == first
        assert journaled >= 2

    asyncio.run(asyncio.wait_for(scenario(), timeout=60))
    line = driver.journal_failed
    assert line.startswith(f"journal {path}: cannot write (") and line.endswith(
        "nothing more is decided or done: fix it, then run again to resume")
    assert driver.state.holding[0] == line
    failed = [e for e in driver.events if e.event == "journal_failed"]
    assert len(failed) == 1 and failed[0].severity == "critical"
    assert failed[0].details["journal"] == str(path)
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator(schema).validate(json.loads(failed[0].to_json()))
    [page] = AlertPolicy("checkout", "v2").on_event(failed[0])  # someone must act: it pages
    assert (page.name, page.severity, page.details["journal"]) == (
        "ReleaseJournalFailed", Severity.CRITICAL, str(path))


def test_the_app_shows_the_journal_failure_and_refuses_keys_with_it(tmp_path: Path):
    import asyncio

    from tui.app import ReleaseApp
    from tui.app.app import OPERATOR_KEYS
    from tui.app.widgets import GatesPanel
    from tui.headless import outcome_code

    path = tmp_path / "j.journal"
    spec = demo_spec("canary")
    clock = Clock()
    driver = Driver(spec, Engine(spec, journal=JournalWriter(path)), MemoryPlatform(),
                    MemoryRouter(), ScriptedSource(healthy), clock=clock)

    async def scenario() -> None:
        for _ in range(3):
            await driver.tick()
            clock.now += 1.0
        path.unlink()
        path.mkdir()
        for _ in range(60):
            await driver.tick()
            clock.now += 1.0
        assert driver.journal_failed
        app = ReleaseApp(driver, read_only=False, wallboard=False, ticking=False)
        async with app.run_test(size=(80, 24)) as pilot:
            app.render_state(force=True)
            await pilot.pause()
            panel = app.screen.query_one(GatesPanel)
            shown = " ".join("".join(seg.text for seg in panel.render_line(y))
                             for y in range(panel.size.height)).split()
            assert "journal" in shown and "write" in " ".join(shown), shown
            # nothing can be recorded, so nothing is offered: the footer has no operator key
            offered = [op.action for op in OPERATOR_KEYS if app.check_action(op.action, ())]
            assert offered == [], offered
            await pilot.press("p")  # a key pressed anyway says why, and nothing is journaled
            assert any(said.startswith("not now: journal ") and "cannot write" in said
                       for said in app.said), app.said

    asyncio.run(asyncio.wait_for(scenario(), timeout=60))
    assert outcome_code(driver) == exitcodes.UNREACHABLE  # the app quit: exit 3, as headless


# ------------------------------------------------------------------ real runs of releasedeck


def test_a_journal_the_disk_refuses_mid_release_holds_exits_3_and_resumes(release: Release):
    release.write(strategy=TEN_STEPS)
    code, seen, err = watch(release, "--timeout", "120", preexec=file_limit(8000))

    assert code == exitcodes.UNREACHABLE, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert " held where it was after " in last
    assert f"holding: journal {release.journal}: cannot write (File too large); nothing more " \
           "is decided or done" in last
    names = [e["event"] for e in seen]
    assert names.count("journal_failed") == 1, names
    failed = seen[names.index("journal_failed")]
    assert (failed["journal"], failed["error"]) == (str(release.journal), "File too large")
    assert "promoted" not in names and names[-1] == "journal_failed"  # nothing after it
    records = journal_lines(release.journal)  # whole records only, nothing torn
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    intents = {a["id"] for r in records for a in r.get("actions", ())}
    done = {item["action"] for e in seen if e["event"] == "action_done"
            for item in e.get("evidence", ()) if "action" in item}
    assert done and done <= intents  # every lever pulled was journaled before it was pulled

    code, seen, err = watch(release, "--timeout", "180")  # the disk fixed: it resumes

    assert code == exitcodes.PROMOTED, err
    assert "cut short" not in err  # nothing torn was left for this run to warn about
    records = journal_lines(release.journal)
    assert records[-1]["kind"] in ("promoted", "action_done", "scaled_down")
    assert "promoted" in [r["kind"] for r in records]
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))


def test_a_trace_and_an_event_file_the_disk_refuses_stop_with_a_warning(release: Release):
    """Less critical than the journal: each says once what stopped, and the release goes on."""
    limit = 1 << 20
    trace, out = release.dir / "trace.jsonl", release.dir / "events.jsonl"
    filler = '{"kind":"note","pad":"' + "x" * 80 + '"}\n'
    for path in (trace, out):  # a nearly full "disk" for both, the journal far from it
        path.write_text(filler * ((limit - 4000) // len(filler)))
    kept = trace.stat().st_size

    with out.open("a") as stream:
        code, _, err = watch(release, "--record", str(trace), "--timeout", "180",
                             preexec=file_limit(limit), stdout=stream)

    assert code == exitcodes.PROMOTED, err
    assert "Traceback" not in err
    said = err.strip().splitlines()
    warned = [line for line in said if line.startswith(f"releasedeck: warning: --record {trace}")]
    assert len(warned) == 1, said
    assert warned[0].startswith(f"releasedeck: warning: --record {trace}: cannot write (File too "
                                "large): the trace stops after this run's ")
    assert warned[0].endswith(" lines; the release goes on")
    assert said.count("releasedeck: standard output: cannot write (File too large): events are "
                      "no longer printed (the release goes on; its exit code is its outcome)") == 1
    assert " promoted after " in said[-1]
    for path in (trace, out):  # each ends on its last whole line, after lines of this run
        assert path.read_bytes().endswith(b"\n") and path.stat().st_size > kept
        assert all(json.loads(line) for line in path.read_text().splitlines())
    assert '"event":"started"' in out.read_text()


def test_a_journal_that_cannot_be_read_or_written_at_start_is_one_line_and_exit_3(
        release: Release):
    folder = release.dir / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        probe = subprocess.run([sys.executable, "-c", f"open({str(folder / 'x')!r}, 'w')"],
                               capture_output=True, check=False, preexec_fn=as_any_user)
        binding = probe.returncode != 0
    except (OSError, subprocess.SubprocessError):  # root without CAP_SETPCAP: cannot drop it
        binding = False
    if not binding:
        folder.chmod(0o755)
        pytest.skip("permissions do not bind this user here")
    journal = release.dir / "j.journal"
    journal.write_text("")
    try:
        code, seen, err = watch(release, "--journal", str(folder / "j.journal"),
                                preexec=as_any_user)
        assert (code, seen) == (exitcodes.UNREACHABLE, []), err
        assert err.splitlines() == [f"releasedeck: cannot open the lease file {folder}/"
                                    "j.journal.lock: Permission denied"]

        journal.chmod(0o444)
        code, seen, err = watch(release, "--journal", str(journal), preexec=as_any_user)
        assert (code, seen) == (exitcodes.UNREACHABLE, []), err
        assert err.splitlines() == [f"releasedeck: journal {journal}: cannot write (Permission "
                                    "denied); the release was not started"]

        journal.chmod(0o000)
        code, seen, err = watch(release, "--journal", str(journal), preexec=as_any_user)
        assert (code, seen) == (exitcodes.UNREACHABLE, []), err
        assert err.splitlines() == [f"releasedeck: journal {journal}: cannot read (Permission "
                                    "denied); the release was not started"]
    finally:
        folder.chmod(0o755)
        journal.chmod(0o644)
    assert journal.read_text() == ""  # untouched
