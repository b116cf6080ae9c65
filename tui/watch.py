"""`releasedeck watch SPEC`: drive (or, with --observe, only watch) the release a spec describes.

With --headless it runs without a screen (tui.headless); otherwise it opens the app. Either way
it resumes the journal's last run of this release unless --fresh, so a restarted watch never
repeats an action. --observe keeps no journal at all: it never acts, so it has nothing to keep.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from collectors.alerts import AlertDispatcher, build_dispatcher
from collectors.webhooks import WebhookChecks
from strategies.engine import Engine
from strategies.journal import JournalWriter, MemoryJournal, last_run, read_records
from strategies.plans import build_plan
from strategies.ports import MetricSource, Platform, TrafficRouter
from strategies.spec import ReleaseSpec, SpecError, load_spec
from tui import exitcodes
from tui.driver import Driver
from tui.headless import Until, run_headless


@dataclass
class Wired:
    """A driver with everything around it that must be closed at the end."""

    driver: Driver
    alerts: AlertDispatcher
    journal: Any
    closers: list[Any] = field(default_factory=list)


def wire(spec: ReleaseSpec, adapters: tuple[Platform | None, TrafficRouter | None, MetricSource],
         *, observe: bool = False, read_only: bool = False, journal_path: str | None = None,
         fresh: bool = False, out: TextIO | None = None, err: TextIO | None = None,
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
    engine = Engine(spec, read_only=read_only or observe, observe=observe, journal=journal,
                    records=records)
    checks = WebhookChecks(spec, engine) if spec.webhooks and not observe else None
    extra: dict[str, Any] = {"observe": observe, "resumed": engine.resumed}
    kwargs: dict[str, Any] = {"checks": checks, "extra": extra}
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
    if not getattr(args, "headless", False):
        return _interactive(spec, args, err)
    observe = bool(getattr(args, "observe", False))
    until = getattr(args, "until", "done") or "done"
    try:  # usage errors before anything is started
        goal = Until.parse(until, len(build_plan(spec).steps))
    except ValueError as exc:
        print(f"releasedeck: {exc}", file=err)
        return exitcodes.USAGE
    if observe and goal.kind != "done":
        print("releasedeck: --until does not apply with --observe; use --timeout", file=err)
        return exitcodes.USAGE
    record = getattr(args, "record", None)
    recorder = _recorder(record, spec, err) if record else None
    if record and recorder is None:
        return exitcodes.USAGE
    if adapters is None:
        from tui.wiring import AdapterUnavailable, build_adapters

        try:
            adapters = build_adapters(spec)
        except AdapterUnavailable as exc:
            print(f"releasedeck: {exc}", file=err)
            return exitcodes.USAGE
    try:
        wired = wire(spec, adapters, observe=observe,
                     read_only=bool(getattr(args, "read_only", False)),
                     journal_path=getattr(args, "journal", None),
                     fresh=bool(getattr(args, "fresh", False)), out=out, err=err)
    except OSError as exc:  # e.g. the journal cannot be written
        print(f"releasedeck: cannot open the journal: {exc}", file=err)
        asyncio.run(_close_all(adapters))
        return exitcodes.USAGE
    if recorder is not None:
        wired.driver.add_listener(recorder)
        wired.closers.append(recorder)
    try:
        return run_headless(wired.driver, until=until,
                            timeout=getattr(args, "timeout", None), out=out, err=err,
                            observe=observe, alerts=wired.alerts, closers=tuple(wired.closers))
    finally:
        wired.journal.close()


async def _close_all(parts: Any) -> None:
    for part in parts:
        if part is not None:
            with contextlib.suppress(Exception):
                await part.close()


def _recorder(path: str, spec: ReleaseSpec, err: TextIO) -> Any:
    """--record: the trace writer (tui.record, another module); None with a message if absent."""
    try:
        from tui.record import TraceRecorder  # type: ignore[import-not-found]
    except ImportError:
        print("releasedeck: --record is not available in this build", file=err)
        return None
    return TraceRecorder(path, spec)


def _interactive(spec: ReleaseSpec, args: argparse.Namespace, err: TextIO) -> int:
    # HOOK (interactive path): the Textual app is written elsewhere (tui.app.ReleaseApp);
    # the lead wires its constructor here at merge. Until then this says so plainly.
    try:
        from tui.app import ReleaseApp  # type: ignore[import-not-found]
    except ImportError:
        print("releasedeck: the interactive app is not available in this build; "
              "use --headless", file=err)
        return exitcodes.USAGE
    app = ReleaseApp(spec, args)  # the lead adjusts this call at merge
    result = app.run()
    return int(result) if isinstance(result, int) else exitcodes.PROMOTED
