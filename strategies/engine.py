"""The rollout engine: a state machine that turns snapshots and commands into decisions.

Every decision is journaled, then folded into the RolloutState by `fold` — the same function a
restart uses to rebuild the state from the journal. So the live state and the resumed state can
never drift apart. The engine reads no clock: `now` is always passed in.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from strategies.commands import refusal
from strategies.experiment import ConversionTracker, Readout
from strategies.fingerprint import (
    PlanPrint,
    adopt_step,
    describe_change,
    journaled_print,
    plan_print,
)
from strategies.gates import GateTracker, settle
from strategies.holds import ACTIONS_PENDING, ObservedHold, weight_problem
from strategies.journal import RunId, decision_to_record, record_to_decision
from strategies.model import (
    METRIC_UNITS,
    Action,
    ActionKind,
    Command,
    CommandKind,
    Decision,
    DecisionKind,
    Drift,
    Event,
    GateResult,
    GateStatus,
    LeverTarget,
    MetricSample,
    Phase,
    RolloutState,
    Severity,
    Snapshot,
    frozen_map,
)
from strategies.plans import Plan, PlanStep, build_plan
from strategies.reconcile import DriftTracker, RouteTarget, observed_values, route_target
from strategies.resources import with_resources
from strategies.spec import ReleaseSpec
from strategies.step_evidence import StepEvidence, advance

EVIDENCE_EVERY = 10.0
"""At most this many seconds between journaled checkpoints of a step's gate evidence while only
its counts grow. A material change is journaled at once: a test crossed (failed or shown to
hold), a gate's status moved, the step changed. Every tick (0.0) wrote a line a second for as
long as a step lasted (≈ 3,600 lines / 3 MB an hour, see benchmarks/journal_growth.py). A
restart continues from the last checkpoint: a window source counts again from where it says
counting stopped; a tally source's counts since then are lost (its origin restarted), never
counted twice — the evidence is only slower, never wrong."""

JournalSink = Callable[[Mapping[str, Any]], None]

TRANSITIONS: frozenset[DecisionKind] = frozenset({
    DecisionKind.STARTED, DecisionKind.STEP, DecisionKind.ADOPTED, DecisionKind.PAUSED,
    DecisionKind.RESUMED, DecisionKind.WEIGHT_SET, DecisionKind.PROMOTING, DecisionKind.PROMOTED,
    DecisionKind.ROLLING_BACK, DecisionKind.ROLLED_BACK, DecisionKind.ABORTED,
    DecisionKind.SCALED_DOWN, DecisionKind.RETRIED,
})
# what fold() reads besides transitions: gate clocks and action outcomes
_FOLDED = TRANSITIONS | {DecisionKind.GATE, DecisionKind.ACTION_DONE, DecisionKind.ACTION_FAILED,
                        DecisionKind.RECONCILE}


ROUTING_ACTIONS = frozenset({ActionKind.SET_WEIGHT, ActionKind.SET_COHORTS, ActionKind.SET_MIRROR})
"""Actions that move users: a rollback is done once none of them is pending."""


@dataclass(frozen=True)
class CheckResult:
    """Outcome of an external check (a webhook gate) passed in with the snapshot."""

    name: str
    kind: str  # pre-rollout | confirm-promotion | rollout
    ok: bool | None  # None: not run yet or timed out without an answer
    detail: str = ""


class PlanChanged(Exception):
    """The spec's plan is not the one the journal walked: stop, and say what changed and how
    to go on (one line)."""

    def __init__(self, path: str, change: str, adopt_at: str):
        self.path, self.change, self.adopt_at = path, change, adopt_at
        super().__init__(f"{path}: the plan changed since this release started ({change}); "
                         f"rerun with --fresh to start over, or --adopt-spec to continue at "
                         f"{adopt_at} of the new plan with its hold restarted")


# --------------------------------------------------------------------------- the fold


def fold(state: RolloutState, decision: Decision) -> RolloutState:
    """Apply one journaled decision to the state. Pure; used live and on resume alike."""
    seq = state.seq + 1
    kept = _fold_bookkeeping(state, decision, seq)
    if kept is not None:
        return kept
    kind = decision.kind
    if kind is DecisionKind.RETRIED:
        # A new attempt: forget where the last one ended, keep what is known about the world
        # (actions done or pending) and the gates' failure clocks (the candidate is the same).
        state = RolloutState(seq=state.seq, done_actions=state.done_actions, pending=state.pending,
                             gate_failing_since=state.gate_failing_since, targets=state.targets)
    pending = _supersede(state.pending, decision.actions)
    new = replace(state, seq=seq, phase=decision.phase, step=decision.step,
                  weight=decision.weight, reason=decision.reason, pending=pending)
    if kind in (DecisionKind.STARTED, DecisionKind.RETRIED):
        new = replace(new, attempt_started=decision.at)
    new = _fold_router_tables(new, decision)
    new = _fold_hold_clock(state, new, decision)
    new = _fold_ending(state, new, decision)
    if kind in (DecisionKind.SCALED_DOWN, DecisionKind.PROMOTED):
        new = replace(new, cleaned=True)
    return new


def _fold_bookkeeping(state: RolloutState, decision: Decision, seq: int) -> RolloutState | None:
    """Decisions that leave the rollout where it is (refusals, unfolded kinds, drift corrections,
    gate clocks, action outcomes): the new state, or None for a decision that moves the rollout."""
    kind = decision.kind
    if decision.refused or kind not in _FOLDED or kind is DecisionKind.ACTION_FAILED:
        return replace(state, seq=seq)
    if kind is DecisionKind.RECONCILE:  # a correction of drift: the same targets, applied again
        return replace(state, seq=seq, pending=_supersede(state.pending, decision.actions))
    if kind is DecisionKind.GATE:
        return replace(state, seq=seq, gate_failing_since=_gate_clock(state, decision))
    if kind is DecisionKind.ACTION_DONE:
        done = {str(e.get("action")) for e in decision.evidence}
        return replace(state, seq=seq, done_actions=state.done_actions | done,
                       pending=tuple(a for a in state.pending if a.id not in done),
                       targets=_confirmed(state.targets, decision))
    return None


def _fold_router_tables(new: RolloutState, decision: Decision) -> RolloutState:
    """The router's cohort table and mirror: the latest targets decided win."""
    for action in decision.actions:
        if action.kind is ActionKind.SET_COHORTS:
            new = replace(new, cohorts=action.value)
        elif action.kind is ActionKind.SET_MIRROR:
            new = replace(new, mirror=action.value)
    return new


