"""The file lease on a disk that refuses the holder's details, and the demo's own leftovers.

The refusal is the OS's own: a driver process under a file size limit of 0 bytes
(RLIMIT_FSIZE, as `ulimit -f 0`; Python ignores SIGXFSZ, so the write fails with EFBIG as a
full disk fails with ENOSPC) takes the lock and cannot write who it is. Everything another
screen then does (`attach`, a second `watch`) runs as a real process beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from collectors.lease import Holder, LeaseHeld
from collectors.lease.file_lease import FileLease, lock_path_for
from strategies.journal import JournalError, JournalWriter
from strategies.model import Event
from tests.faults.support import ROOT, env
from tests.faults.test_small_faults import cli
from tui import exitcodes
from tui.demo import _load
from tui.demo_specs import DEFAULT_TARGETS
from tui.events_out import EventPrinter
from tui.fleet.command import fleet_command

SPEC = """
[release]
service = "checkout"
baseline = "v1"
candidate = "v2"

[platform]
kind = "local"

[strategy]
kind = "canary"
steps = [50, 100]
"""

DRIVER = """
import asyncio, resource, sys
from collectors.lease import Holder
from collectors.lease.file_lease import FileLease
resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
lease = FileLease(sys.argv[1], "checkout")
asyncio.run(lease.acquire(Holder.me("checkout", 1.0)))
print(lease.unsaid() or "said", flush=True)
sys.stdin.read()  # holds the lock until the test closes our stdin
"""


@pytest.fixture
def refused(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A spec whose lease a driver holds without being able to write who it is; the lock file
    first holds the details of a driver killed earlier, which must not be read as the holder."""
    spec = tmp_path / "release.toml"
    spec.write_text(SPEC)
    lock = lock_path_for(tmp_path / ".release.releasedeck.journal")
    lock.write_text(Holder("checkout", "old-host", 999999, "old", 1.0).to_json() + "\n")
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(lock)], cwd=ROOT, env=env(),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert driver.stdout is not None
        ready, _, _ = select.select([driver.stdout], [], [], 60)  # it says once it holds the lock
        assert ready, "the driver never said whether it holds the lease"
        said = driver.stdout.readline().strip()
        yield spec, said
    finally:
        assert driver.stdin is not None
        driver.stdin.close()
        driver.wait(30)


def test_the_holder_keeps_the_lock_and_says_once_that_its_details_were_refused(
        refused: tuple[Path, str]) -> None:
    spec, said = refused
    lock = lock_path_for(spec.parent / ".release.releasedeck.journal")
    assert said == (f"lease {lock}: cannot write who drives (File too large); the lease is held "
                    "and the release goes on, but other screens cannot find this driver")
    assert lock.read_bytes() == b""  # not a dead driver's details, nor a part of ours

    holder = asyncio.run(FileLease(lock, "checkout").holder())
    assert holder == Holder.unknown("checkout")  # somebody drives; who is unknown
    with pytest.raises(LeaseHeld) as caught:  # the lock is still the driver's
        asyncio.run(FileLease(lock, "checkout").acquire(Holder.me("checkout", 2.0)))
    assert caught.value.line() == (
        f"releasedeck: checkout is already driven by another session, but its lease {lock} does "
        "not say who or where (its details could not be written); attach with the address "
        "that session printed: releasedeck attach URL")


def test_another_screen_gets_one_clear_line_not_nobody_drives(refused: tuple[Path, str]) -> None:
    spec, _ = refused
    attach = cli("attach", str(spec), "--headless", "--timeout", "3", cwd=spec.parent)
    lines = attach.stderr.strip().splitlines()
    assert attach.returncode == exitcodes.UNREACHABLE and "Traceback" not in attach.stderr
    assert lines[0] == (f"releasedeck: {spec} is driven by an unknown session: "
                        "its lease does not say who or where (its details could not be written); "
                        "attach with the address that session printed: releasedeck attach URL")
    assert not any("nobody drives" in line for line in lines)

    second = cli("watch", str(spec), "--headless", "--timeout", "5", cwd=spec.parent)
    assert second.returncode == exitcodes.LEASE_HELD and "Traceback" not in second.stderr
    assert second.stderr.strip().splitlines()[-1].startswith(
        "releasedeck: checkout is already driven by another session, but its lease ")


def test_the_fleet_shows_the_release_driven_by_an_unknown_session(refused: tuple[Path, str]) -> None:
    spec, _ = refused
    out, err = io.StringIO(), io.StringIO()
    code = fleet_command(argparse.Namespace(paths=[str(spec.parent)], headless=True,
                                            wallboard=False, discover=[], refresh=1.0), out, err)
    assert code == 0, err.getvalue()
    [row] = [json.loads(line) for line in out.getvalue().splitlines()]
    assert (row["driver"], row["driven_by"]) == ("driven", "an unknown session")
    assert row["problem"] == "its lease does not say where it answers"


