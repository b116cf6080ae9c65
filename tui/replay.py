"""`releasedeck replay SPEC TRACE`: backtest a release spec's gates on a recorded trace.

The trace's raw counters (or, where the recorder kept them, the samples the live engine judged)
go through the live metric computation, Driver and Engine, ticked at each collection's own
timestamp as fast as the CPU allows, with a memory journal. Levers are open loop: accepted, and
taking the time they took live where the trace recorded their outcome on the same tick; the
traffic is what was recorded. An operator's recorded commands are given again at their moments.
Output is the headless one: JSON-line events on `out`, problems on `err`, and the exit code.

Exit codes, as headless: 0 promoted; 1 rolled back or aborted, and also 1 when the trace ends
before the release finished (like a headless --timeout: not promoted; `--summary` says
"incomplete" and the phase it stopped in); 2 spec or trace error (unreadable file, no usable
counters line); 3 when metrics were missing or stale for longer than headless tolerates
(UNREACHABLE_FACTOR x stale_after; or stale_after when the trace ends). One human line on `err`
at the end says how it went, in headless' words.
Ticks follow the recorded "tick" lines (failed collections included) when the trace has them;
otherwise each collection is a tick and gaps of two intervals or more are ticked every
metrics.interval as failed collections, so staleness and delays run as they did live.
Webhook checks are not called during a replay.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from collectors.replay_adapters import (
    Collection,
    LeverLog,
    Tick,
    TraceClock,
    TraceMetricSource,
    TracePlatform,
    TraceRouter,
    stream_timeline,
    timeline,
)
from strategies.engine import TRANSITIONS, Engine
from strategies.model import Command, CommandKind, Event, State, rfc3339
from strategies.ports import Listener
from strategies.spec import ReleaseSpec, SpecError, load_spec
from strategies.trace import (
    Item,
    TraceCommand,
    TraceFormatError,
    TraceLever,
    TraceScan,
    TraceTick,
    scan_trace,
    time_ordered,
)
from tui import exitcodes
from tui.driver import Driver
from tui.events_out import EventPrinter
from tui.headless import UNREACHABLE_FACTOR, Unreachable
from tui.headless import summary as headless_line
from tui.session import RunOptions, assemble
from tui.wiring import Adapters


@dataclass
class GateTimes:
    first_failure: float | None = None
    first_breach: float | None = None
    failures: int = 0  # times the gate went from another status to fail
    last_status: str = "unknown"
    evidence: dict[str, Any] = field(default_factory=dict)  # the last tick's, as on screen


EVIDENCE_KEYS = ("test", "estimate", "low", "high", "bound", "scale", "toward_fail",
                 "toward_pass", "samples", "confidence", "require", "note")
"""What the summary keeps of each gate's last evidence: the numbers the gates panel shows."""


@dataclass
class SummaryListener:
    """Collects what the summary reports, relative to the trace start."""

    start: float
    decisions: list[dict[str, Any]] = field(default_factory=list)
    gates: dict[str, GateTimes] = field(default_factory=dict)
    unreachable: Unreachable = field(default_factory=Unreachable)  # headless' exit-3 rule

    def _t(self, at: float) -> float:
        return round(at - self.start, 3)

    def on_event(self, event: Event) -> None:
        details = event.details
        if event.event in TRANSITIONS:
            actor = str(details.get("actor", ""))
            entry: dict[str, Any] = {
                "t": self._t(event.at), "event": event.event, "phase": details.get("phase"),
                "step": details.get("step"), "weight": details.get("weight"), "actor": actor,
                "reason": details.get("reason", ""),
            }
            if actor.startswith("gate:"):
                entry["gate"] = actor.removeprefix("gate:")
            self.decisions.append(entry)
        elif event.event == "gate":
            evidence = (details.get("evidence") or [{}])[0]
            name = str(evidence.get("gate", details.get("gate", "")))
            times = self.gates.setdefault(name, GateTimes())
            times.last_status = str(evidence.get("status", "unknown"))
            if times.last_status == "fail":
                times.failures += 1
                if times.first_failure is None:
                    times.first_failure = self._t(event.at)

    def unreachable_for(self, now: float) -> float:
        return self.unreachable.unreachable_for(now)

    def on_state(self, state: State) -> None:
        self.unreachable.observe(state)
        for gate in state.gates:
            times = self.gates.setdefault(gate.name, GateTimes())
            if gate.breached and times.first_breach is None:
                times.first_breach = self._t(state.at)
            shown = gate.evidence()
            times.evidence = {key: shown[key] for key in EVIDENCE_KEYS if key in shown}


