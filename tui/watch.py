"""`releasedeck watch SPEC`: drive (or, with --observe, only watch) the release a spec describes.

With --headless it runs without a screen (tui.headless); otherwise it opens the app (tui.app).
Either way the run is assembled by `tui.session.assemble`, as the demo's is, and
it resumes the journal's last run of this release unless --fresh, so a restarted watch never
repeats an action. --observe keeps no journal at all: it never acts, so it has nothing to keep.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, TextIO

from collectors.lease import LeaseError
from strategies.engine import Engine, PlanChanged
from strategies.journal import NotAJournal, last_run, read_records
from strategies.model import Viewing, ViewMode
from strategies.plans import build_plan
from strategies.spec import ReleaseSpec, SpecError, load_runnable_spec, load_spec
from tui import exitcodes
from tui.attach import follow
from tui.flags import RunFlags
from tui.follow import Handover, LeaseLocator
from tui.headless import Until, outcome_code, run_headless_async
from tui.recorder import TraceRecorder
from tui.runinfo import RunInfo
from tui.seat import Seat, SeatRefused, ServeOptions, lease_for, take_seat
from tui.session import (
    JournalUnavailable,
    RunOptions,
    Session,
    SessionError,
    assemble,
    journal_problem,
    open_recorder,
)
from tui.signals import exit_on_signals
from tui.wiring import Adapters

if TYPE_CHECKING:
    from tui.app.app import ExtraAction


def watch_command(args: argparse.Namespace, *, out: TextIO | None = None,
                  err: TextIO | None = None, adapters: Adapters | None = None) -> int:
    """The CLI entry. `adapters` lets tests pass in-process adapters instead of the spec's."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    flags = RunFlags.of(args)
    try:
        # adapters passed in by code are the caller's business: only the spec's own are refused
        spec = load_runnable_spec(flags.spec) if adapters is None else load_spec(flags.spec)
    except SpecError as exc:
        for line in exc.lines():
            print(line, file=err)
        return exitcodes.USAGE
    headless, observe, until = flags.headless, flags.observe, flags.until
    if headless:
        try:  # usage errors before anything is started
            goal = Until.parse(until, len(build_plan(spec).steps))
        except ValueError as exc:
            print(f"releasedeck: {exc}", file=err)
            return exitcodes.USAGE
        if observe and goal.kind != "done":
            print("releasedeck: --until does not apply with --observe; use --timeout", file=err)
            return exitcodes.USAGE
    code, refused = _plan_changed(spec, flags)
    if refused:  # before anything is started: a changed plan is a usage decision to make
        print(f"releasedeck: {refused}", file=err)
        return code
    try:
        serve = ServeOptions.from_args(flags.serve, flags.token_file)
    except ValueError as exc:
        print(f"releasedeck: {exc}", file=err)
        return exitcodes.USAGE
    try:
        recorder = open_recorder(flags.record, spec.release.service) if flags.record else None
    except SessionError as exc:
        print(f"releasedeck: {exc}", file=err)
        return exitcodes.USAGE
    try:
        return asyncio.run(_watch(spec, flags, adapters, recorder, headless=headless,
                                  observe=observe, until=until, out=out, err=err, serve=serve))
    except KeyboardInterrupt:
        return exitcodes.ROLLED_BACK


def _plan_changed(spec: ReleaseSpec, flags: RunFlags) -> tuple[int, str]:
    """The exit code and one-line refusal when the journal's run walked another plan (and no
    --adopt-spec), or the journal is not one (2) or cannot be read (3); (0, "") otherwise."""
    if flags.observe or flags.fresh or flags.adopt_spec:
        return exitcodes.PROMOTED, ""
    path = flags.journal or str(spec.journal_path())
    release = spec.release
    try:
        read = read_records(path)
    except NotAJournal as exc:
        return exitcodes.USAGE, str(exc)
    except OSError as exc:
        return JournalUnavailable.code, journal_problem(path, "read", exc)
    records = last_run(read.records, release.service, release.baseline, release.candidate)
    try:
        Engine(spec, records=records)
    except PlanChanged as exc:
        return exitcodes.USAGE, str(exc)
    return exitcodes.PROMOTED, ""


async def _watch(spec: ReleaseSpec, flags: RunFlags, adapters: Adapters | None,
                 recorder: TraceRecorder | None, *,
                 headless: bool, observe: bool, until: str, out: TextIO, err: TextIO,
                 serve: ServeOptions | None = None) -> int:
    """Take the driver's seat (or follow whoever has it) before anything is started. A read-only
    session that finds nobody driving observes, and follows the first driver that comes."""
    read_only = flags.read_only
    serve = serve or ServeOptions()
    seat: Seat | None = None
    viewing: Viewing | None = None
    handover: Handover | None = None
    if not observe:
        try:
            lease = lease_for(spec, flags.journal)
            holder = await lease.holder() if read_only else None
        except LeaseError as exc:
            print(str(exc), file=err)
            return exitcodes.UNREACHABLE
        if read_only and holder is not None:  # somebody drives: show their screen
            return await follow(LeaseLocator(lease, spec.path), flags, out=out, err=err,
                                release=spec.release.service)
        if read_only:  # nobody drives: gates only, no actions, and the screen says so
            observe = True
            viewing = Viewing(ViewMode.OBSERVE, note=f"nobody drives {spec.release.service}: "
                                                     "observing (gates only, no actions)")
            handover = Handover(lease, flags.spec, spec.release.service, token=serve.token)
            if headless:  # the app says it in its top bar
                print(f"releasedeck: {viewing.note}; following the first driver that takes "
                      "the lease", file=err)
    async with contextlib.AsyncExitStack() as resources:
        if not observe:
            try:
                seat = await take_seat(resources, spec, lease, serve)
            except SeatRefused as exc:
                print(exc.line, file=err)
                return exc.code
        code = await _drive(spec, flags, adapters, recorder, resources, headless=headless,
                            observe=observe, until=until, out=out, err=err, seat=seat,
                            viewing=viewing, handover=handover)
    if headless and handover is not None and handover.holder is not None:
        # the observing run and its local stack are closed: from here on, the driver's lines
        print(f"releasedeck: {handover.taken()}", file=err)
        return await follow(LeaseLocator(handover.lease, spec.path), flags, out=out, err=err,
                            release=spec.release.service)
    return code