def _fold_hold_clock(state: RolloutState, new: RolloutState, decision: Decision) -> RolloutState:
    """The step's hold clock: a new step starts it afresh, a pause (or a manual weight) freezes
    it with who paused and why, a resume lets it run again from where it stood."""
    kind = decision.kind
    if kind in (DecisionKind.STARTED, DecisionKind.STEP, DecisionKind.PROMOTING, DecisionKind.RETRIED,
                DecisionKind.ADOPTED):
        new = replace(new, step_started=decision.at, step_entered=decision.at,
                      hold_elapsed_before_pause=0.0, paused_by="", pause_reason="",
                      paused_at=None, manual_weight=False)
        if decision.phase is Phase.PAUSED:  # entering a manual pause step
            new = replace(new, paused_by=decision.actor, pause_reason=decision.reason,
                          paused_at=decision.at)
    elif kind in (DecisionKind.PAUSED, DecisionKind.WEIGHT_SET):
        used = state.hold_elapsed(decision.at)
        new = replace(new, step_started=decision.at, hold_elapsed_before_pause=used,
                      paused_by=decision.actor, pause_reason=decision.reason,
                      paused_at=decision.at, manual_weight=kind is DecisionKind.WEIGHT_SET
                      or state.manual_weight)
        if state.phase is Phase.PAUSED:  # already paused: the clock was already frozen
            new = replace(new, hold_elapsed_before_pause=state.hold_elapsed_before_pause,
                          paused_by=state.paused_by or decision.actor)
    elif kind is DecisionKind.RESUMED:
        new = replace(new, step_started=decision.at, paused_by="", pause_reason="",
                      paused_at=None)
    return new


def _fold_ending(state: RolloutState, new: RolloutState, decision: Decision) -> RolloutState:
    """A rollout that stops (rolling back, aborted, promoted, rolled back) keeps its cause and the
    hold clock where it stopped, so the screen keeps showing them; a final one records when."""
    kind = decision.kind
    if kind not in (DecisionKind.ROLLING_BACK, DecisionKind.ABORTED, DecisionKind.PROMOTED,
                    DecisionKind.ROLLED_BACK):
        return new
    new = replace(new, cause=tuple(decision.evidence or state.cause))
    if kind is not DecisionKind.ROLLING_BACK:
        new = replace(new, finished_at=decision.at)
    return replace(new, hold_elapsed_before_pause=state.hold_elapsed(decision.at))


def _gate_statuses(records: Iterable[Mapping[str, Any]]) -> dict[str, GateStatus]:
    """Each gate's last journaled status, so a resumed engine only reports real changes."""
    statuses: dict[str, GateStatus] = {}
    for record in records:
        if record.get("kind") != DecisionKind.GATE:
            continue
        for evidence in record.get("evidence", ()):
            try:
                statuses[str(evidence.get("gate"))] = GateStatus(evidence.get("status"))
            except ValueError:
                continue
    return statuses


def _restored_evidence(records: list[Mapping[str, Any]], epoch: float | None) -> StepEvidence:
    """The last journaled evidence of the step the journal is in (none: start from zero)."""
    for record in reversed(records):
        if record.get("kind") != DecisionKind.EVIDENCE or not record.get("evidence"):
            continue
        found = StepEvidence.from_record(record["evidence"][0])
        if found is not None and found.epoch == epoch and epoch is not None:
            return replace(found, saved_at=float(record.get("at", 0.0)))
        return StepEvidence(epoch=epoch)
    return StepEvidence(epoch=epoch)


def _gate_clock(state: RolloutState, decision: Decision) -> Mapping[str, float]:
    clocks = dict(state.gate_failing_since)
    for evidence in decision.evidence:
        name = str(evidence.get("gate"))
        status = evidence.get("status")
        since = evidence.get("failing_since")
        if status == GateStatus.PASS.value:
            clocks.pop(name, None)
        elif status == GateStatus.FAIL.value and since is not None:
            clocks.setdefault(name, float(since))
    return frozen_map(clocks)


def _confirmed(targets: Mapping[str, LeverTarget], decision: Decision
               ) -> Mapping[str, LeverTarget]:
    """Levers' targets after an `action_done`: what reconciliation holds the world to."""
    out = dict(targets)
    for evidence in decision.evidence:
        try:
            target = LeverTarget(str(evidence["kind"]), str(evidence.get("version", "")),
                                 int(evidence["value"]), decision.at)
        except (KeyError, TypeError, ValueError):
            continue
        out[target.key] = target
    return frozen_map(out)


def _supersede(pending: tuple[Action, ...], new: tuple[Action, ...]) -> tuple[Action, ...]:
    """A new target for a lever replaces any target for it still waiting to be applied."""
    levers = {(a.kind, a.version) for a in new}
    kept = tuple(a for a in pending if (a.kind, a.version) not in levers)
    return kept + tuple(new)


# --------------------------------------------------------------------------- the engine