@dataclass
class ReplayRun:
    engine: Engine
    driver: Driver
    ticks: int = 0
    failed_ticks: int = 0  # ticks without counters (failed live collections, gaps)
    last_at: float = 0.0  # trace time of the last tick replayed
    stopped: str = ""  # "unreachable" when replay stopped as headless would have
    levers: LeverLog | None = None  # how many levers took their recorded time
    commands: int = 0  # operator commands given again


async def replay_timeline(spec: ReleaseSpec, ticks: Iterable[Tick],
                          *, listeners: Sequence[Listener] = (),
                          watch: SummaryListener | None = None) -> ReplayRun:
    """Tick the live Driver along the timeline on the trace's clock; stop once finished, or
    (given a `watch`) once metrics were unreachable as long as headless would stand.
    `ticks` is consumed only as far as the replay goes (it may be a stream)."""
    ticks = iter(ticks)
    first = next(ticks)
    clock = TraceClock(first.engine_at)
    levers = LeverLog(clock)
    source, platform = TraceMetricSource(spec), TracePlatform(spec, levers)
    router = TraceRouter(spec, levers)
    options = RunOptions(memory_journal=True, run_id="replay", reconcile=False, webhooks=False,
                         alerts=False, history_seconds=spec.metrics.window)
    session = assemble(spec, Adapters(platform, router, source), options, listeners=listeners,
                       clock=clock)
    engine, driver = session.engine, session.driver
    run = ReplayRun(engine, driver, last_at=clock.now, levers=levers)
    limit = UNREACHABLE_FACTOR * spec.metrics.stale_after
    try:
        for tick in itertools.chain((first,), ticks):
            run.commands += await _commands(driver, clock, tick)
            # Never back: a hand-edited `decided` before the last tick's must not run time back.
            clock.now = run.last_at = max(clock.now, tick.engine_at)
            for part in (source, platform, router):
                part.feed(tick.collection)
            levers.feed(tick.levers)
            await driver.tick()
            run.ticks += 1
            run.failed_ticks += tick.collection is None
            if engine.finished:
                break
            if watch is not None and watch.unreachable_for(clock.now) > limit:
                run.stopped = "unreachable"
                break
        return run
    finally:
        await session.close()


async def _commands(driver: Driver, clock: TraceClock, tick: Tick) -> int:
    """The operator's commands the live run carried out before this tick decided, given again
    at their recorded moments (one that no longer fits is refused, as live would have)."""
    for recorded in tick.commands:
        clock.now = max(clock.now, recorded.at)
        await driver.command(Command(CommandKind(recorded.kind), value=recorded.value,
                                     actor=recorded.actor, reason=recorded.reason))
    return len(tick.commands)


async def replay_collections(spec: ReleaseSpec, collections: Sequence[Collection], *,
                             listeners: Sequence[Any] = ()) -> ReplayRun:
    """Replay collections without tick lines (gaps ticked every interval as failures)."""
    return await replay_timeline(spec, timeline(collections, (), spec.metrics.interval),
                                 listeners=listeners)


def _outcome(spec: ReleaseSpec, run: ReplayRun, watch: SummaryListener) -> tuple[str, int, str]:
    """(outcome for the summary, exit code, headless' words for the last line)."""
    phase = run.engine.state.phase
    end = exitcodes.ending(
        phase, unreachable=watch.unreachable_for(run.last_at), stale_after=spec.metrics.stale_after,
        stopped_unreachable=bool(run.stopped), stopped_by="trace ended", where=" in the trace",
        unfinished=f"trace ended in phase {phase.value} before the release finished")
    words = "rolled back" if end.outcome == "rolled_back" else end.words  # a replay reports the end
    return end.outcome, end.code, words


MAX_PROBLEMS = 20
"""Bad lines printed one by one; beyond these, one line counts the rest (a wrong file given as
a trace must not flood the terminal)."""