HEADLESS_DRIVER = """
import asyncio, contextlib, resource, sys
from collectors.lease.file_lease import FileLease
from tests.headless.support import Platform, Source, make_spec
from tui.headless import run_headless_async
from tui.seat import ServeOptions, take_seat
from tui.session import RunOptions, assemble
from tui.wiring import Adapters

async def main() -> int:
    spec = make_spec(strategy={"kind": "canary", "steps": [50, 100], "hold": "1h"})
    async with contextlib.AsyncExitStack() as resources:
        seat = await take_seat(resources, spec, FileLease(sys.argv[1], "checkout"), ServeOptions())
        session = assemble(spec, Adapters(Platform(), None, Source()),
                           RunOptions(memory_journal=True, seat=seat))
        return await run_headless_async(session, timeout=3, out=sys.stdout, err=sys.stderr)

resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))  # the lock file only
sys.exit(asyncio.run(main()))
"""


def test_a_headless_driver_says_it_once_with_its_address_and_drives_on(tmp_path: Path) -> None:
    """A real run (its journal in memory, so the size limit of 0 bytes refuses only the lease's
    file): one warning event on stdout and one line on stderr, each with the state server's
    address, and the run goes on to its own end (its timeout here)."""
    lock = tmp_path / "release.journal.lock"
    done = subprocess.run([sys.executable, "-c", HEADLESS_DRIVER, str(lock)], cwd=ROOT, env=env(),
                          capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" not in done.stderr, done.stderr
    said = [json.loads(line) for line in done.stdout.splitlines()
            if '"lease_details_failed"' in line]
    assert len(said) == 1
    schema = json.loads((ROOT / "tui" / "schemas" / "events.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(said[0])
    attach = said[0]["attach"]
    assert attach.startswith("http://127.0.0.1:")
    warned = [line for line in done.stderr.splitlines() if "cannot write who drives" in line]
    assert warned == [f"releasedeck: warning: lease {lock}: cannot write who drives (File too "
                      "large); the lease is held and the release goes on, but other screens "
                      f"cannot find this driver: attach with releasedeck attach {attach}"]
    assert any(json.loads(line)["event"] == "started" for line in done.stdout.splitlines())


def test_the_warning_event_is_valid_and_said_once_on_stderr(tmp_path: Path) -> None:
    """What `Session.start` emits for such a lease, through the headless printer."""

    line = "lease x.lock: cannot write who drives (File too large); the lease is held and the " \
        "release goes on, but other screens cannot find this driver"
    event = Event(at=1.0, release="checkout", event="lease_details_failed", severity="warning",
                  details={"lease": "x.lock", "error": line, "attach": "http://127.0.0.1:1",
                           "reason": f"{line}: attach with releasedeck attach http://127.0.0.1:1"})
    out, err = tmp_path / "out", tmp_path / "err"
    with out.open("w") as o, err.open("w") as e:
        EventPrinter(o, e).on_event(event)
    schema = json.loads((ROOT / "tui" / "schemas" / "events.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(json.loads(out.read_text()))
    assert err.read_text().splitlines() == [
        f"releasedeck: warning: {line}: attach with releasedeck attach http://127.0.0.1:1"]


def test_a_demos_journal_failure_does_not_say_run_again_to_resume(tmp_path: Path) -> None:
    path = tmp_path / "demo.journal"
    writer = JournalWriter(path, resumable=False)
    writer({"kind": "started"})
    path.unlink()
    path.mkdir()  # the journal's path is now a folder: nothing can be written there
    with pytest.raises(JournalError) as caught:
        writer({"kind": "step"})
    writer.close()
    assert caught.value.line.endswith(
        "nothing more is decided or done: this run cannot be resumed (its journal is deleted "
        "on exit)")
    assert "run again" not in caught.value.line


def demo_args(**given: object) -> argparse.Namespace:
    args = {"spec": None, "strategy": "canary", "prometheus": None, "with_prometheus": False,
            "targets_file": DEFAULT_TARGETS, **given}
    return argparse.Namespace(**args)


def test_demos_on_one_prometheus_with_different_targets_files_are_different_releases(
        tmp_path: Path) -> None:
    url = "http://127.0.0.1:9"
    names = {_load(demo_args(prometheus=url, targets_file=str(tmp_path / f"{n}.json")), url,
                   tmp_path).release.service for n in ("a", "b")}
    assert len(names) == 2 and all(n.startswith("checkout-") for n in names)
    again = _load(demo_args(prometheus=url, targets_file=str(tmp_path / "a.json")), url, tmp_path)
    assert again.release.service in names  # the same file names the same release (its lease)
    assert _load(demo_args(prometheus=url), url, tmp_path).release.service == "checkout"
    assert _load(demo_args(), None, tmp_path).release.service == "checkout"
    assert _load(demo_args(with_prometheus=True, targets_file=str(tmp_path / "a.json")), url,
                 tmp_path).release.service == "checkout"  # its own Prometheus: nothing shared


def test_a_written_holder_replaces_a_longer_stale_one_whole(tmp_path: Path) -> None:
    """The details are written over the file's, then cut to length: a killed driver's longer
    details leave nothing behind them."""
    lock = tmp_path / "j.lock"
    lock.write_text(Holder("checkout", "h" * 500, 999999, "old", 1.0).to_json() + "\n")
    lease = FileLease(lock, "checkout")
    asyncio.run(lease.acquire(Holder.me("checkout", 1.0)))
    try:
        assert lease.unsaid() == ""
        assert lock.read_text() == Holder.me("checkout", 1.0).to_json() + "\n"
        assert asyncio.run(FileLease(lock, "checkout").holder()) == Holder.me("checkout", 1.0)
    finally:
        asyncio.run(lease.release())
