"""Headless runner: the same driver loop with no screen, for pipelines and terminals.

Every event is one JSON line on `out`; one human line on `err` at the end says how it went; the
exit code says the outcome, so a CI/CD job can use a release as a gate:

- 0  promoted (or `--until` reached; in observe mode: no critical gate breached)
- 1  rolled back or aborted, or stopped (timeout, Ctrl-C, SIGTERM) before promotion
     (observe mode: a critical gate breached)
- 3  platform or metrics unreachable: platform errors or stale/missing metrics continuously for
     more than UNREACHABLE_FACTOR × metrics.stale_after (nothing could be decided meanwhile), or a
     timeout/stop while they had lasted longer than metrics.stale_after; or the journal could not
     be written (nothing may be done that is not journaled first, so the release held where it
     was and the run ends at once: the summary line names the file and the OS's reason).

Ctrl-C / SIGTERM stop ticking after the current tick, deliver queued alerts (bounded), close
the adapters and exit; the journal already holds the state, so `watch` resumes from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from strategies.model import GateStatus, Phase, Severity, State
from strategies.since import BadSince
from tui import exitcodes
from tui.driver import Driver, describe_error
from tui.events_out import EventPrinter, say
from tui.session import FLUSH_TIMEOUT, Session

UNREACHABLE_FACTOR = exitcodes.UNREACHABLE_FACTOR


@dataclass(frozen=True)
class Until:
    """When a headless run may stop successfully: done | promoted | step:N (1-based)."""

    kind: str
    step: int = 0

    @classmethod
    def parse(cls, text: str, steps: int) -> Until:
        value = (text or "done").strip().lower()
        if value in ("done", "promoted"):
            return cls(value)
        if value.startswith("step:"):
            number = value[5:]
            if not number.isdigit() or not 1 <= int(number) <= steps:
                raise ValueError(f"--until {text!r}: step must be a number from 1 to {steps}")
            return cls("step", int(number))
        raise ValueError(f"--until {text!r}: expected done, promoted or step:N")

    def reached(self, driver: Driver, state: State) -> bool:
        rollout = state.rollout
        if self.kind == "done":
            return driver.engine.finished
        if self.kind == "promoted":
            return rollout.phase is Phase.SUCCEEDED
        return (rollout.phase in (Phase.PROGRESSING, Phase.PAUSED, Phase.PROMOTING, Phase.SUCCEEDED)
                and rollout.step >= self.step - 1 and not rollout.pending)


class Unreachable:
    """How long platform errors or stale metrics have lasted without a break (the exit-3 rule);
    shared by headless runs and replays so both judge "unreachable" the same way."""

    def __init__(self) -> None:
        self.bad = BadSince()

    def observe(self, state: State) -> None:
        bad = bool(state.platform_error) or state.stale
        self.bad.observe(bad and not state.rollout.phase.terminal, state.at)

    def unreachable_for(self, now: float) -> float:
        return self.bad.lasted(now)


class _Watch(Unreachable):
    """Listener that keeps what the exit code and the summary need."""

    def __init__(self, stale_after: float):
        super().__init__()
        self.stale_after = stale_after
        self.critical_seen: tuple[Any, ...] = ()  # evidence of a breached critical gate

    def on_state(self, state: State) -> None:
        self.observe(state)
        for gate in state.gates:
            if gate.breached and gate.severity is Severity.CRITICAL and not self.critical_seen:
                self.critical_seen = (gate.evidence(),)


def run_headless(session: Session, *, until: str = "done", timeout: float | None = None,
                 out: TextIO, err: TextIO, flush_timeout: float = FLUSH_TIMEOUT) -> int:
    """Run to an outcome in a new event loop; return the exit code."""
    return asyncio.run(run_headless_async(session, until=until, timeout=timeout, out=out,
                                          err=err, flush_timeout=flush_timeout))


async def run_headless_async(session: Session, *, until: str = "done",
                             timeout: float | None = None, out: TextIO, err: TextIO,
                             flush_timeout: float = FLUSH_TIMEOUT,
                             halt: Callable[[], str] | None = None) -> int:
    """The runner itself, over an assembled run; closes the session at the end (queued alerts
    get `flush_timeout` to go out). `halt` says why the run must stop at once ("" while it may
    go on), besides the session's own `halt()` (its lease was lost)."""
    driver, observe, alerts = session.driver, session.observe, session.alerts
    goal = _goal(until, len(driver.engine.plan.steps), observe=observe)
    if isinstance(goal, str):
        print(f"releasedeck: {goal}", file=err)
        await session.close(flush_timeout)
        return exitcodes.USAGE
    stale_after = driver.spec.metrics.stale_after
    watch = _Watch(stale_after)
    driver.add_listener(EventPrinter(out, err))
    driver.add_listener(watch)
    stopping: list[str] = []
    started = driver.clock()

    def stop(state: State) -> bool:
        if stopping or driver.journal_failed:
            return True
        why = (halt() if halt is not None else "") or session.halt()
        if why:
            stopping.append(why)
            return True
        if not observe and (goal.reached(driver, state)
                            or (goal.kind != "done" and _settled_failure(state))):
            return True
        if watch.unreachable_for(state.at) > UNREACHABLE_FACTOR * stale_after:
            stopping.append("unreachable")
            return True
        return False

    crashed = await session.start()
    with _signals(lambda name: stopping.append(name)):
        try:
            if not crashed:
                state = await driver.run(stop=stop, timeout=timeout)
            else:
                state = driver.state
        except Exception as exc:  # a bug must still end in one line and a clean shutdown
            crashed = describe_error(exc)
            state = driver.state
    await session.close(flush_timeout)
    code, outcome = _outcome(driver, state, goal, watch, stopping, observe, stale_after)
    if crashed:
        code, outcome = exitcodes.UNREACHABLE, f"stopped by an error ({crashed})"
    # stderr's reader may be gone by now: the summary is then lost, but the exit code stays
    # the release's outcome (it was 141, "output closed", for a promoted release)
    say(err, summary(driver, state, outcome, driver.clock() - started, alerts))
    return session.conclude(code, err)


