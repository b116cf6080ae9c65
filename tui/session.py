"""One function assembles a run: `assemble(spec, adapters, options)` → a `Session`.

`watch`, `demo`, `replay` and the headless runner all build their run here, so what a run is
made of — journal (resumed unless fresh), engine, driver, webhook gates, alert dispatcher, trace
recorder, listeners, lease — is decided once, and `demo --spec` honours `[[alert]]`,
`[[webhook]]` and `--record` exactly as `watch` does. The session owns its parts: `start()`
starts the adapters that need the running loop, `close()` flushes alerts and closes everything
it built, in order, whatever happened before.

Where the other parts plug in:
- the seat (`tui.seat.take_seat`: the release's lease, taken before anything starts, and the
  state server followers read): `RunOptions.seat`. The run's driver moves no lever once the
  lease is lost, the server follows every published State, `Session.halt()` says why the run
  must stop, and `Session.conclude()` turns a lost lease into exit 4 and tells followers the
  exit code. `watch` and `demo` both hand their seat over here, so they share one path;
- anything else that follows the published State (a wallboard feed):
  `Session.add_listener` with a `StateListener` (`strategies.ports`).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TextIO

from collectors.alerts import AlertDispatcher, build_dispatcher
from collectors.webhooks import WebhookChecks
from strategies.engine import Engine
from strategies.journal import (
    FORMAT,
    JournalWriter,
    MemoryJournal,
    NotAJournal,
    last_run,
    newer_format,
    read_records,
)
from strategies.model import Viewing
from strategies.ports import Listener, MetricSource, Startable
from strategies.spec import ReleaseSpec
from tui import exitcodes
from tui.driver import Driver, describe_error
from tui.events_out import say
from tui.recorder import TraceRecorder
from tui.seat import Seat
from tui.wiring import Adapters

log = logging.getLogger("releasedeck.session")

FLUSH_TIMEOUT = 10.0  # seconds queued alerts get to go out when a run ends


class SessionError(Exception):
    """A run cannot be assembled (a path that is not a journal, a journal of a newer
    releasedeck, a trace that cannot be written): one line, and `code` to exit with."""

    code = exitcodes.USAGE


class JournalUnavailable(SessionError):
    """The journal cannot be read or written (permissions, a read-only or full filesystem):
    nothing was started. Exit 3, as when it fails mid-release: the run cannot persist, which
    no change to the command line fixes."""

    code = exitcodes.UNREACHABLE


def journal_problem(path: str, doing: str, exc: OSError) -> str:
    """One line naming the file the OS refused (the journal, or its `.torn` beside it) and why."""
    return (f"journal {exc.filename or path}: cannot {doing} ({exc.strerror or exc}); "
            "the release was not started")


@dataclass(frozen=True)
class RunOptions:
    """How a run behaves; every surface sets these from its flags."""

    observe: bool = False  # evaluate gates, never act; keeps no journal file
    read_only: bool = False  # refuse every command
    journal_path: str | None = None  # None: the spec's journal (next to the spec)
    memory_journal: bool = False  # keep decisions in memory (replays, tests)
    fresh: bool = False  # start a new run instead of resuming the journal's last one
    adopt_spec: bool = False  # resume a run whose plan changed, at the matching step
    reconcile: bool = True  # re-apply levers that drifted (a replay's levers are open loop)
    run_id: str | None = None
    demo: bool = False
    webhooks: bool = True  # call the spec's [[webhook]] gates (a replay does not)
    alerts: bool = True  # deliver the spec's [[alert]]s (a replay does not)
    alert_stream: TextIO | None = None  # where a stdout sink writes (headless: the event stream)
    alert_backoff: float = 0.5
    history_seconds: float = 300.0
    seat: Seat | None = None  # the driver's seat (tui.seat.take_seat): lease + state server
    viewing: Viewing | None = None  # set when this session observes without driving


@dataclass
class Session:
    """A run, assembled: what it is made of, and the one place it is started and closed."""

    spec: ReleaseSpec
    adapters: Adapters
    options: RunOptions
    journal: JournalWriter | MemoryJournal
    engine: Engine
    driver: Driver
    webhooks: WebhookChecks | None
    alerts: AlertDispatcher | None
    recorder: TraceRecorder | None
    _closed: bool = False
    _unsaid_said: bool = False

    @property
    def observe(self) -> bool:
        return self.options.observe

    def add_listener(self, listener: Listener) -> None:
        self.driver.add_listener(listener)

    def halt(self) -> str:
        """Why this run must stop at once ("" while it may go on): its lease was lost."""
        seat = self.options.seat
        return seat.lease.lost() if seat is not None else ""

    def conclude(self, code: int, err: TextIO) -> int:
        """The run's exit code, once it ended: 4 (one line on `err`) when the lease was lost;
        the seat's server tells followers this code when it closes."""
        seat = self.options.seat
        if seat is None:
            return code
        lost = seat.lease.lost()
        if lost:
            say(err, f"releasedeck: stopped driving: {lost}")  # a closed stderr keeps the code
            code = exitcodes.LEASE_HELD
        seat.code = code
        return code

    async def start(self) -> str:
        """Start the adapters that need the running loop (idempotent). "" or one line saying
        which part could not start."""
        self._say_unsaid_lease()
        for part in (self.adapters.platform, self.adapters.router, self.adapters.source):
            if not isinstance(part, Startable):
                continue
            try:
                await part.start()
            except Exception as exc:
                name = part.name if isinstance(part, MetricSource) else part.kind
                return f"could not start {name}: {describe_error(exc)}"
        return ""

    def _say_unsaid_lease(self) -> None:
        """A lease held whose holder's details the disk refused: said once (a warning event;
        headless also says it on stderr) with the address other screens cannot read there."""
        seat = self.options.seat
        unsaid = seat.lease.unsaid() if seat is not None else ""
        if seat is None or not unsaid or self._unsaid_said:
            return
        self._unsaid_said = True
        attach = seat.holder.attach
        self.driver.emit("lease_details_failed", {
            "lease": seat.lease.where, "error": unsaid, "attach": attach,
            "reason": f"{unsaid}: attach with releasedeck attach {attach}" if attach else unsaid},
            severity="warning")

    async def close(self, flush_timeout: float = FLUSH_TIMEOUT) -> None:
        """Deliver queued alerts (bounded), then close webhooks, recorder, adapters, lease and
        journal. Safe to call twice; one part failing to close never stops the others."""
        if self._closed:
            return
        self._closed = True
        if self.alerts is not None:
            await _quietly("alerts", self.alerts.close(flush_timeout))
        if self.webhooks is not None:
            await _quietly("webhooks", self.webhooks.close())
        if self.recorder is not None:
            try:
                self.recorder.close()
            except OSError as exc:
                log.warning("closing the trace failed: %s", describe_error(exc))
        await self.adapters.close()
        self.journal.close()