@dataclass
class Problems:
    """Bad lines as they are found (both passes), the first MAX_PROBLEMS printed."""

    err: TextIO
    trace_path: str
    count: int = 0

    def __call__(self, problem: str) -> None:
        self.count += 1
        if self.count <= MAX_PROBLEMS:
            self.err.write(problem + "\n")

    def close(self) -> None:
        if self.count > MAX_PROBLEMS:
            self.err.write(f"{self.trace_path}: ... and {self.count - MAX_PROBLEMS} more bad "
                           "trace lines\n")


def _usable(spec: ReleaseSpec, scan: TraceScan, trace_path: str, err: TextIO) -> bool:
    """Whether the trace can judge this release; if not, one line says why: no line for the
    service, or none for the candidate. Versions the spec does not name are ignored, and said
    so once (a trace whose versions are named otherwise)."""
    service = spec.release.service
    mine = scan.versions.get("", set()) | scan.versions.get(service, set())
    others = sorted(mine - set(spec.versions))
    named = (f"baseline {spec.release.baseline!r}, candidate {spec.release.candidate!r}")
    if not mine & set(spec.versions):
        err.write(f"{trace_path}: no usable counters lines for service {service!r}, versions "
                  f"{', '.join(spec.versions)} ({scan.counters} counters lines, "
                  f"{scan.bad} bad" + (f"; the trace's versions: {', '.join(map(repr, others))}"
                                       if others else "") + ")\n")
        return False
    listed = ", ".join(repr(v) for v in others)
    if spec.release.candidate not in mine:
        also = f"; the trace's other versions: {listed}" if others else ""
        err.write(f"{trace_path}: no counters lines for the candidate "
                  f"{spec.release.candidate!r} of service {service!r} ({named}{also}): the "
                  "trace cannot judge this release\n")
        return False
    if others:
        err.write(f"{trace_path}: versions {listed} in the trace are not in the spec ({named}); "
                  "their lines are ignored\n")
    return True


@dataclass
class TraceCounts:
    """What the summary says of the trace, counted as the lines stream past."""

    counters_lines: int = 0
    tick_lines: int = 0
    used_lines: int = 0
    collections: int = 0
    ticks: int = 0
    start: float = 0.0
    end: float = 0.0

    def lines(self, spec: ReleaseSpec, items: Iterable[Item]) -> Iterator[Item]:
        """This release's lines (its service, the spec's versions), counting all."""
        service = spec.release.service
        for item in items:
            mine = not item.service or item.service == service
            if isinstance(item, TraceTick):
                self.tick_lines += 1
            elif isinstance(item, TraceLever | TraceCommand):
                pass  # an event line: counted among the other lines by the scan
            else:
                self.counters_lines += 1
                mine = mine and item.counters.version in spec.versions
                self.used_lines += mine
            if mine:
                yield item

    def timeline(self, ticks: Iterable[Tick]) -> Iterator[Tick]:
        for tick in ticks:
            if self.ticks == 0:
                self.start = tick.at
            self.ticks += 1
            self.collections += tick.collection is not None
            self.end = tick.engine_at
            yield tick


def _stream(spec: ReleaseSpec, trace_path: str, scan: TraceScan, problems: Problems,
            counts: TraceCounts) -> Iterator[Tick]:
    """The replay's ticks, read from the file as they are needed (scan_trace said how)."""
    service = spec.release.service
    items = time_ordered(trace_path, in_order=scan.in_order, problem=problems)
    recorded = bool(scan.tick_services & {"", service})
    return counts.timeline(stream_timeline(counts.lines(spec, items), spec.metrics.interval,
                                           recorded_ticks=recorded))


def _first_pass(spec: ReleaseSpec, trace_path: str, problems: Problems,
                err: TextIO) -> TraceScan | None:
    """scan_trace with its problems printed; None (after one line) if it cannot replay."""
    try:
        scan = scan_trace(trace_path)
    except OSError as exc:
        err.write(f"{trace_path}: cannot read trace: {exc.strerror or exc}\n")
        return None
    except TraceFormatError as exc:
        err.write(f"{exc}\n")
        return None
    for problem in scan.problems:
        problems(problem)
    problems.count += scan.bad - len(scan.problems)
    if not _usable(spec, scan, trace_path, err):
        problems.close()
        return None
    return scan


