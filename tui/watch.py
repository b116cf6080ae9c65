"""`releasedeck watch SPEC`: drive (or, with --observe, only watch) the release a spec describes.

With --headless it runs without a screen (tui.headless); otherwise it opens the app (tui.app)
over the same driver, alert dispatcher and journal. Either way
it resumes the journal's last run of this release unless --fresh, so a restarted watch never
repeats an action. --observe keeps no journal at all: it never acts, so it has nothing to keep.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import sys
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

from collectors.alerts import AlertDispatcher, build_dispatcher
from collectors.lease import LeaseError, LeaseHeld
from collectors.webhooks import WebhookChecks
from strategies.engine import Engine, PlanChanged
from strategies.journal import JournalWriter, MemoryJournal, last_run, read_records
from strategies.model import Viewing, ViewMode
from strategies.plans import build_plan
from strategies.ports import MetricSource, Platform, TrafficRouter
from strategies.spec import ReleaseSpec, SpecError, load_spec
from tui import exitcodes
from tui.driver import Driver
from tui.follow import LeaseLocator
from tui.headless import Until, outcome_code, run_headless_async
from tui.runinfo import RunInfo
from tui.seat import Seat, ServeOptions, driver_seat, lease_for
from tui.signals import exit_on_signals


@dataclass
class Wired:
    """A driver with everything around it that must be closed at the end."""

    driver: Driver
    alerts: AlertDispatcher
    journal: Any
    closers: list[Any] = field(default_factory=list)


def wire(spec: ReleaseSpec, adapters: tuple[Platform | None, TrafficRouter | None, MetricSource],
         *, observe: bool = False, read_only: bool = False, journal_path: str | None = None,
         fresh: bool = False, adopt_spec: bool = False, out: TextIO | None = None, err: TextIO | None = None,
         clock: Any = None, alert_backoff: float = 0.5) -> Wired:
    """Engine (resumed from the journal), driver, webhook checks and alert dispatcher."""
    err = err if err is not None else sys.stderr
    platform, router, source = adapters
    records: list[dict[str, Any]] = []
    journal: Any
    if observe:
        journal = MemoryJournal()
    else:
        path = journal_path or str(spec.journal_path())
        read = read_records(path)
        for problem in read.problems:
            print(f"releasedeck: warning: {problem}", file=err)
        if not fresh:
            release = spec.release
            records = last_run(read.records, release.service, release.baseline, release.candidate)
        journal = JournalWriter(path)
    try:
        engine = Engine(spec, read_only=read_only or observe, observe=observe, journal=journal,
                        records=records, adopt_spec=adopt_spec)
    except PlanChanged:
        journal.close()
        raise
    checks = WebhookChecks(spec, engine) if spec.webhooks and not observe else None
    kwargs: dict[str, Any] = {"checks": checks,
                              "journal_path": "" if observe else str(journal.path)}
    if clock is not None:
        kwargs["clock"] = clock
    driver = Driver(spec, engine, platform, router, source, **kwargs)
    alerts = build_dispatcher(spec, emit=driver.emit, acting=not observe, stream=out,
                              backoff=alert_backoff)
    driver.add_listener(alerts)
    wired = Wired(driver, alerts, journal)
    if checks is not None:
        checks.emit = driver.emit
        wired.closers.append(checks)
    return wired


def watch_command(args: argparse.Namespace, *, out: TextIO | None = None,
                  err: TextIO | None = None, adapters: Any = None) -> int:
    """The CLI entry. `adapters` lets tests pass in-process adapters instead of the spec's."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        spec = load_spec(args.spec)
    except SpecError as exc:
        for line in exc.lines():
            print(line, file=err)
        return exitcodes.USAGE
    headless = bool(getattr(args, "headless", False))
    observe = bool(getattr(args, "observe", False))
    until = getattr(args, "until", "done") or "done"
    if headless:
        try:  # usage errors before anything is started
            goal = Until.parse(until, len(build_plan(spec).steps))
        except ValueError as exc:
            print(f"releasedeck: {exc}", file=err)
            return exitcodes.USAGE
        if observe and goal.kind != "done":
            print("releasedeck: --until does not apply with --observe; use --timeout", file=err)
            return exitcodes.USAGE
    changed = _plan_changed(spec, args, observe)
    if changed:  # before anything is started: a changed plan is a usage decision to make
        print(f"releasedeck: {changed}", file=err)
        return exitcodes.USAGE
    try:
        serve = ServeOptions.from_args(getattr(args, "serve", None), getattr(args, "token_file", None))
    except ValueError as exc:
        print(f"releasedeck: {exc}", file=err)
        return exitcodes.USAGE
    record = getattr(args, "record", None)
    recorder = _recorder(record, spec, err) if record else None
    if record and recorder is None:
        return exitcodes.USAGE
    try:
        return asyncio.run(_watch(spec, args, adapters, recorder, headless=headless,
                                  observe=observe, until=until, out=out, err=err, serve=serve))
    except KeyboardInterrupt:
        return exitcodes.ROLLED_BACK