class Engine:
    """Walks a plan. `tick` and `command` return the decisions made, already journaled."""

    def __init__(
        self,
        spec: ReleaseSpec,
        *,
        read_only: bool = False,
        journal: JournalSink | None = None,
        records: Iterable[Mapping[str, Any]] = (),
        run: str | None = None,
        observe: bool = False,
        reconcile: bool = True,
        adopt_spec: bool = False,
        explain: bool = True,
    ):
        self.spec = spec
        # reconcile: hold the world to the journal's targets each tick, and count a hold only
        # at the step's real weight. Off for replays, whose recorded world is an open loop the
        # levers cannot move.
        self.reconciles = reconcile
        self.plan: Plan = build_plan(spec)
        # observe: gates are evaluated but the rollout never moves and no action is decided,
        # for teams whose rollout is driven elsewhere. It implies read-only.
        self.observe = observe
        self.explain = explain  # False: gates skip their confidence bounds (batch judging)
        self.read_only = read_only or observe
        self._journal = journal
        self.state = RolloutState()
        records = list(records)
        for record in records:
            self.state = fold(self.state, record_to_decision(record))
        resumed_run = str(records[-1].get("run")) if records else None
        self.resumed = bool(records)
        self.plan_print = plan_print(self.plan, spec.gates)
        self._adopt: tuple[str, PlanPrint] | None = None
        walked = journaled_print(records)
        change = describe_change(walked, self.plan_print) if walked is not None else ""
        if change and self.state.phase in (Phase.PROGRESSING, Phase.PAUSED) and not observe:
            if not adopt_spec:
                raise PlanChanged(spec.path, change, self._adopt_phrase())
            self._adopt = (change, walked)
        self.run = RunId(spec.release.service, spec.release.baseline, spec.release.candidate,
                         run or resumed_run or uuid.uuid4().hex[:12])
        self.gates: tuple[GateResult, ...] = ()
        self._gate_status: dict[str, GateStatus] = _gate_statuses(records)
        self.evidence = _restored_evidence(records, self.state.step_entered)
        self._inconclusive_pauses: dict[float | None, int] = {}  # step epoch -> pauses so far
        self._last_metrics: dict[str, MetricSample] = {}
        self._metrics_ok_at: float | None = None
        self._first_tick: float | None = None
        self._stale_reported = False
        self.stale = True
        self.stale_reason = "no metrics yet"
        # An A/B plan with [strategy.experiment]: conversion evidence of A and B, folded in at
        # the experiment step. Not journaled: a resumed experiment starts its evidence afresh
        # (valid, only slower), never with counts it cannot vouch for.
        self.experiment: ConversionTracker | None = None
        if spec.strategy.experiment is not None:
            self.experiment = ConversionTracker(spec.strategy.experiment, self.baseline,
                                                self.candidate)
        self.drift_tracker = DriftTracker(spec.release.candidate)
        self._hold = ObservedHold()

    # ------------------------------------------------------------------ helpers

    @property
    def baseline(self) -> str:
        return self.spec.release.baseline

    @property
    def candidate(self) -> str:
        return self.spec.release.candidate

    def _emit(self, kind: DecisionKind, now: float, *, phase: Phase | None = None,
              step: int | None = None, weight: int | None = None, actor: str = "engine",
              reason: str = "", evidence: Iterable[Mapping[str, Any]] = (),
              actions: Iterable[tuple[ActionKind, int, str]] = (), refused: bool = False) -> Decision:
        seq = self.state.seq + 1
        built = tuple(Action(id=f"{self.run.run}.{seq}.{i}", kind=k, value=v, version=ver)
                      for i, (k, v, ver) in enumerate(actions))
        decision = Decision(
            kind=kind, at=now,
            phase=self.state.phase if phase is None else phase,
            step=self.state.step if step is None else step,
            weight=self.state.weight if weight is None else weight,
            actor=actor, reason=reason, evidence=tuple(dict(e) for e in evidence),
            actions=built, refused=refused)
        if self._journal is not None:
            self._journal(decision_to_record(decision, seq, self.run))
        self.state = fold(self.state, decision)
        return decision

    def _step_actions(self, index: int) -> list[tuple[ActionKind, int, str]]:
        step = self.plan.steps[index]
        actions: list[tuple[ActionKind, int, str]] = [(ActionKind.SCALE, n, v) for v, n in step.replicas.items()]
        # A step without its own weight keeps the plan's weight so far; if an operator's
        # set_weight moved the lever elsewhere, entering the step puts it back.
        target = step.weight if step.weight is not None else self.plan.weight_at(index)
        # Leaving a dark step, the mirror goes first: were the weight set before it, the
        # candidate would serve real users while still receiving mirror copies for one tick.
        mirror = self.plan.mirror_at(index) if self.plan.mirrors else None
        lowered = mirror is not None and index > 0 and mirror < self.state.mirror
        if lowered:
            actions.append((ActionKind.SET_MIRROR, mirror, ""))
        if step.weight is not None or target != self.state.weight:
            actions.append((ActionKind.SET_WEIGHT, target, ""))
        # Rings and mirror are targets too: set on the first step (which also puts the sticky
        # user key in place) and whenever the step changes them.
        if self.plan.routes_cohorts:
            cohorts = self.plan.cohorts_at(index)
            if index == 0 or cohorts != self.state.cohorts:
                actions.append((ActionKind.SET_COHORTS, cohorts, ""))
        if mirror is not None and not lowered and (index == 0 or mirror != self.state.mirror):
            actions.append((ActionKind.SET_MIRROR, mirror, ""))
        return actions

    def _route_reset(self) -> list[tuple[ActionKind, int, str]]:
        """Stop mirroring and close every ring (rollback).

        The mirror stops first: the weight that follows must never reach a candidate that
        still receives mirror copies."""
        return self._mirror_off() + self._rings_closed()

    def _mirror_off(self) -> list[tuple[ActionKind, int, str]]:
        routed = self.plan.routes_cohorts and self.plan.mirrors
        return [(ActionKind.SET_MIRROR, 0, "")] if routed else []

    def _rings_closed(self) -> list[tuple[ActionKind, int, str]]:
        return [(ActionKind.SET_COHORTS, 0, "")] if self.plan.routes_cohorts else []

    def _enter_step(self, index: int, now: float, actor: str, reason: str,
                    kind: DecisionKind = DecisionKind.STEP,
                    evidence: Iterable[Mapping[str, Any]] = ()) -> Decision:
        step = self.plan.steps[index]
        phase = Phase.PAUSED if step.pause else Phase.PROGRESSING
        weight = self.plan.weight_at(index)
        if kind in (DecisionKind.STARTED, DecisionKind.RETRIED) and not evidence:
            evidence = [self.plan_print.to_dict()]  # the plan this run walks (strategies.fingerprint)
        return self._emit(kind, now, phase=phase, step=index, weight=weight, actor=actor,
                          reason=reason or f"step {index + 1}/{len(self.plan.steps)}: "
                          f"{step.label}", evidence=evidence, actions=self._step_actions(index))

    def _adopt_phrase(self) -> str:
        index = adopt_step(self.plan, self.state.weight)
        return f"step {index + 1}/{len(self.plan.steps)} ({self.plan.steps[index].label})"

    def _adopt_spec(self, now: float) -> list[Decision]:
        """--adopt-spec: continue the changed plan at the mapped step, its hold restarted."""
        if self._adopt is None:
            return []
        change, walked = self._adopt
        self._adopt = None
        index = adopt_step(self.plan, self.state.weight)
        evidence = {**self.plan_print.to_dict(), "previous": walked.digest, "change": change}
        return [self._enter_step(index, now, "operator", f"spec changed ({change}); adopted at "
                                 f"{self._adopt_phrase()}, hold restarted", kind=DecisionKind.ADOPTED,
                                 evidence=[evidence])]

    def _promote(self, now: float, actor: str, reason: str,
                 evidence: Iterable[Mapping[str, Any]] = ()) -> Decision:
        return self._emit(DecisionKind.PROMOTING, now, phase=Phase.PROMOTING, step=len(self.plan.steps),
                          weight=100, actor=actor, reason=reason, evidence=evidence,
                          actions=self._promote_actions())

    def _promote_actions(self) -> list[tuple[ActionKind, int, str]]:
        """Scale to full, stop any mirror, weight 100, then clear the rings (users stay on v2)."""
        return ([(ActionKind.SCALE, n, v) for v, n in self.plan.full.items() if n > 0]
                + self._mirror_off() + [(ActionKind.SET_WEIGHT, 100, "")] + self._rings_closed())

    def _rollback(self, now: float, actor: str, reason: str,
                  evidence: Iterable[Mapping[str, Any]] = (), *, abort: bool = False
                  ) -> Decision:
        # Rings close first: the cohorts leave the candidate before anything else moves.
        actions = self._route_reset() + [(ActionKind.SET_WEIGHT, 0, "")] + [
            (ActionKind.SCALE, n, v) for v, n in self.plan.rollback.items() if n > 0]
        if abort:
            return self._emit(DecisionKind.ABORTED, now, phase=Phase.ABORTED, weight=0, actor=actor,
                              reason=reason, evidence=evidence, actions=actions)
        return self._emit(DecisionKind.ROLLING_BACK, now, phase=Phase.ROLLING_BACK, weight=0, actor=actor,
                          reason=reason, evidence=evidence, actions=actions)

    def refuse(self, cmd: Command, now: float, why: str) -> Decision:
        return self._emit(DecisionKind.REFUSED, now, actor=cmd.actor, reason=why, refused=True,
                          evidence=[{"command": cmd.kind.value, "value": cmd.value}])

    # ------------------------------------------------------------------ public API

    @property
    def finished(self) -> bool:
        """Terminal, the losing side scaled down, and every action confirmed."""
        return self.state.phase.terminal and self.state.cleaned and not self.state.pending

    def step_hold(self) -> float:
        if self.state.phase is Phase.PROMOTING:
            return self.plan.scale_down_delay
        if 0 <= self.state.step < len(self.plan.steps):
            return self.plan.steps[self.state.step].hold
        return 0.0

    @property
    def metrics_ok_at(self) -> float | None:
        """When metrics were last read successfully (None: never)."""
        return self._metrics_ok_at

    def current_sample(self, version: str, now: float) -> MetricSample | None:
        """The latest sample of a version, or None once it is older than stale_after."""
        return self._sample(version, now)

    def action_done(self, action: Action, now: float, ok: bool = True,
                    error: str = "") -> list[Decision]:
        """Record the outcome of an action the driver carried out."""
        if action.id in self.state.done_actions:
            return []
        kind = DecisionKind.ACTION_DONE if ok else DecisionKind.ACTION_FAILED
        out = [self._emit(kind, now, reason=error or action.describe(),
                          evidence=[{"action": action.id, **action.to_dict()}])]
        if ok:
            if not self.state.pending:
                self._hold.actions_done(now)
            out.extend(self._after_actions(now))
        return out

    def _after_actions(self, now: float) -> list[Decision]:
        if self.state.phase is Phase.ROLLING_BACK and not any(
                a.kind in ROUTING_ACTIONS for a in self.state.pending):
            return [self._emit(DecisionKind.ROLLED_BACK, now, phase=Phase.ROLLED_BACK, weight=0,
                               actor=self.state.cause[0].get("actor", "engine")
                               if self.state.cause and "actor" in self.state.cause[0]
                               else "engine",
                               reason=self.state.reason, evidence=self.state.cause)]
        return []

    def tick(self, snapshot: Snapshot, now: float,
             checks: Iterable[CheckResult] = ()) -> list[Decision]:
        """Evaluate gates on this snapshot and move the rollout if it should move."""
        if self._first_tick is None:
            self._first_tick = now
        decisions: list[Decision] = []
        decisions.extend(self._observe_metrics(snapshot, now))
        decisions.extend(self._adopt_spec(now))
        self._observe_experiment(snapshot)
        if self.reconciles and not self.observe:
            decisions.extend(self._reconcile(snapshot, now))
        decisions.extend(self._evaluate_gates(now))
        self._observe_hold(snapshot, now)
        if not self.observe:
            decisions.extend(self._advance(snapshot, now, tuple(checks)))
        return decisions

    # ------------------------------------------------------------------ tick parts

    def _at_experiment(self) -> bool:
        state = self.state
        return (self.experiment is not None and 0 <= state.step < len(self.plan.steps)
                and self.plan.steps[state.step].experiment
                and state.phase in (Phase.PROGRESSING, Phase.PAUSED))

    def _observe_experiment(self, snapshot: Snapshot) -> None:
        """Fold what A and B counted since the last tick into the experiment (its step only)."""
        metrics = snapshot.metrics
        if self.experiment is None or metrics is None or metrics.error:
            return
        if self._at_experiment():
            self.experiment.observe(metrics.samples)

    @property
    def readout(self) -> Readout | None:
        """The A/B experiment's readout (None for plans without one)."""
        return self.experiment.readout() if self.experiment is not None else None

    def _experiment_outcome(self, snapshot: Snapshot, now: float,
                            checks: tuple[CheckResult, ...]) -> list[Decision]:
        """B named the winner: on to the next step; A named, or time up: A stays (roll back)."""
        assert self.experiment is not None
        step = self.plan.steps[self.state.step]
        winner = self.experiment.winner
        if winner is None and self.state.hold_elapsed(now) < step.hold:
            return []
        readout = self.experiment.readout()
        evidence = [{**readout.to_dict(), "actor": "experiment"}]
        if winner == self.candidate:
            blockers = [r for r in self.holding_reasons(snapshot, now, checks)
                        if not r.startswith(("hold:", "experiment:"))]
            if blockers:
                return []
            index = self.state.step + 1
            reason = f"A/B: {readout.summary()}"
            if index >= len(self.plan.steps):
                return [self._promote(now, "experiment", reason, evidence)]
            return [self._enter_step(index, now, "experiment", reason, evidence=evidence)]
        why = readout.summary() if winner == self.baseline else \
            f"no winner after {step.hold:g}s ({readout.summary()})"
        return [self._rollback(now, "experiment", f"A/B: {why}; {self.baseline} stays",
                               evidence=evidence)]
    @property
    def hold_observed(self) -> float | None:
        """Hold time observed in the current step (None outside a progressing step)."""
        if self.state.phase not in (Phase.PROGRESSING, Phase.PAUSED):
            return None
        return self._hold.observed

    def _observe_hold(self, snapshot: Snapshot, now: float) -> None:
        """Count this tick toward the step's hold only if it was observed (strategies.holds)."""
        state = self.state
        stepping = state.phase in (Phase.PROGRESSING, Phase.PAUSED)
        key = state.step if stepping else f"not in a step ({state.phase.value})"
        problem = ""
        if self.stale:
            problem = f"metrics stale ({self.stale_reason})"
        elif self.drift:
            problem = "drift"
        elif state.pending:
            problem = ACTIONS_PENDING
        elif self.reconciles:  # a recorded world (replay) routes what was recorded: not judged
            problem = weight_problem(snapshot.platform, self.candidate, state.weight)
        self._hold.update(key, now, counting=state.phase is Phase.PROGRESSING, problem=problem,
                          started=state.step_started)

    def _hold_checkpoint(self, now: float) -> None:
        """Before a command moves the rollout: credit the time since the last tick, if that
        tick was observed (live, ticks are one interval apart; this keeps the last one)."""
        state = self.state
        if self._hold.process_start is None:
            return  # this process has observed nothing yet: its first tick starts the evidence
        if state.phase is Phase.PROGRESSING and not self._hold.why:
            self._hold.update(state.step, now, counting=True, problem="",
                              started=state.step_started)

    @property
    def drift(self) -> tuple[Drift, ...]:
        """Levers the world does not hold where the journal put them (this tick)."""
        return self.drift_tracker.drift

    def route_target(self, live: Mapping[str, float] | None = None) -> RouteTarget | None:
        """The cohort route the journal says is in place, for the router to read back this tick
        (None: nothing to check: no cohort routing, a replay, observe mode, or the route moving).
        `live`: the split the router reports, for sticky slots before any weight is journaled."""
        if not self.reconciles or self.observe or self.state.phase is Phase.PENDING:
            return None
        pending = (LeverTarget.key_of(a.kind, a.version) for a in self.state.pending)
        return route_target(self.plan, self.state.targets, pending, self.baseline, self.candidate,
                            live)

    def _reconcile(self, snapshot: Snapshot, now: float) -> list[Decision]:
        """Re-apply levers that drifted from their confirmed targets (see strategies.reconcile)."""
        if self.state.phase is Phase.PENDING:
            return []
        targets = self.state.targets
        platform = snapshot.platform
        observed = observed_values(platform, self.baseline, self.candidate, targets)
        pending = {LeverTarget.key_of(a.kind, a.version) for a in self.state.pending}
        at = platform.at if platform is not None else now
        drift, corrections = self.drift_tracker.observe(targets, observed, pending, at, now)
        if not corrections:
            return []
        fixing = [d for d in drift if any(LeverTarget.key_of(k, v) == d.lever
                                          for k, _, v in corrections)]
        return [self._emit(DecisionKind.RECONCILE, now, actor="reconcile",
                           reason="; ".join(d.describe() for d in fixing) + "; re-applying",
                           evidence=[d.to_dict() for d in fixing], actions=corrections)]

    def _observe_metrics(self, snapshot: Snapshot, now: float) -> list[Decision]:
        metrics = snapshot.metrics
        reason = ""
        if metrics is None:
            reason = "metric collection timed out"
        elif metrics.error:
            reason = metrics.error
        else:
            self._metrics_ok_at = metrics.at
            # A version missing from a read keeps its last sample until that is stale_after old:
            # the same tolerance the spec gives a whole read that fails.
            self._last_metrics.update(with_resources(metrics, snapshot.platform).samples)
        limit = self.spec.metrics.stale_after
        since = self._metrics_ok_at if self._metrics_ok_at is not None else self._first_tick
        stale = self._metrics_ok_at is None or (now - self._metrics_ok_at) > limit
        if stale:
            self.stale_reason = reason or (
                "no metrics yet" if self._metrics_ok_at is None
                else f"no fresh metrics for {now - self._metrics_ok_at:.0f}s")
        self.stale = stale
        out: list[Decision] = []
        due = since is not None and now - since > limit
        if stale and due and not self._stale_reported:
            self._stale_reported = True
            out.append(self._emit(DecisionKind.STALE, now, reason=self.stale_reason,
                                  evidence=[{"age": None if self._metrics_ok_at is None
                                             else round(now - self._metrics_ok_at, 3),
                                             "stale_after": limit}]))
        elif not stale and self._stale_reported:
            self._stale_reported = False
            out.append(self._emit(DecisionKind.FRESH, now, reason="metrics are fresh again"))
        return out

    def _sample(self, version: str, now: float) -> MetricSample | None:
        sample = self._last_metrics.get(version)
        if sample is None or now - sample.at > self.spec.metrics.stale_after:
            return None
        return sample

    def _evaluate_gates(self, now: float) -> list[Decision]:
        tracker = GateTracker(self.state.gate_failing_since)
        baseline_expected = self.state.weight < 100
        candidate, baseline = self._sample(self.candidate, now), self._sample(self.baseline, now)
        before = self.evidence
        epoch = self.state.step_entered
        if epoch is None and self.observe:  # the rollout is driven elsewhere: count from here
            epoch = self._first_tick
        self.evidence = advance(before, epoch, self.spec.gates, candidate,
                                baseline, candidate_name=self.candidate,
                                baseline_name=self.baseline, window=self.spec.metrics.window,
                                horizon=self._horizon())
        self.gates = tracker.results(
            self.spec.gates, candidate, baseline, now, stale=self.stale,
            baseline_expected=baseline_expected, evidence=self.evidence, explain=self.explain)
        self.evidence = settle(self.evidence, self.gates)
        moved = any(r.status is not self._gate_status.get(r.name, GateStatus.UNKNOWN)
                    for r in self.gates)
        self._checkpoint(before, now, moved=moved)
        out: list[Decision] = []
        for result in self.gates:
            previous = self._gate_status.get(result.name, GateStatus.UNKNOWN)
            if result.status is not previous:
                self._gate_status[result.name] = result.status
                evidence = {**result.evidence(), "failing_since": result.failing_since,
                            "previous": previous.value}
                out.append(self._emit(DecisionKind.GATE, now, actor=f"gate:{result.name}",
                                      reason=f"{result.name}: {previous.value} → "
                                      f"{result.status.value}: {result.reason}",
                                      evidence=[evidence]))
        return out

    def _horizon(self) -> int:
        """How many collections the current step is expected to last (at least 10): where
        gate evidence expects a breach could begin (see evidence.Onset)."""
        hold = self.step_hold()
        interval = max(self.spec.metrics.interval, 1e-3)
        return max(10, math.ceil(hold / interval))

    def _checkpoint(self, before: StepEvidence, now: float, *, moved: bool = False) -> None:
        """Journal the step's evidence at most every EVIDENCE_EVERY seconds while counts grow,
        and at once when it changed materially (a test crossed, a gate's status `moved`), so a
        restart continues it. Journal only: it is no event anyone needs to see."""
        evidence = self.evidence
        if evidence.epoch is None or self.read_only:
            return
        crossed = evidence.failed != before.failed or evidence.held != before.held \
            or moved
        counted = evidence.candidate != before.candidate or evidence.baseline != before.baseline
        due = evidence.saved_at is None or now - evidence.saved_at >= EVIDENCE_EVERY
        if crossed or (counted and due) or (due and evidence.saved_at is not None
                                             and evidence.epoch != before.epoch):
            self._emit(DecisionKind.EVIDENCE, now, reason="gate evidence checkpoint",
                       evidence=[evidence.to_record()])
            self.evidence = replace(evidence, saved_at=now)

    def _breached(self, severity: Severity) -> list[GateResult]:
        return [g for g in self.gates if g.breached and g.severity is severity]

    def _advance(self, snapshot: Snapshot, now: float,
                 checks: tuple[CheckResult, ...]) -> list[Decision]:
        phase = self.state.phase
        if phase is Phase.PENDING:
            return self._start_when_checked(now, checks)
        # One move per instant: a rollout that moved at `now` (entered a step, paused, resumed)
        # does not move again at the same `now`. Live, two ticks never share a `now`; after a
        # crash, re-running the interrupted tick must not move twice where the run that never
        # crashed moved once. A breached gate still acts on the next tick.
        just_moved = self.state.step_started is not None and now <= self.state.step_started
        if just_moved and phase in (Phase.PROGRESSING, Phase.PAUSED, Phase.PROMOTING):
            return []
        if phase in (Phase.PROGRESSING, Phase.PAUSED, Phase.PROMOTING):
            critical = self._breached(Severity.CRITICAL)
            if critical:
                names = ", ".join(g.name for g in critical)
                return [self._rollback(
                    now, f"gate:{critical[0].name}", f"critical gate failed: {names}",
                    evidence=[{**g.evidence(), "actor": f"gate:{g.name}"} for g in critical])]
        if phase is Phase.PROGRESSING:
            return self._progress(snapshot, now, checks)
        if phase is Phase.PROMOTING:
            if not self.holding_reasons(snapshot, now, checks):
                return [self._finish_promotion(now, "engine", "promotion complete")]
            return []
        if phase is Phase.ROLLING_BACK:
            # Normally action_done finishes the rollback; this catches a restart that happened
            # after the last action was journaled as done but before `rolled_back` was.
            return self._after_actions(now)
        return self._scale_down_when_due(now)

    def _start_when_checked(self, now: float, checks: tuple[CheckResult, ...]) -> list[Decision]:
        """A pending rollout starts once every pre-rollout webhook says yes."""
        if any(c.kind == "pre-rollout" and c.ok is not True for c in checks):
            return []
        return [self._enter_step(0, now, "engine", "rollout started", kind=DecisionKind.STARTED)]

    def _progress(self, snapshot: Snapshot, now: float,
                  checks: tuple[CheckResult, ...]) -> list[Decision]:
        """A progressing step: a warning gate pauses it, an experiment step ends on its readout,
        a complete step moves on, and a hold over without the evidence it requires pauses it."""
        warning = self._breached(Severity.WARNING)
        if warning:
            names = ", ".join(g.name for g in warning)
            return [self._emit(DecisionKind.PAUSED, now, phase=Phase.PAUSED,
                               actor=f"gate:{warning[0].name}",
                               reason=f"warning gate failed: {names}",
                               evidence=[g.evidence() for g in warning])]
        if self._at_experiment():
            return self._experiment_outcome(snapshot, now, checks)
        if self._step_complete(snapshot, now, checks):
            return [self._next(now, "engine", "")]
        inconclusive = self._inconclusive(now)
        if not inconclusive:
            return []
        names = ", ".join(g.name for g in inconclusive)
        self._inconclusive_pauses[self.state.step_entered] = \
            self._inconclusive_pauses.get(self.state.step_entered, 0) + 1
        return [self._emit(DecisionKind.PAUSED, now, phase=Phase.PAUSED,
                           actor=f"gate:{inconclusive[0].name}",
                           reason=f"inconclusive at the end of the hold: {names} "
                                  f"(require = evidence; resume to gather more, "
                                  f"promote to go on without it)",
                           evidence=[g.evidence() for g in inconclusive])]

    def _scale_down_when_due(self, now: float) -> list[Decision]:
        """A failed, finished rollout scales the candidate down once the scale-down delay is over
        (kept up that long so a person can look at it)."""
        phase = self.state.phase
        if not (phase.failed and phase.terminal and not self.state.cleaned):
            return []
        finished = self.state.finished_at if self.state.finished_at is not None else now
        if now > finished and now - finished >= self.plan.scale_down_delay:
            return [self._emit(DecisionKind.SCALED_DOWN, now, reason="scale-down delay over",
                               actions=[(ActionKind.SCALE, n, v) for v, n in
                                        self.plan.rollback.items() if n == 0])]
        return []

    def _finish_promotion(self, now: float, actor: str, reason: str) -> Decision:
        return self._emit(DecisionKind.PROMOTED, now, phase=Phase.SUCCEEDED, step=len(self.plan.steps),
                          weight=100, actor=actor, reason=reason,
                          evidence=[g.evidence() for g in self.gates],
                          actions=[(ActionKind.SCALE, n, v) for v, n in self.plan.full.items() if n == 0])

    def holding_reasons(self, snapshot: Snapshot | None, now: float,
                        checks: Iterable[CheckResult] = ()) -> list[str]:
        """Why the current step has not advanced yet: what the screen shows under the bar."""
        state = self.state
        if state.phase is Phase.PROMOTING:
            left = self.plan.scale_down_delay - state.hold_elapsed(now)
            delay = [f"scale-down delay: {math.ceil(left)}s left"] if left > 0 else []
            return delay + self._waiting_reasons(analysis=True)
        if state.phase is not Phase.PROGRESSING or state.step >= len(self.plan.steps):
            return []
        step = self.plan.steps[state.step]
        reasons = self._hold_reasons(step)
        reasons += self._waiting_reasons(analysis=step.analysis)
        reasons += self._readiness_reasons(snapshot)
        reasons += self._webhook_reasons(checks)
        return reasons

    def _hold_reasons(self, step: PlanStep) -> list[str]:
        """The step's own clock: an experiment without a winner yet, or observed hold time left."""
        left = step.hold - self._hold.observed
        if step.experiment and self.experiment is not None:
            readout = self.experiment.readout()
            if readout.winner is None:
                return [f"experiment: {readout.summary()}; ends in {math.ceil(max(0, left))}s"]
            return []
        if left > 0:
            why = f" (counting only observed time; not now: {self._hold.why})" \
                if self._hold.why else ""
            return [f"hold: {math.ceil(left)}s left{why}"]
        return []

    def _readiness_reasons(self, snapshot: Snapshot | None) -> list[str]:
        """The candidate's pods the step wants that are not ready yet (or the platform unknown)."""
        wanted = step_replicas(self.plan, self.state.step).get(self.candidate)
        if snapshot is None or not wanted:
            return []
        platform = snapshot.platform
        status = platform.version(self.candidate) if platform and not platform.error else None
        if status is None:
            return ["platform state unknown"]
        if status.desired:
            # Where the lever sizes versions itself (replica-ratio canary, rolling batch,
            # Argo canary), the platform wants fewer candidate pods than full size.
            wanted = min(wanted, status.desired)
        if status.ready < wanted:
            return [f"{self.candidate}: {status.ready}/{wanted} ready"]
        return []

    def _webhook_reasons(self, checks: Iterable[CheckResult]) -> list[str]:
        """Rollout webhooks not saying yes, and on the last step the promotion confirmation."""
        last = self.state.step + 1 >= len(self.plan.steps)
        return [f"webhook {c.name}: {c.detail or 'not confirmed'}" for c in checks
                if c.ok is not True and (c.kind == "rollout" or (c.kind == "confirm-promotion" and last))]

    def _waiting_reasons(self, *, analysis: bool) -> list[str]:
        reasons: list[str] = [d.describe() for d in self.drift]
        if self.state.pending:
            n = len(self.state.pending)
            reasons.append(f"waiting for {n} action{'' if n == 1 else 's'} to apply")
        if analysis:
            if self.stale:  # one line says it; every gate is unknown for the same reason
                reasons.append(f"metrics stale: {self.stale_reason}")
            for gate in self.gates:
                if gate.severity is Severity.INFO or gate.status is GateStatus.PASS:
                    continue
                if not (self.stale and gate.status is GateStatus.UNKNOWN):
                    reasons.append(f"gate {gate.name} {gate.status.value}: {gate.reason}")
        return reasons

    def _inconclusive(self, now: float) -> list[GateResult]:
        """Gates that need evidence the bound holds and still lack it when the hold is over
        (Argo's inconclusive: pause and let a person decide, never promote). After a resume,
        each further hold gets another chance before the next pause."""
        state = self.state
        if self.stale or state.step >= len(self.plan.steps):
            return []
        step = self.plan.steps[state.step]
        if not step.analysis:
            return []
        rounds = 1 + self._inconclusive_pauses.get(state.step_entered, 0)
        if state.hold_elapsed(now) < step.hold * rounds:
            return []
        return [g for g in self.gates if g.require == "evidence" and g.test == "sequential"
                and g.status is GateStatus.UNKNOWN and g.severity is not Severity.INFO]

    def _step_complete(self, snapshot: Snapshot, now: float,
                       checks: tuple[CheckResult, ...]) -> bool:
        return not self.holding_reasons(snapshot, now, checks)

    def _next_index(self) -> int:
        """The step after this one; after an operator's set_weight, the first later step at or
        above that weight, so the plan never lowers a weight an operator chose."""
        index = self.state.step + 1
        if self.state.manual_weight:
            while index < len(self.plan.steps) and self.plan.weight_at(index) < self.state.weight:
                index += 1
        return index

    def _next_phrase(self) -> str:
        index = self._next_index()
        if index >= len(self.plan.steps):
            return "full promotion (100%)"
        return f"step {index + 1}/{len(self.plan.steps)} ({self.plan.weight_at(index)}%)"

    def _next(self, now: float, actor: str, reason: str) -> Decision:
        index = self._next_index()
        if index >= len(self.plan.steps):
            return self._promote(now, actor, reason or "all steps passed")
        return self._enter_step(index, now, actor, reason)

    # ------------------------------------------------------------------ operator commands

    def command(self, cmd: Command, now: float) -> list[Decision]:
        """Carry out an operator command, or refuse it with a reason (never silently).

        Whether it is allowed is `strategies.commands.refusal`, the same rule a screen asks
        before it offers a key or opens a confirmation."""
        if not self.read_only:
            self._hold_checkpoint(now)
        why = refusal(self.state, cmd.kind, read_only=self.read_only, value=cmd.value)
        if why is None and cmd.kind is CommandKind.SET_WEIGHT and cmd.value is None:
            why = "cannot set weight: it must be 0..100, got nothing"
        if why is not None:
            return [self.refuse(cmd, now, why)]
        handler = {
            CommandKind.PROMOTE: self._cmd_promote,
            CommandKind.PROMOTE_FULL: self._cmd_promote_full,
            CommandKind.PAUSE: self._cmd_pause,
            CommandKind.RESUME: self._cmd_resume,
            CommandKind.ROLLBACK: self._cmd_rollback,
            CommandKind.ABORT: self._cmd_abort,
            CommandKind.SET_WEIGHT: self._cmd_set_weight,
            CommandKind.RETRY: self._cmd_retry,
        }[cmd.kind]
        return handler(cmd, now)

    def _why(self, cmd: Command, default: str) -> str:
        return cmd.reason or default

    def _cmd_promote(self, cmd: Command, now: float) -> list[Decision]:
        if self.state.phase is Phase.PENDING:
            return [self._enter_step(0, now, cmd.actor, self._why(cmd, "started by operator"),
                                     kind=DecisionKind.STARTED)]
        if self.state.phase is Phase.PROMOTING:
            return [self._finish_promotion(now, cmd.actor, self._why(cmd, "promoted by operator"))]
        return [self._next(now, cmd.actor, self._why(cmd, "promoted to next step by operator"))]

    def _cmd_promote_full(self, cmd: Command, now: float) -> list[Decision]:
        if self.state.phase is Phase.PROMOTING:
            return [self._finish_promotion(now, cmd.actor, self._why(cmd, "promoted by operator"))]
        return [self._promote(now, cmd.actor, self._why(cmd, "full promotion by operator"))]

    def _cmd_pause(self, cmd: Command, now: float) -> list[Decision]:
        return [self._emit(DecisionKind.PAUSED, now, phase=Phase.PAUSED, actor=cmd.actor,
                           reason=self._why(cmd, "paused by operator"))]

    def _cmd_resume(self, cmd: Command, now: float) -> list[Decision]:
        manual = ""
        if self.state.manual_weight:
            manual = f"; the manual weight {self.state.weight}% stays until {self._next_phrase()}"
        if self.state.step < len(self.plan.steps) and self.plan.steps[self.state.step].pause:
            return [self._next(now, cmd.actor,
                               self._why(cmd, "resumed past manual pause" + manual))]
        return [self._emit(DecisionKind.RESUMED, now, phase=Phase.PROGRESSING, actor=cmd.actor,
                           reason=self._why(cmd, "resumed by operator" + manual))]

    def _cmd_rollback(self, cmd: Command, now: float) -> list[Decision]:
        return [self._rollback(now, cmd.actor, self._why(cmd, "rolled back by operator"),
                               evidence=[{"actor": cmd.actor, "command": "rollback"}])]

    def _cmd_abort(self, cmd: Command, now: float) -> list[Decision]:
        return [self._rollback(now, cmd.actor, self._why(cmd, "aborted by operator"),
                               evidence=[{"actor": cmd.actor, "command": "abort"}], abort=True)]

    def _cmd_retry(self, cmd: Command, now: float) -> list[Decision]:
        return [self._enter_step(0, now, cmd.actor, self._why(cmd, "retried by operator from the "
                                                               "first step"), kind=DecisionKind.RETRIED)]

    def _cmd_set_weight(self, cmd: Command, now: float) -> list[Decision]:
        value = cmd.value if cmd.value is not None else self.state.weight  # refused earlier
        return [self._emit(DecisionKind.WEIGHT_SET, now, phase=Phase.PAUSED, weight=value,
                           actor=cmd.actor,
                           reason=self._why(cmd, f"weight set to {value}% by operator; "
                                                 "paused until resumed"),
                           actions=[(ActionKind.SET_WEIGHT, value, "")])]

    # ------------------------------------------------------------------ events

    def event_for(self, decision: Decision) -> Event:
        return decision_event(decision, self.spec.release.service, len(self.plan.steps),
                              self.plan)


