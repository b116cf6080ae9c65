"""Issue 12's smaller faults (item 8): one test each, on real processes where there are some —
`releasedeck` as a subprocess, the local router as the process it really is — asserting the
exact line, exit code or journal outcome."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import psutil

from collectors.local.router import LocalRouter
from tests.faults.support import Release, env
from tests.support.ports import free_port
from tui import exitcodes


def cli(*args: str, cwd, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """A bounded run: without the refusals, a FIFO or /dev/zero would block or read forever,
    and the timeout turns that into a failure instead of a hung suite."""
    return subprocess.run([sys.executable, "-m", "tui.cli", *args], cwd=cwd, env=env(),
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_a_busy_router_port_is_one_line_naming_the_port_and_what_to_do(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        release = Release(tmp_path, port).write()
        code, _events, err = release.run("--timeout", "60")
    assert code == exitcodes.UNREACHABLE and "Traceback" not in err
    assert err.strip().splitlines() == [
        f"releasedeck: local stack did not start: local router did not start on "
        f"127.0.0.1:{port}: address already in use (another process listens on that port: "
        f"stop it or choose another [router] port)"]


def test_a_router_killed_while_it_starts_is_started_again():
    """The soak's find: kill -9 of the router in the second a release started ended the run
    (exit 3). Now a proxy killed before it listens is started again."""
    me = psutil.Process()
    killed: list[int] = []
    stop = threading.Event()

    def killer() -> None:  # kill -9 the first router process, as soon as it exists
        deadline = time.monotonic() + 60
        while not stop.is_set() and not killed and time.monotonic() < deadline:
            for child in me.children(recursive=True):
                try:
                    if "router_process" in " ".join(child.cmdline()):
                        child.kill()
                        killed.append(child.pid)
                        return
                except psutil.Error:
                    continue
            time.sleep(0.005)

    async def scenario() -> dict[str, float]:
        router = LocalRouter(port=free_port(), weights={"v1": 100, "v2": 0})
        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        try:
            await router.start()
            thread.join(60)
            # Killed before it listened: start() tried again. Killed just after (a loaded
            # machine can be that slow to look): the next call starts it again. Either way
            # the router must route, from a process that is not the one killed.
            await router.weights()  # an admin call: starts a proxy that died after listening
            async with httpx.AsyncClient(trust_env=False) as client:
                answer = await client.get(f"{router.url}/-/weights", timeout=5.0)
            weights = dict(answer.json()["weights"])  # configured, not effective (no backends)
            assert killed and router.pid is not None and router.pid != killed[0]
            return weights
        finally:
            stop.set()
            await router.close()

    assert asyncio.run(scenario()) == {"v1": 100.0, "v2": 0.0}


def test_specs_that_are_a_fifo_a_device_a_folder_or_huge_are_one_line_each(tmp_path):
    os.mkfifo(tmp_path / "pipe.toml")
    (tmp_path / "folder.toml").mkdir()
    with (tmp_path / "huge.toml").open("w") as handle:
        handle.write("# a comment line, over and over\n" * 40_000)  # 1.28 MB
    Release(tmp_path, free_port()).write()

    done = cli("check", "pipe.toml", "/dev/zero", "folder.toml", "huge.toml", "release.toml",
               cwd=tmp_path)

    assert done.returncode == exitcodes.USAGE and "Traceback" not in done.stderr
    assert done.stdout.count("release.toml: ok") == 1  # the good spec after the bad ones
    problems = done.stderr.splitlines()
    assert "pipe.toml: not a regular file: it is a FIFO (named pipe); name a spec file" in problems
    assert "/dev/zero: not a regular file: it is a character device; name a spec file" \
        in problems
    assert "folder.toml: not a regular file: it is a folder; name a spec file" in problems
    assert "huge.toml: too large for a release spec: more than 1000000 bytes (the limit)" \
        in problems


def test_a_journal_that_is_a_device_or_fifo_is_refused_with_one_line(tmp_path):
    release = Release(tmp_path, free_port()).write()
    os.mkfifo(tmp_path / "pipe.journal")
    for journal, kind in (("/dev/full", "a character device"),
                          (str(tmp_path / "pipe.journal"), "a FIFO (named pipe)")):
        code, _events, err = release.run("--journal", journal, "--timeout", "30")
        assert code == exitcodes.USAGE, err
        assert err.strip().splitlines() == [
            f"releasedeck: journal {journal}: not a regular file (it is {kind}); "
            f"name a file with --journal"]
    done = cli("history", "/dev/full", str(tmp_path / "pipe.journal"), cwd=tmp_path)
    assert "Traceback" not in done.stderr
    assert "releasedeck history: journal /dev/full: not a regular file (it is a character " \
        "device); name a file with --journal; skipped" in done.stderr.splitlines()


def test_rerunning_a_rolled_back_journal_pages_nothing_again(tmp_path):
    release = Release(tmp_path, free_port()).write()
    release.spec.write_text(
        release.spec.read_text().replace("v2 = { latency_ms = 2 }",
                                         "v2 = { latency_ms = 2, error_ratio = 0.5 }")
        + '\n[[alert]]\nkind = "stdout"\nmin_severity = "critical"\n')

    def pages(events: list[dict]) -> list[str]:
        return [e["alertname"] for e in events if e.get("event") == "notification"]

    code, first, err = release.run("--timeout", "90")
    assert code == exitcodes.ROLLED_BACK, err
    assert pages(first) == ["ReleaseRolledBack"]
    code, again, err = release.run("--timeout", "90")
    assert code == exitcodes.ROLLED_BACK, err
    assert pages(again) == [] and "alerts 0 delivered, 0 undelivered" in err


def test_the_summary_names_the_metrics_error_once(tmp_path):
    dead = free_port()  # nothing listens there: every query fails the same way
    release = Release(tmp_path, free_port()).write()
    release.spec.write_text(release.spec.read_text().replace(
        '[metrics]\n', f'[metrics]\nsource = "prometheus"\nurl = "http://127.0.0.1:{dead}"\n'))
    code, _events, err = release.run("--timeout", "8")
    assert code == exitcodes.UNREACHABLE, err
    last = err.strip().splitlines()[-1]
    assert last.count(f"prometheus at http://127.0.0.1:{dead}") == 1, last


def test_a_reader_that_goes_away_never_changes_the_exit_code(tmp_path):
    """The soak's other find: a promoted release whose stderr reader had gone away exited 141
    ("output closed") from the last summary line, and a closed stdout warned on every event."""
    release = Release(tmp_path, free_port()).write()
    for closed in ("stderr", "stdout"):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tui.cli", "watch", str(release.spec), "--headless",
             "--timeout", "90", "--fresh"],
            cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stderr is not None
        if closed == "stderr":
            proc.stderr.close()
        assert '"event":"started"' in proc.stdout.readline()  # the run is under way
        proc.stdout.close()  # …and the reader of its events goes away
        try:
            code = proc.wait(120)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert code == exitcodes.PROMOTED, closed
        if closed == "stdout":
            err = proc.stderr.read().splitlines()
            assert err[0] == ("releasedeck: standard output closed: events are no longer "
                              "printed (the release goes on; its exit code is its outcome)")
            assert " promoted after " in err[-1] and len(err) == 2, err
            proc.stderr.close()