def _plan_changed(spec: ReleaseSpec, args: argparse.Namespace, observe: bool) -> str:
    """The one-line refusal when the journal's run walked another plan (and no --adopt-spec)."""
    if observe or getattr(args, "fresh", False) or getattr(args, "adopt_spec", False):
        return ""
    path = getattr(args, "journal", None) or str(spec.journal_path())
    release = spec.release
    records = last_run(read_records(path).records, release.service, release.baseline,
                       release.candidate)
    try:
        Engine(spec, records=records)
    except PlanChanged as exc:
        return str(exc)
    return ""


async def _watch(spec: ReleaseSpec, args: argparse.Namespace, adapters: Any, recorder: Any, *,
                 headless: bool, observe: bool, until: str, out: TextIO, err: TextIO,
                 serve: ServeOptions | None = None) -> int:
    """Take the driver's seat (or follow whoever has it) before anything is started."""
    read_only = bool(getattr(args, "read_only", False))
    seat: Seat | None = None
    viewing: Viewing | None = None
    if not observe:
        try:
            lease = lease_for(spec, getattr(args, "journal", None))
            holder = await lease.holder() if read_only else None
        except LeaseError as exc:
            print(str(exc), file=err)
            return exitcodes.UNREACHABLE
        if read_only and holder is not None:  # somebody drives: show their screen
            from tui.attach import follow

            return await follow(LeaseLocator(lease, spec.path), args, out=out, err=err,
                                release=spec.release.service)
        if read_only:  # nobody drives: gates only, no actions, and the screen says so
            observe = True
            viewing = Viewing(ViewMode.OBSERVE, note=f"nobody drives {spec.release.service}: "
                                                     "observing (gates only, no actions)")
    async with contextlib.AsyncExitStack() as resources:
        if not observe:
            try:
                seat = await resources.enter_async_context(
                    driver_seat(spec, lease, serve or ServeOptions()))
            except LeaseHeld as exc:
                print(exc.line(), file=err)
                return exitcodes.LEASE_HELD
            except (LeaseError, OSError) as exc:
                print(f"releasedeck: {str(exc).removeprefix('releasedeck: ')}", file=err)
                return exitcodes.UNREACHABLE
        code = await _drive(spec, args, adapters, recorder, resources, headless=headless,
                            observe=observe, until=until, out=out, err=err, seat=seat,
                            viewing=viewing)
        if seat is not None:
            if seat.lease.lost():
                print(f"releasedeck: stopped driving: {seat.lease.lost()}", file=err)
                code = exitcodes.LEASE_HELD
            seat.code = code
        return code
    return exitcodes.USAGE  # unreachable: the block above always returns