def _goal(until: str, steps: int, *, observe: bool) -> Until | str:
    """Where `--until` stops the run, or why it cannot (a bad value; a step or promotion goal
    while observing, where nothing moves)."""
    try:
        goal = Until.parse(until, steps)
    except ValueError as exc:
        return str(exc)
    if observe and goal.kind != "done":
        return "--until does not apply with --observe (nothing moves); use --timeout"
    return goal


def _settled_failure(state: State) -> bool:
    """Rolled back (traffic back on the baseline) or aborted: the outcome is known."""
    phase = state.rollout.phase
    return phase.failed and phase.terminal and not state.rollout.pending


def _outcome(driver: Driver, state: State, goal: Until, watch: _Watch, stopping: list[str],
             observe: bool, stale_after: float) -> tuple[int, str]:
    if driver.journal_failed:  # the summary's holding part names the file and the reason
        return exitcodes.UNREACHABLE, "held where it was"
    reached = goal.kind == "step" and goal.reached(driver, state)
    end = exitcodes.ending(state.rollout.phase, unreachable=watch.unreachable_for(state.at),
                           stale_after=stale_after, stopped_unreachable="unreachable" in stopping,
                           observe=observe, critical_seen=bool(watch.critical_seen),
                           reached=f"reached step {goal.step}" if reached else "",
                           stopped_by=stopping[0] if stopping else "timed out")
    return end.code, end.words


def summary(driver: Driver, state: State, outcome: str, duration: float, alerts: Any) -> str:
    """One line: outcome, duration, the step it ended at, the deciding gate, undelivered alerts."""
    rollout = state.rollout
    steps = len(driver.engine.plan.steps)
    where = "not started" if rollout.phase is Phase.PENDING \
        else f"at step {min(rollout.step + 1, steps)}/{steps}"
    release = driver.spec.release
    parts = [f"releasedeck: {release.service} {release.baseline}→{release.candidate} {outcome} "
             f"after {duration:.1f}s", f"{where}, weight {rollout.weight}%"]
    decisive = _deciding(state)
    if decisive:
        parts.append(decisive)
    if state.experiment is not None and not decisive.startswith("experiment"):
        parts.append(f"experiment: {state.experiment.summary()}")
    elif not (rollout.phase is Phase.SUCCEEDED or rollout.phase.failed) \
            or driver.journal_failed:  # it holds whatever the phase: the journal is why
        holding = state.holding
        if holding:
            parts.append(f"holding: {holding[0]}")
    metrics = _metrics_part(state, " ".join(parts))
    if metrics:
        parts.append(metrics)
    if state.platform_error:
        parts.append(f"platform: {state.platform_error}")
    if alerts is not None:
        parts.append(f"alerts {alerts.delivered} delivered, {alerts.undelivered} undelivered")
    return "; ".join(parts)


def _metrics_part(state: State, said: str) -> str:
    """What is wrong with the metrics, unless `said` (the summary so far) already quotes it: a
    holding reason often does, and the summary printed a long Prometheus error twice."""
    rollout = state.rollout
    if state.metrics_error:
        why = state.metrics_error
    elif state.stale and not (rollout.phase is Phase.SUCCEEDED or rollout.phase.failed):
        why = state.stale_reason or "stale"
    else:
        return ""
    return "" if why in said else f"metrics: {why}"


def _deciding(state: State) -> str:
    """The gate, value and threshold behind the outcome, if a gate decided it."""
    for evidence in state.rollout.cause:
        if evidence.get("experiment"):
            return f"experiment: {evidence.get('reason', '')}"
        if "gate" in evidence and evidence.get("status") == GateStatus.FAIL.value:
            return (f"gate {evidence['gate']}: value {_num(evidence.get('value'))} vs "
                    f"threshold {_num(evidence.get('threshold'))} ({evidence.get('reason', '')})")
        if "command" in evidence:
            return f"{evidence['command']} by {evidence.get('actor', 'operator')}"
    for gate in state.gates:
        if gate.breached:
            return f"gate {gate.name}: value {_num(gate.value)} vs threshold " \
                   f"{_num(gate.threshold)} ({gate.reason})"
    return ""


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "n/a" if value is None else str(value)


@contextlib.contextmanager
def _signals(on_signal: Any) -> Any:
    """SIGINT/SIGTERM set a stop flag instead of killing the loop mid-action."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig, name in ((signal.SIGINT, "interrupted"), (signal.SIGTERM, "terminated"),
                      (signal.SIGHUP, "hung up")):
        try:
            loop.add_signal_handler(sig, on_signal, name)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread: the caller handles signals
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def outcome_code(driver: Driver) -> int:
    """Exit code for a run that ended without the headless rules (e.g. the app was quit): 3
    once its journal could not be written, as headless (the release held, unfinished)."""
    if driver.journal_failed:
        return exitcodes.UNREACHABLE
    return exitcodes.quit_code(driver.engine.state.phase, observe=driver.engine.observe)