def step_replicas(plan: Plan, index: int) -> Mapping[str, int]:
    """Replicas in force at step `index`: the latest target per version so far."""
    wanted: dict[str, int] = {}
    for step in plan.steps[: index + 1]:
        wanted.update(step.replicas)
    return wanted


_SEVERITY: Mapping[DecisionKind, str] = {
    DecisionKind.RECONCILE: "warning", DecisionKind.ROLLING_BACK: "critical",
    DecisionKind.ROLLED_BACK: "critical", DecisionKind.ABORTED: "critical",
    DecisionKind.PAUSED: "warning", DecisionKind.STALE: "warning", DecisionKind.REFUSED: "warning",
    DecisionKind.ACTION_FAILED: "warning"}


def decision_event(decision: Decision, release: str, steps: int, plan: Plan | None = None
                   ) -> Event:
    """The public event line for one decision (schema: tui/schemas/events.schema.json).

    `step` counts from 1, as the screen's "step 2/4" does (a decision past the last step, such
    as `promoted`, says the last step). The deciding gate's fields are flattened onto the line
    only when a gate decided (a `gate` change, or a failure behind a pause or rollback); a
    `promoted` line keeps the passing gates in `evidence` only. Values carry their `unit`.
    """
    details: dict[str, Any] = {
        "phase": decision.phase.value,
        "step": min(decision.step + 1, steps) if steps else 0,
        "steps": steps,
        "weight": decision.weight,
        "actor": decision.actor,
        "reason": decision.reason,
    }
    if plan is not None and decision.kind in (DecisionKind.STARTED, DecisionKind.STEP,
                                              DecisionKind.RETRIED, DecisionKind.ADOPTED) \
            and decision.step < len(plan.steps):
        details["label"] = plan.steps[decision.step].label
    if decision.evidence:
        evidence = [_with_unit(e) for e in decision.evidence]
        first = evidence[0]
        if decision.kind is DecisionKind.GATE or first.get("status") == GateStatus.FAIL.value:
            for key in ("gate", "metric", "value", "threshold", "baseline", "comparison", "unit"):
                if key in first:
                    details[key] = first[key]
        details["evidence"] = evidence
    if decision.actions:
        details["actions"] = [a.to_dict() for a in decision.actions]
    name = decision.kind.value
    severity = _SEVERITY.get(decision.kind, "info")
    if decision.kind is DecisionKind.GATE:
        status = decision.evidence[0].get("status") if decision.evidence else ""
        severity = str(decision.evidence[0].get("severity", "info")) \
            if status == "fail" else "info"
    return Event(at=decision.at, release=release, event=name, details=frozen_map(details),
                 severity=severity)


def _with_unit(evidence: Mapping[str, Any]) -> dict[str, Any]:
    """A gate's evidence with the unit its value, baseline and threshold are in."""
    out = dict(evidence)
    metric = out.get("metric")
    if isinstance(metric, str) and "unit" not in out:
        out["unit"] = METRIC_UNITS.get(metric, "as queried")
    return out
