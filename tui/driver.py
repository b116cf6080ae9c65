"""The one path data takes each tick: collect → evaluate → decide → act → publish.

The app, the headless runner and the demo all run this same loop; only what listens to it
differs. Every outside call is bounded by a timeout, so a slow Prometheus or a hung platform
shows up as stale data and a held rollout, never as a frozen screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from collectors.lease import Lease
from strategies.engine import CheckResult, Engine
from strategies.journal import JournalError
from strategies.model import (
    Action,
    ActionKind,
    Command,
    Decision,
    Event,
    FlagView,
    MetricSample,
    MetricsSnapshot,
    Phase,
    PlatformSnapshot,
    Role,
    Snapshot,
    State,
    VersionStatus,
    VersionView,
    Viewing,
    frozen_map,
)
from strategies.ports import (
    BackendSync,
    CohortRouter,
    EventListener,
    JudgedListener,
    Listener,
    MetricSource,
    Platform,
    RawCounters,
    RawCounterSource,
    RouteReadback,
    RouterProcess,
    SnapshotListener,
    StateListener,
    TickListener,
    TrafficRouter,
    WeightLever,
)
from strategies.ring_view import ring_views
from strategies.spec import FLAG_LEVERS, ReleaseSpec

log = logging.getLogger("releasedeck.driver")

MAX_EVENTS = 1000
RETRY_CAP = 30.0


def describe_error(exc: BaseException) -> str:
    """One line a person can act on, never a traceback."""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, JournalError):
        return exc.line  # names the file and the OS's reason already
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def close_parts(parts: Sequence[Platform | TrafficRouter | MetricSource | None]) -> None:
    """Close adapters one by one, each bounded; a failure is logged, never stops the rest."""
    for part in parts:
        if part is None:
            continue
        try:
            await asyncio.wait_for(part.close(), timeout=10.0)
        except Exception as exc:
            log.warning("closing %s failed: %s", type(part).__name__, describe_error(exc))


class Driver:
    """Runs the engine against real adapters and publishes one immutable State per tick."""

    def __init__(
        self,
        spec: ReleaseSpec,
        engine: Engine,
        platform: Platform | None,
        router: TrafficRouter | None,
        source: MetricSource,
        *,
        clock: Callable[[], float] = time.time,
        listeners: Iterable[Listener] = (),
        history_seconds: float = 300.0,
        checks: Callable[[float], Any] | None = None,
        journal_path: str = "",
        demo: bool = False,
        lease: Lease | None = None,
        viewing: Viewing | None = None,
    ):
        self.spec = spec
        self.engine = engine
        self.platform = platform
        self.router = router
        self.source = source
        self.clock = clock
        self.listeners: list[Listener] = []
        self._on_event: list[EventListener] = []
        self._on_state: list[StateListener] = []
        self._on_snapshot: list[SnapshotListener] = []
        self._on_tick: list[TickListener] = []
        self._on_judged: list[JudgedListener] = []
        for listener in listeners:
            self.add_listener(listener)
        self.history_seconds = history_seconds
        self.events: deque[Event] = deque(maxlen=MAX_EVENTS)
        self.check_runner = checks  # async callable(now) -> list[CheckResult], e.g. webhooks
        self.journal_path = journal_path  # shown, so an operator knows where the record is
        self.demo = demo
        self.lease = lease  # when set, no lever moves unless the lease is still ours
        self.viewing = viewing  # set when this session observes without driving
        self.lease_lost = ""
        # Set once the journal could not be written: from then on nothing is decided or done
        # (the release holds where it is), and the State says why in its holding reasons.
        self.journal_error: JournalError | None = None
        self._history: dict[str, deque[MetricSample]] = {v: deque() for v in spec.versions}
        self._platform_snapshot: PlatformSnapshot | None = None
        self._metrics: MetricsSnapshot | None = None
        self._snapshot: Snapshot | None = None
        self._checks: list[CheckResult] = []
        self._retry_at: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self._route_error = ""
        self._lock = asyncio.Lock()
        self.ticks = 0
        self.tick_seconds: float | None = None
        self.holding: list[str] = []
        self.state = self._publish(self.clock())

    # ------------------------------------------------------------------ listeners & events

    def add_listener(self, listener: Listener) -> None:
        """Hear what the run does: each listener gets the calls its Protocols declare."""
        if listener in self.listeners:
            return
        self.listeners.append(listener)
        if isinstance(listener, EventListener):
            self._on_event.append(listener)
        if isinstance(listener, StateListener):
            self._on_state.append(listener)
        if isinstance(listener, SnapshotListener):
            self._on_snapshot.append(listener)
        if isinstance(listener, TickListener):
            self._on_tick.append(listener)
        if isinstance(listener, JudgedListener):
            self._on_judged.append(listener)

    @staticmethod
    def _notify(listeners: Sequence[object], call: Callable[[Any], None]) -> None:
        for listener in list(listeners):
            try:
                call(listener)
            except Exception as exc:  # a broken listener must never stop the release
                log.warning("listener %s failed: %s", type(listener).__name__, describe_error(exc))

    def _record(self, event: Event) -> Event:
        self.events.append(event)
        self._notify(self._on_event, lambda listener: listener.on_event(event))
        return event

    def _published(self, state: State) -> None:
        """Publish: every State listener (app, followers, alerts, the state server) gets it."""
        self._notify(self._on_state, lambda listener: listener.on_state(state))

    def emit(self, name: str, details: Mapping[str, Any] | None = None,
             severity: str = "info") -> Event:
        """A non-decision event (fault_injected, alert, alert_failed ...) for every listener."""
        event = Event(at=self.clock(), release=self.spec.release.service, event=name,
                      details=frozen_map(details or {}), severity=severity)
        return self._record(event)

    def _decided(self, decisions: Sequence[Decision]) -> None:
        for decision in decisions:
            self._record(self.engine.event_for(decision))

    # ------------------------------------------------------------------ collect

    async def _bounded(self, coro: Any) -> Any:
        return await asyncio.wait_for(coro, timeout=self.spec.metrics.timeout)

    async def _collect_platform(self, now: float) -> PlatformSnapshot | None:
        if self.platform is None:
            return None
        try:
            snap = await self._bounded(self.platform.snapshot(self.spec.workloads, now))
        except Exception as exc:
            return PlatformSnapshot(at=now, error=f"platform {self.platform.kind}: "
                                                 f"{describe_error(exc)}")
        if self.router is not None and not snap.error:
            snap = await self._observe_router(self.router, snap)
            if snap.router_down:
                return snap  # nothing it holds is read: reconcile re-applies it all
        if not snap.error:
            snap = await self._read_route(snap)
        return self._variants_served(snap)

    async def _observe_router(self, router: TrafficRouter, snap: PlatformSnapshot
                              ) -> PlatformSnapshot:
        """The router's part of the world: whether its own process still serves (a router
        releasedeck runs, whose weights would otherwise come from memory), then its backends
        brought in line with the platform and the weights it routes."""
        try:
            if isinstance(router, RouterProcess):
                down = await self._bounded(router.down())
                if down:
                    return replace(snap, router_down=down)
            if isinstance(router, BackendSync):
                await self._bounded(router.sync_backends(snap))
            weights = await self._bounded(router.weights())
            return replace(snap, weights=frozen_map(weights))
        except Exception as exc:
            return replace(snap, error=f"router {router.kind}: {describe_error(exc)}")

    async def _read_route(self, snap: PlatformSnapshot) -> PlatformSnapshot:
        """The cohort route read back against the journal's (reconcile judges it), for routers
        that carry cohort routes. A read that fails leaves the route unjudged this tick, as an
        unknown weight is: logged once per distinct reason, never a held release by itself."""
        live = snap.weights if snap.weights and not snap.weight_note else None
        target = self.engine.route_target(live)
        lever = self.router if self.router is not None else self.platform
        if target is None or not isinstance(lever, RouteReadback):
            return snap
        try:
            differences = await self._bounded(lever.route_differences(target.route, target.weights))
        except Exception as exc:
            said = describe_error(exc)
            if said != self._route_error:
                log.warning("reading the cohort route back failed: %s", said)
            self._route_error = said
            return snap
        self._route_error = ""
        return replace(snap, route=target.reading(differences))

    def _flag_view(self, platform: PlatformSnapshot | None) -> FlagView | None:
        spec = self.spec
        if spec.router.kind not in FLAG_LEVERS:
            return None
        options = spec.router.options
        location = str(options.get("file", "")) if spec.router.kind == "flagd" else \
            f"{options.get('url', '')} {options.get('environment', 'development')}"
        share = platform.weights.get(spec.release.candidate) if platform is not None else None
        return FlagView(name=spec.strategy.flag, lever=spec.router.kind, location=location,
                        baseline=spec.release.baseline, candidate=spec.release.candidate,
                        share=share, kill_switch=spec.strategy.kill_switch)

    def _variants_served(self, snap: PlatformSnapshot) -> PlatformSnapshot:
        """In a flag release both variants run on the workload's instances: say so, so that
        readiness, reconcile and the screen see them served like two versions."""
        workload = self.spec.strategy.workload
        if not workload or snap.error or workload not in snap.versions:
            return snap
        status = snap.versions[workload]
        versions = {**snap.versions, **{v: replace(status, version=v) for v in self.spec.versions}}
        return replace(snap, versions=frozen_map(versions))

    async def _collect_metrics(self, now: float) -> MetricsSnapshot:
        # The scrape source needs instance addresses: it uses the last platform snapshot so
        # both collections can run at once.
        try:
            return await self._bounded(
                self.source.collect(self.spec.versions, self._platform_snapshot, now))
        except Exception as exc:
            return MetricsSnapshot(at=now, source=self.source.name,
                                   error=f"{self.source.name}: {describe_error(exc)}")

    async def _collect_checks(self, now: float) -> list[CheckResult]:
        if self.check_runner is None:
            return []
        try:
            return list(await self.check_runner(now))
        except Exception as exc:
            log.warning("checks failed: %s", describe_error(exc))
            return [CheckResult("checks", "rollout", None, describe_error(exc))]

    # ------------------------------------------------------------------ act

    async def _apply(self, action: Action) -> None:
        if action.kind is ActionKind.SET_WEIGHT:
            weights = {self.spec.release.baseline: 100 - action.value,
                       self.spec.release.candidate: action.value}
            lever = self.router if self.router is not None else self.platform
            if not isinstance(lever, WeightLever):
                raise RuntimeError("no traffic router configured to set weights")
            await self._bounded(lever.set_weights(weights))
        elif action.kind in (ActionKind.SET_COHORTS, ActionKind.SET_MIRROR):
            # Both are read from the state folded so far (the latest targets), so applying
            # either one puts the whole cohort table in place at once.
            lever = self.router if self.router is not None else self.platform
            if not isinstance(lever, CohortRouter):
                raise RuntimeError(f"router {self.spec.router.kind!r} cannot route by cohort or "
                                   "mirror (rings, A/B and dark launch need the local, haproxy, "
                                   "nginx or httproute router)")
            state = self.engine.state
            route = self.engine.plan.route_for(state.cohorts, state.mirror,
                                               self.spec.release.candidate)
            await self._bounded(lever.set_route(route))
        elif action.kind is ActionKind.SCALE:
            if self.platform is None:
                raise RuntimeError("no platform configured to scale")
            await asyncio.wait_for(self.platform.scale(action.version, action.value),
                                   timeout=max(self.spec.metrics.timeout, 30.0))
        else:
            raise RuntimeError(f"unknown action kind {action.kind!r}")

    async def _act(self, now: float) -> None:
        """Carry out pending actions in order; the first failure stops the rest until retry."""
        if self.engine.observe:
            return  # observe mode never pulls a lever, whatever the journal says
        if self.lease is not None and not self.lease_lost:
            self.lease_lost = self.lease.lost()
            if self.lease_lost:
                self.emit("lease_lost", {"reason": self.lease_lost}, severity="critical")
        if self.lease_lost:
            return  # another session may drive now: never pull a lever without the lease
        for action in list(self.engine.state.pending):
            if action.id in self.engine.state.done_actions:
                continue
            if self._retry_at.get(action.id, 0.0) > now:
                break
            try:
                await self._apply(action)
            except Exception as exc:
                count = self._failures.get(action.id, 0) + 1
                self._failures[action.id] = count
                self._retry_at[action.id] = now + min(RETRY_CAP, 2.0 ** (count - 1))
                self._decided(self.engine.action_done(
                    action, self.clock(), ok=False,
                    error=f"{action.describe()} failed: {describe_error(exc)}"))
                break
            self._failures.pop(action.id, None)
            self._retry_at.pop(action.id, None)
            self._decided(self.engine.action_done(action, self.clock()))

    # ------------------------------------------------------------------ the tick

    async def tick(self) -> State:
        began = time.perf_counter()
        now = self.clock()
        platform, metrics, checks = await asyncio.gather(
            self._collect_platform(now), self._collect_metrics(now), self._collect_checks(now))
        if platform is not None:
            self._platform_snapshot = platform
        self._metrics = metrics
        self._checks = checks
        snapshot = Snapshot(at=now, platform=platform, metrics=metrics)
        self._snapshot = snapshot
        self._remember(metrics)
        raw: Sequence[RawCounters] = ()
        if isinstance(self.source, RawCounterSource) and not metrics.error:
            with contextlib.suppress(Exception):
                raw = tuple(self.source.last_raw())
        self._notify(self._on_snapshot, lambda listener: listener.on_snapshot(snapshot, raw))
        async with self._lock:
            now = self.clock()
            self._notify(self._on_judged, lambda listener: listener.on_judged(now))
            if self.journal_error is None:
                try:
                    self._decided(self.engine.tick(snapshot, now, checks))
                    await self._act(now)
                except JournalError as exc:
                    self._journal_failed(exc)
            self.ticks += 1
            self.tick_seconds = time.perf_counter() - began
            self.state = self._publish(self.clock())
        seconds = self.tick_seconds
        self._notify(self._on_tick, lambda listener: listener.on_tick(seconds))
        self._published(self.state)
        return self.state

    async def command(self, cmd: Command) -> list[Decision]:
        """An operator command: decided and journaled at once, then acted on."""
        failed: JournalError | None = None
        decisions: list[Decision] = []
        async with self._lock:
            now = self.clock()
            if self.journal_error is not None:
                raise self.journal_error
            try:
                decisions = self.engine.command(cmd, now)
                self._decided(decisions)
                await self._act(now)
            except JournalError as exc:
                failed = exc
                self._journal_failed(exc)
            self.state = self._publish(self.clock())
        self._published(self.state)
        if failed is not None:
            raise failed  # the operator's command was not carried out: say so where it came from
        return decisions

    @property
    def journal_failed(self) -> str:
        """Why the journal cannot be written ("" while it can): the run holds, and must end."""
        return self.journal_error.line if self.journal_error is not None else ""

    def _journal_failed(self, exc: JournalError) -> None:
        """The journal said no: hold. Nothing is decided or done from here on (a lever moved
        without its intent journaled would be repeated or lost by the next resume), the
        `journal_failed` event says it once (critical: it pages), and every State says it
        first among its holding reasons, so the app, followers and headless all show it."""
        self.journal_error = exc
        rollout = self.engine.state
        steps = len(self.engine.plan.steps)
        self.emit("journal_failed", {
            "journal": str(exc.path), "error": exc.reason, "reason": exc.line,
            "phase": rollout.phase.value, "step": min(rollout.step + 1, steps), "steps": steps,
            "weight": rollout.weight, "actor": "engine"}, severity="critical")

    async def run(self, *, stop: Callable[[State], bool] | None = None,
                  timeout: float | None = None) -> State:
        """Tick every interval until the release is finished, `stop` says so, or timeout."""
        started = self.clock()
        interval = self.spec.metrics.interval
        while True:
            began = self.clock()
            state = await self.tick()
            if self.engine.finished or (stop is not None and stop(state)):
                return state
            if timeout is not None and self.clock() - started >= timeout:
                return state
            await asyncio.sleep(max(0.0, interval - (self.clock() - began)))

    async def close(self) -> None:
        """Close the adapters (each bounded; one failing never stops the others)."""
        await close_parts((self.source, self.router, self.platform))

    # ------------------------------------------------------------------ publish

    def _remember(self, metrics: MetricsSnapshot) -> None:
        if metrics.error:
            return
        for version, sample in metrics.samples.items():
            series = self._history.setdefault(version, deque())
            if series and series[-1].at >= sample.at:
                continue
            series.append(sample)
            while series and sample.at - series[0].at > self.history_seconds:
                series.popleft()

    def _publish(self, now: float) -> State:
        engine = self.engine
        rollout = engine.state
        platform = self._platform_snapshot
        metrics_at = engine.metrics_ok_at
        views = []
        for version, role in ((self.spec.release.baseline, Role.BASELINE),
                              (self.spec.release.candidate, Role.CANDIDATE)):
            desired = rollout.weight if role is Role.CANDIDATE else 100 - rollout.weight
            status = platform.version(version) if platform is not None else None
            actual = platform.weights.get(version) if platform is not None else None
            views.append(VersionView(
                version=version, role=role, desired_weight=desired, actual_weight=actual,
                ready=status.ready if status else 0, total=status.total if status else 0,
                sample=engine.current_sample(version, now), image=status.image if status else "",
                digest=_digest(status)))
        self.holding = engine.holding_reasons(self._snapshot, now, self._checks)
        if self.journal_error is not None:
            self.holding.insert(0, self.journal_error.line)
        state = State(
            at=now,
            release=self.spec.release.service,
            strategy=self.spec.strategy.kind,
            platform_kind=self.spec.platform.kind,
            metrics_source=self.source.name,
            rollout=rollout,
            steps=engine.plan.labels(),
            hold=engine.step_hold(),
            gates=engine.gates,
            versions=tuple(views),
            history=frozen_map({v: tuple(s) for v, s in self._history.items()}),
            events=tuple(self.events)[-200:],
            metrics_at=metrics_at,
            metrics_error=self._metrics.error if self._metrics is not None else None,
            platform_error=platform.error if platform is not None else None,
            stale=engine.stale,
            stale_reason=engine.stale_reason if engine.stale else "",
            read_only=engine.read_only,
            weight_note=platform.weight_note if platform is not None else "",
            baseline=self.spec.release.baseline,
            candidate=self.spec.release.candidate,
            holding=tuple(self.holding),
            platform_status=platform.status if platform is not None else "",
            observe=engine.observe,
            resumed=engine.resumed,
            journal=self.journal_path,
            demo=self.demo,
            drift=engine.drift,
            hold_observed=engine.hold_observed,
            flag=self._flag_view(platform),
            cohorts=ring_views(engine.plan, rollout,
                               engine.current_sample(self.spec.release.candidate, now)),
            experiment=engine.readout,
            tick_seconds=self.tick_seconds,
            viewing=self.viewing,
        )
        return self._with_time_left(state)

    def _with_time_left(self, state: State) -> State:
        """The plan's least remaining time (for the screen's ETA), while it moves by itself."""
        phase = state.rollout.phase
        if phase is Phase.PROMOTING:
            return replace(state, time_left=state.hold_left())
        if phase is not Phase.PROGRESSING:
            return state
        left, waits = self.engine.plan.time_left(state.rollout.step, state.hold_left())
        return replace(state, time_left=left, waits_at=waits)



def _digest(status: VersionStatus | None) -> str:
    """The one image digest a version's instances run, or "mixed" when they disagree."""
    digests = status.digests if status is not None else ()
    return digests[0] if len(digests) == 1 else ("mixed" if digests else "")