async def _drive(spec: ReleaseSpec, args: argparse.Namespace, adapters: Any, recorder: Any,
                 resources: contextlib.AsyncExitStack, *, headless: bool, observe: bool, until: str,
                 out: TextIO, err: TextIO, seat: Seat | None, viewing: Viewing | None) -> int:
    where: dict[str, str] = {}  # the local stack's router address and log dir, for the app's `i`
    if adapters is None:
        from tui.wiring import AdapterUnavailable, build_adapters, build_source

        try:
            if spec.platform.kind == "local":
                # Local processes are ours to run: the same stack as the demo, with load.
                from collectors.local.stack import LocalStack, LocalStackError

                try:
                    stack = await resources.enter_async_context(LocalStack(spec))
                except LocalStackError as exc:
                    print(f"releasedeck: {exc}", file=err)
                    return exitcodes.UNREACHABLE
                adapters = (stack.platform, stack.lever, build_source(spec))
                where = {"router": stack.url, "logs": str(stack.platform.log_dir)}
            else:
                adapters = build_adapters(spec)
        except AdapterUnavailable as exc:
            print(f"releasedeck: {exc}", file=err)
            return exitcodes.USAGE
    try:
        wired = wire(spec, adapters, observe=observe,
                     read_only=bool(getattr(args, "read_only", False)),
                     journal_path=getattr(args, "journal", None),
                     fresh=bool(getattr(args, "fresh", False)),
                     adopt_spec=bool(getattr(args, "adopt_spec", False)),
                     out=out if headless else None, err=err)
    except PlanChanged as exc:
        print(f"releasedeck: {exc}", file=err)
        await _close_all(adapters)
        return exitcodes.USAGE
    except OSError as exc:  # e.g. the journal cannot be written
        print(f"releasedeck: cannot open the journal: {exc}", file=err)
        await _close_all(adapters)
        return exitcodes.USAGE
    resources.callback(wired.journal.close)
    if seat is not None:
        wired.driver.add_listener(seat.server)
        wired.driver.lease = seat.lease
    wired.driver.viewing = viewing
    wired.driver.state = replace(wired.driver.state, viewing=viewing)
    if recorder is not None:
        wired.driver.add_listener(recorder)
        wired.closers.append(recorder)
    if headless:
        return await run_headless_async(
            wired.driver, until=until, timeout=getattr(args, "timeout", None), out=out,
            err=err, observe=observe, alerts=wired.alerts, closers=tuple(wired.closers),
            halt=seat.lease.lost if seat is not None else None)
    journal = "" if observe else str(getattr(args, "journal", None) or spec.journal_path())
    info = RunInfo(spec_text=_read(spec.path), spec_origin=str(args.spec),
                   router=where.get("router", ""), logs=where.get("logs", ""),
                   journal=journal, resume_hint=f"releasedeck watch {args.spec}")
    return await _interactive(wired, args, err, seat, info)


async def _close_all(parts: Any) -> None:
    for part in parts:
        if part is not None:
            with contextlib.suppress(Exception):
                result = part.close()
                if inspect.isawaitable(result):
                    await result


def _recorder(path: str, spec: ReleaseSpec, err: TextIO) -> Any:
    """--record: the trace writer (tui.recorder); None with a one-line message if it cannot."""
    try:
        from tui.recorder import TraceRecorder
    except ImportError:
        print("releasedeck: --record is not available in this build", file=err)
        return None
    try:
        return TraceRecorder(path, spec.release.service)
    except OSError as exc:
        print(f"releasedeck: --record {path}: cannot write ({exc.strerror or exc})", file=err)
        return None


def _read(path: str) -> str:
    try:
        return open(path, encoding="utf-8").read()
    except OSError:
        return ""


async def _interactive(wired: Wired, args: argparse.Namespace, err: TextIO,
                       seat: Seat | None = None, info: RunInfo | None = None) -> int:
    """The Textual app over the same driver, alerts and journal as headless."""
    from tui.app import ReleaseApp
    from tui.headless import start_adapters

    driver = wired.driver
    failed = await start_adapters(driver)
    try:
        if failed:
            print(f"releasedeck: {failed}", file=err)
            return exitcodes.UNREACHABLE
        wallboard = bool(getattr(args, "wallboard", False))
        app = ReleaseApp(driver, read_only=bool(getattr(args, "read_only", False)) or wallboard,
                         wallboard=wallboard, refresh=float(getattr(args, "refresh", 1.0) or 1.0),
                         info=info)
        with exit_on_signals(app):
            await app.run_async()
        if app.summary:
            print(app.summary, file=err)
        return app.return_code or outcome_code(driver)
    finally:
        await wired.alerts.close(5.0)
        await _close_all(wired.closers)
        await driver.close()