async def _quietly(what: str, closing: Any) -> None:
    try:
        await asyncio.wait_for(closing, timeout=FLUSH_TIMEOUT + 5.0)
    except Exception as exc:
        log.warning("closing %s failed: %s", what, describe_error(exc))


def open_recorder(path: str, service: str) -> TraceRecorder:
    """--record FILE, opened before anything starts; SessionError (one line) if it cannot be."""
    try:
        return TraceRecorder(path, service)
    except OSError as exc:
        raise SessionError(f"--record {path}: cannot write ({exc.strerror or exc})") from exc


def _journal(spec: ReleaseSpec, options: RunOptions, err: TextIO
             ) -> tuple[JournalWriter | MemoryJournal, list[dict[str, Any]]]:
    """The journal to write, and the records of the run to resume (none when fresh)."""
    if options.observe or options.memory_journal:
        return MemoryJournal(), []
    path = options.journal_path or str(spec.journal_path())
    try:
        read = read_records(path)
    except NotAJournal as exc:
        raise SessionError(str(exc)) from None
    except OSError as exc:
        raise JournalUnavailable(journal_problem(path, "read", exc)) from None
    for problem in read.problems:
        say(err, f"releasedeck: warning: {problem}")
    records: list[dict[str, Any]] = []
    if not options.fresh:
        release = spec.release
        records = last_run(read.records, release.service, release.baseline, release.candidate)
        newer = newer_format(records)
        if newer is not None:
            raise SessionError(
                f"journal {path}: its last run was written by a newer releasedeck (journal "
                f"format {newer}; this one writes {FORMAT}) and is not resumed here: upgrade "
                "releasedeck, or start a new run with --fresh or another --journal")
    def warn(line: str) -> None:
        say(err, f"releasedeck: warning: {line}")

    try:
        return JournalWriter(path, carry=records, warn=warn, resumable=not options.demo), records
    except OSError as exc:
        raise JournalUnavailable(journal_problem(path, "write", exc)) from None


def assemble(spec: ReleaseSpec, adapters: Adapters, options: RunOptions = RunOptions(), *,
             recorder: TraceRecorder | None = None, listeners: Iterable[Listener] = (),
             clock: Callable[[], float] | None = None, err: TextIO | None = None) -> Session:
    """Build a run from a spec and its adapters. Raises SessionError (one line) when the
    journal cannot be opened, and whatever the engine raises on a journal it cannot resume
    (e.g. a changed plan)."""
    err = err if err is not None else sys.stderr
    journal, records = _journal(spec, options, err)
    try:
        engine = Engine(spec, read_only=options.read_only or options.observe,
                        observe=options.observe, journal=journal, records=records,
                        run=options.run_id, adopt_spec=options.adopt_spec,
                        reconcile=options.reconcile)
    except BaseException:
        journal.close()
        raise
    webhooks = WebhookChecks(spec, engine) if options.webhooks and spec.webhooks \
        and not options.observe else None
    journal_path = str(journal.path) if isinstance(journal, JournalWriter) else ""
    driver = Driver(spec, engine, adapters.platform, adapters.router, adapters.source,
                    clock=clock if clock is not None else time.time,
                    history_seconds=options.history_seconds, checks=webhooks,
                    journal_path=journal_path, demo=options.demo,
                    lease=options.seat.lease if options.seat is not None else None,
                    viewing=options.viewing)
    alerts = None
    if options.alerts:
        alerts = build_dispatcher(spec, emit=driver.emit, acting=not options.observe,
                                  stream=options.alert_stream, backoff=options.alert_backoff)
        if engine.resumed:
            alerts.policy.restore(engine.state)
        driver.add_listener(alerts)
    if webhooks is not None:
        webhooks.emit = driver.emit
    if recorder is not None:
        trace = str(recorder.path)
        recorder.window = recorder.window or spec.metrics.window
        recorder.on_failure = lambda line: driver.emit(
            "record_failed", {"file": trace, "reason": line}, severity="warning")
        driver.add_listener(recorder)
    if options.seat is not None:
        driver.add_listener(options.seat.server)
    for listener in listeners:
        driver.add_listener(listener)
    return Session(spec, adapters, options, journal=journal, engine=engine, driver=driver,
                   webhooks=webhooks, alerts=alerts, recorder=recorder)