def run_options(flags: RunFlags, *, headless: bool, out: TextIO) -> RunOptions:
    """The run a command line asks for (watch and demo share these flags)."""
    return RunOptions(
        observe=flags.observe, read_only=flags.read_only, journal_path=flags.journal,
        fresh=flags.fresh, adopt_spec=flags.adopt_spec,
        alert_stream=out if headless else None)  # a stdout sink must not draw over the app


async def _drive(spec: ReleaseSpec, flags: RunFlags, adapters: Adapters | None,
                 recorder: TraceRecorder | None, resources: contextlib.AsyncExitStack, *,
                 headless: bool, observe: bool, until: str, out: TextIO, err: TextIO,
                 seat: Seat | None, viewing: Viewing | None,
                 handover: Handover | None = None) -> int:
    where: dict[str, str] = {}
    if adapters is None:
        from collectors.local.stack import LocalStackError
        from tui.wiring import AdapterUnavailable, open_adapters

        try:
            adapters, stack = await open_adapters(spec, resources)
            if stack is not None:  # the local stack: its router and logs, for the app's `i`
                where = {"router": stack.url, "logs": str(stack.platform.log_dir)}
        except LocalStackError as exc:
            print(f"releasedeck: {exc}", file=err)
            return exitcodes.UNREACHABLE
        except AdapterUnavailable as exc:
            print(f"releasedeck: {exc}", file=err)
            return exitcodes.USAGE
    options = replace(run_options(flags, headless=headless, out=out), observe=observe,
                      seat=seat, viewing=viewing)
    try:
        session = assemble(spec, adapters, options, recorder=recorder, err=err)
    except (PlanChanged, SessionError) as exc:
        print(f"releasedeck: {exc}", file=err)
        await adapters.close()
        if recorder is not None:
            recorder.close()
        return exc.code if isinstance(exc, SessionError) else exitcodes.USAGE
    if headless:
        return await _headless(session, flags, until=until, out=out, err=err, handover=handover)
    journal = "" if observe else str(flags.journal or spec.journal_path())
    info = RunInfo(spec_text=_read(spec.path), spec_origin=flags.spec,
                   router=where.get("router", ""), logs=where.get("logs", ""),
                   journal=journal, resume_hint=f"releasedeck watch {flags.spec}",
                   fleet=flags.fleet, read_journal=(flags.journal or "") if observe else "")
    if handover is not None:
        async def stop_observing() -> None:  # the screen follows now: end this run, its stack
            await session.close(5.0)
            await resources.aclose()

        handover.on_taken = stop_observing
    return await interactive(session, flags, err, info=info, handover=handover)


async def _headless(session: Session, flags: RunFlags, *, until: str, out: TextIO,
                    err: TextIO, handover: Handover | None) -> int:
    """The headless run; an observing one stops at its next tick once a driver takes the lease."""
    waiting = asyncio.create_task(handover.wait()) if handover is not None else None
    try:
        return await run_headless_async(
            session, until=until, timeout=flags.timeout, out=out, err=err,
            halt=handover.taken if handover is not None else None)
    finally:
        if waiting is not None:
            waiting.cancel()


def _read(path: str) -> str:
    try:
        return open(path, encoding="utf-8").read()
    except OSError:
        return ""


async def interactive(session: Session, flags: RunFlags, err: TextIO,
                      extra_actions: Mapping[str, ExtraAction] | None = None, *,
                      info: RunInfo | None = None,
                      extra_available: Mapping[str, Callable[[], bool]] | None = None,
                      handover: Handover | None = None) -> int:
    """The Textual app over an assembled run (watch and demo alike); closes the run after.
    The app closes itself when the run's lease is lost (exit 4); an observing app given a
    `handover` follows the first driver that takes the lease."""
    from tui.app import ReleaseApp

    driver = session.driver
    failed = await session.start()
    try:
        if failed:
            print(f"releasedeck: {failed}", file=err)
            return exitcodes.UNREACHABLE
        app = ReleaseApp(driver, read_only=flags.read_only, wallboard=flags.wallboard,
                         refresh=flags.refresh,
                         extra_actions=extra_actions, info=info, extra_available=extra_available,
                         handover=handover)
        with exit_on_signals(app):
            await app.run_async()
        if handover is not None and handover.holder is not None:  # said in a toast meanwhile
            print(f"releasedeck: {handover.taken()}", file=err)
        if app.summary:  # one line, as headless prints
            print(app.summary, file=err)
        if driver.journal_failed and driver.journal_failed not in (app.summary or ""):
            print(f"releasedeck: {driver.journal_failed}", file=err)  # the shell is told too
        return session.conclude(app.return_code or outcome_code(driver), err)
    finally:
        await session.close(5.0)