def run_replay(spec: ReleaseSpec, trace_path: str, *, summary: bool, out: TextIO,
               err: TextIO) -> int:
    """Replay a trace against a spec; prints events (and the summary); returns the exit code.

    Two passes over the file, neither holding it: scan_trace (bad lines, versions, order),
    then the replay itself, fed line by line in time order (time_ordered)."""
    problems = Problems(err, trace_path)
    scan = _first_pass(spec, trace_path, problems, err)
    if scan is None:
        return exitcodes.USAGE
    counts = TraceCounts()
    ticks = _stream(spec, trace_path, scan, problems, counts)
    first = next(ticks)
    printer = EventPrinter(out)
    collector = SummaryListener(first.at)
    run = asyncio.run(replay_timeline(spec, itertools.chain((first,), ticks),
                                      listeners=(printer, collector), watch=collector))
    for _rest in ticks:  # the rest of the trace, for the summary's counts and its bad lines
        pass
    problems.close()
    engine = run.engine
    state = engine.state
    outcome, code, words = _outcome(spec, run, collector)
    steps = len(engine.plan.steps)
    ended = None
    if outcome in ("incomplete", "unreachable"):
        ended = (f"{'replay stopped' if run.stopped else 'trace ended'} in phase "
                 f"{state.phase.value} at step {min(state.step + 1, steps)}/{steps} "
                 f"({state.weight}%), {run.last_at - counts.start:.1f}s into the trace: "
                 "release not finished")
    err.write(headless_line(run.driver, run.driver.state, words, run.last_at - counts.start,
                            None) + "\n")
    if summary:
        body = build_summary(trace_path, scan, counts, problems, run, collector, outcome, code,
                             ended)
        out.write(json.dumps(body, separators=(",", ":")) + "\n")
    out.flush()
    return code


def build_summary(trace_path: str, scan: TraceScan, counts: TraceCounts, problems: Problems,
                  run: ReplayRun, collector: SummaryListener, outcome: str, code: int,
                  ended: str | None) -> dict[str, Any]:
    """The --summary object (one JSON line)."""
    engine = run.engine
    state = engine.state
    final = next((d for d in reversed(collector.decisions)
                  if d["event"] in ("promoted", "rolling_back", "rolled_back", "aborted")), None)
    if final is not None and final["event"] == "rolled_back":
        final = next((d for d in reversed(collector.decisions)
                      if d["event"] == "rolling_back"), final)
    start, end = counts.start, counts.end
    # An A/B plan's readout (key present only for plans with an experiment: others keep their form)
    experiment = {"experiment": engine.readout.to_dict()} if engine.readout is not None else {}
    return {
        **experiment,
        "outcome": outcome,
        "exit_code": code,
        "phase": state.phase.value,
        "step": min(state.step + 1, len(engine.plan.steps)),  # from 1, as screen and events
        "steps": len(engine.plan.steps),
        "weight": state.weight,
        "decided_at": final["t"] if final else None,
        "decided_by": final["actor"] if final else None,
        "gate": final.get("gate") if final else None,
        "reason": final["reason"] if final else state.reason,
        "ended": ended,
        "decisions": collector.decisions,
        "gates": {name: {"first_failure": t.first_failure, "first_breach": t.first_breach,
                         "failures": t.failures, "last_status": t.last_status,
                         "evidence": t.evidence}
                  for name, t in collector.gates.items()},
        "trace": {
            "path": trace_path,
            "start": rfc3339(start),
            "end": rfc3339(end),
            "duration": round(end - start, 3),
            "replayed": round(run.last_at - start, 3),
            "collections": counts.collections,
            "ticks": run.ticks,
            "failed_ticks": run.failed_ticks,
            "levers_timed": run.levers.matched if run.levers is not None else 0,
            "commands": run.commands,
            "tick_lines": counts.tick_lines,
            "counters_lines": counts.counters_lines,
            "used_lines": counts.used_lines,
            "other_lines": scan.skipped,
            "bad_lines": problems.count,
            "sorted_through_files": not scan.in_order,
        },
    }


def replay_command(args: argparse.Namespace) -> int:
    """CLI entry: `releasedeck replay SPEC TRACE [--summary]`."""
    try:
        spec = load_spec(args.spec)
    except SpecError as exc:
        print(exc.render(), file=sys.stderr)
        return exitcodes.USAGE
    return run_replay(spec, args.trace, summary=args.summary,
                      out=sys.stdout, err=sys.stderr)
