"""The model every layer shares: what runs, how it behaves, where the rollout is, what was decided.

All objects are frozen: the engine publishes one `State` per tick and nobody mutates it after.
Times are plain epoch seconds (floats) passed in by the caller; nothing here reads a clock.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

EMPTY: Mapping[str, Any] = MappingProxyType({})


def no_entries() -> Mapping[str, Any]:
    """Default factory for mapping fields of frozen dataclasses (a shared empty view)."""
    return EMPTY


def frozen_map(data: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    """A read-only view of a copy, so frozen dataclasses stay frozen all the way down."""
    return MappingProxyType(dict(data or {}))


def rfc3339(ts: float) -> str:
    """UTC timestamp with milliseconds and a trailing Z, as used on every event line."""
    moment = datetime.fromtimestamp(ts, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_rfc3339(text: str) -> float:
    """Inverse of `rfc3339`; accepts any ISO 8601 form Python understands, 'Z' included."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


class Role(StrEnum):
    BASELINE = "baseline"
    CANDIDATE = "candidate"


# --------------------------------------------------------------------------- what runs


@dataclass(frozen=True)
class Instance:
    """One running copy of a version: a process, a container or a pod."""

    id: str
    version: str
    ready: bool
    address: str = ""  # host:port the service answers on, if known
    state: str = "running"  # platform's own word: running, exited, Pending, ...
    restarts: int = 0
    image: str = ""
    metrics_url: str = ""  # where /metrics can be scraped, if the platform knows
    cpu: float | None = None  # CPU in use, in cores (0.5 = half a core); None: not measured
    memory: float | None = None  # resident / working-set memory in bytes; None: not measured
    digest: str = ""  # immutable identity of what runs (image digest), beside the mutable tag


@dataclass(frozen=True)
class VersionStatus:
    """The platform's view of one version: its instances and how many are wanted."""

    version: str
    instances: tuple[Instance, ...] = ()
    desired: int | None = None
    image: str = ""
    updated: int | None = None  # instances already on the newest template (rolling updates)
    # Instances the platform keeps alive, reported where nothing restores one that stopped
    # (Docker has no replica controller: a killed container stays down). A replicas target
    # is judged against it where the platform reports no wanted count of its own.
    running: int | None = None

    @property
    def ready(self) -> int:
        return sum(1 for i in self.instances if i.ready)

    @property
    def total(self) -> int:
        return len(self.instances)

    @property
    def cpu(self) -> float | None:
        """Cores in use by all instances that report it (None when none does)."""
        return _sum_known(i.cpu for i in self.instances)

    @property
    def memory(self) -> float | None:
        """Bytes in use by all instances that report it (None when none does)."""
        return _sum_known(i.memory for i in self.instances)

    @property
    def restarts(self) -> int:
        return sum(i.restarts for i in self.instances)

    @property
    def digests(self) -> tuple[str, ...]:
        """The distinct image digests the instances run: more than one means mixed builds."""
        return tuple(sorted({i.digest for i in self.instances if i.digest}))


def _sum_known(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


@dataclass(frozen=True)
class RouteReading:
    """The router's cohort route read back against the route the journal wants in place.

    A router cannot say "ring 2" back: it holds maps or rules. So the driver hands it the route
    folded from the journal (`strategies.reconcile.RouteTarget`) and the router says what of it
    differs; `cohorts` and `mirror` name the route that was checked, so a reading taken before
    the route changed is never judged against the new one.
    """

    cohorts: int  # cohort rules (rings) open in the route checked
    mirror: int  # percent mirrored in the route checked
    differences: tuple[str, ...] = ()  # one line per difference found; empty: in place

    @property
    def in_place(self) -> bool:
        return not self.differences


@dataclass(frozen=True)
class RouterDown:
    """A reading of a routing lever whose router process was found not serving: off target
    whatever it was last told, since nothing routes (reconcile re-applies the target, and the
    lever call starts the router again)."""

    found: str  # one line: what was found ("nginx: master pid 4242 exited (killed by SIGKILL)")


@dataclass(frozen=True)
class PlatformSnapshot:
    """What the platform and router report at one moment. `error` set means the read failed."""

    at: float
    versions: Mapping[str, VersionStatus] = field(default_factory=no_entries)
    weights: Mapping[str, float] = field(default_factory=no_entries)  # actual traffic percent per version, as routed
    error: str | None = None
    weight_note: str = ""  # e.g. "weight ≈ replicas" where the lever is approximate
    status: str = ""  # the platform's own one-line progress note (rollout status, Argo phase/step)
    route: RouteReading | None = None  # cohort routes read back (None: not read, not judged)
    router_down: str = ""  # the router's own process found not serving: what was found

    def version(self, name: str) -> VersionStatus:
        return self.versions.get(name) or VersionStatus(version=name)


# --------------------------------------------------------------------------- how it behaves


@dataclass(frozen=True)
class Tally:
    """Counts a version has served since the metric source began counting them.

    Monotone: a source that sees an instance's counter reset adds what the instance counted
    after the reset (Prometheus' rule), and an instance it meets for the first time adds from
    that scrape on. The origin is arbitrary, so only differences between two tallies of the same
    source mean anything: those are the counts gates accumulate evidence from, interval by
    interval, with no overlap and nothing counted twice.
    """

    requests: float = 0.0
    errors: float = 0.0
    latency_buckets: Mapping[str, float] = field(default_factory=no_entries)  # `le` -> count

    def minus(self, earlier: Tally) -> Tally | None:
        """What was counted since `earlier`; None if any count went down (a new origin)."""
        requests, errors = self.requests - earlier.requests, self.errors - earlier.errors
        buckets = {le: count - earlier.latency_buckets.get(le, 0.0)
                   for le, count in self.latency_buckets.items()}
        if requests < 0 or errors < 0 or any(v < 0 for v in buckets.values()):
            return None
        return Tally(requests, errors, frozen_map(buckets))

    def plus(self, other: Tally) -> Tally:
        buckets = dict(self.latency_buckets)
        for le, count in other.latency_buckets.items():
            buckets[le] = buckets.get(le, 0.0) + count
        return Tally(self.requests + other.requests, self.errors + other.errors,
                     frozen_map(buckets))

    def scaled(self, factor: float) -> Tally:
        return Tally(self.requests * factor, self.errors * factor,
                     frozen_map({le: c * factor for le, c in self.latency_buckets.items()}))


@dataclass(frozen=True)
class MetricSample:
    """One version's behaviour over the analysis window ending at `at`.

    `None` means "not measured" (no data, no traffic): gates treat it as unknown, never as zero.
    Latencies are in seconds, error_ratio in 0..1, throughput in requests per second.
    """

    version: str
    at: float
    requests: float | None = None  # requests seen in the window (the sample size)
    throughput: float | None = None
    error_ratio: float | None = None
    latency_p50: float | None = None
    latency_p95: float | None = None
    latency_p99: float | None = None
    errors: float | None = None  # failed requests in the window
    custom: Mapping[str, float | None] = field(default_factory=no_entries)
    # Latency histogram over the window, Prometheus style: upper bound ("0.1", "+Inf") ->
    # cumulative count of requests at or below it. Optional; feeds the Mann-Whitney comparison.
    latency_buckets: Mapping[str, float] = field(default_factory=no_entries)
    # Resources of the version's instances, from the platform (strategies.resources): cores,
    # bytes, and restarts since they started. Gates name them cpu, memory, restarts.
    cpu: float | None = None
    memory: float | None = None
    restarts: float | None = None
    # Everything counted so far (see Tally): where the source has it, gates accumulate exact
    # interval counts from it; without it they fall back to a share of the window's counts.
    tally: Tally | None = None

    def value(self, metric: str) -> float | None:
        """Look a metric up by its spec name (error_rate, latency_p99, ..., or a custom name)."""
        attr = METRIC_ATTRS.get(metric)
        if attr is not None:
            return getattr(self, attr)
        return self.custom.get(metric)


METRIC_ATTRS: Mapping[str, str] = MappingProxyType(
    {
        "error_rate": "error_ratio",
        "latency_p50": "latency_p50",
        "latency_p95": "latency_p95",
        "latency_p99": "latency_p99",
        "throughput": "throughput",
        "requests": "requests",
        "cpu": "cpu",
        "memory": "memory",
        "restarts": "restarts",
    }
)
BUILTIN_METRICS = frozenset(METRIC_ATTRS)
# The unit a metric's values are in, wherever a number leaves the engine (events, alerts): the
# screen shows latencies in ms, the events keep SI seconds and say so.
METRIC_UNITS: Mapping[str, str] = MappingProxyType(
    {
        "error_rate": "ratio",
        "latency_p50": "seconds",
        "latency_p95": "seconds",
        "latency_p99": "seconds",
        "throughput": "requests/s",
        "requests": "requests",
    }
)


@dataclass(frozen=True)
class MetricsSnapshot:
    """What the metric source answered at one collection. `error` set means the read failed."""

    at: float
    samples: Mapping[str, MetricSample] = field(default_factory=no_entries)
    source: str = ""
    error: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """Everything collected in one tick. Either part may be None when its collection timed out."""

    at: float
    platform: PlatformSnapshot | None = None
    metrics: MetricsSnapshot | None = None


# --------------------------------------------------------------------------- gates


class GateStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"


class Severity(StrEnum):
    CRITICAL = "critical"  # roll back
    WARNING = "warning"  # pause
    INFO = "info"  # event only

    @property
    def rank(self) -> int:
        return {"info": 0, "warning": 1, "critical": 2}[self.value]


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict at one tick, with the evidence that explains it.

    `status` is this tick's comparison; `breached` says it has failed for the whole `for`
    duration, which is when its severity acts.
    """

    name: str
    metric: str
    severity: Severity
    status: GateStatus
    value: float | None = None
    baseline: float | None = None
    threshold: float | None = None  # the bound that decided (absolute, or baseline × ratio)
    comparison: str = ""  # "max", "min", "max_ratio", "compare" ...
    reason: str = ""
    failing_since: float | None = None
    for_seconds: float = 0.0
    breached: bool = False
    samples: float | None = None
    # The evidence (see strategies.gates): a "sequential" test on the step's counts, or a
    # "point" comparison of this window. estimate/low/high/bound are on the test's own scale:
    # "share" of requests (error rate, share slower than a latency bound), "ratio" of
    # candidate to baseline rate, or "" (the metric itself).
    test: str = "point"
    estimate: float | None = None
    low: float | None = None
    high: float | None = None
    bound: float | None = None
    scale: str = ""
    toward_fail: float = 0.0  # 0..1 of the evidence needed to fail
    toward_pass: float = 0.0  # 0..1 of what passing needs (min_requests, or evidence it holds)
    note: str = ""
    require: str = "no-breach"
    confidence: float = 0.99
    # A latency bound tested as a share ("≤ 1% of requests slower than 400ms"): the latency
    # itself, in seconds (the quantile's bound: p99 ≤ 400ms), for a chart of that quantile.
    limit: float | None = None

    def for_progress(self, now: float) -> float:
        """0..1: how much of the `for` window the current failure has used."""
        if self.failing_since is None:
            return 0.0
        if self.for_seconds <= 0:
            return 1.0
        return max(0.0, min(1.0, (now - self.failing_since) / self.for_seconds))

    def evidence(self) -> dict[str, Any]:
        return {
            "gate": self.name,
            "metric": self.metric,
            "status": self.status.value,
            "value": _clean(self.value),
            "baseline": _clean(self.baseline),
            "threshold": _clean(self.threshold),
            "comparison": self.comparison,
            "severity": self.severity.value,
            "reason": self.reason,
            "test": self.test,
            "estimate": _clean(self.estimate),
            "low": _clean(self.low),
            "high": _clean(self.high),
            "bound": _clean(self.bound),
            "scale": self.scale,
            "toward_fail": round(self.toward_fail, 3),
            "toward_pass": round(self.toward_pass, 3),
            "samples": _clean(self.samples),
            "confidence": self.confidence,
            "require": self.require,
            **({"note": self.note} if self.note else {}),
        }


def _clean(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return round(value, 6)


# --------------------------------------------------------------------------- the rollout


class Phase(StrEnum):
    PENDING = "pending"
    PROGRESSING = "progressing"
    PAUSED = "paused"
    PROMOTING = "promoting"  # last step reached; finishing (e.g. scale-down delay)
    SUCCEEDED = "succeeded"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"

    @property
    def terminal(self) -> bool:
        """Nothing moves any more (until an operator retries)."""
        return self in (Phase.SUCCEEDED, Phase.ROLLED_BACK, Phase.ABORTED)

    @property
    def failed(self) -> bool:
        """The release did not go out: traffic is going, or has gone, back to the baseline."""
        return self in (Phase.ROLLING_BACK, Phase.ROLLED_BACK, Phase.ABORTED)


class CommandKind(StrEnum):
    PROMOTE = "promote"  # next step
    PROMOTE_FULL = "promote_full"  # skip remaining steps and analysis
    PAUSE = "pause"
    RESUME = "resume"
    ROLLBACK = "rollback"
    ABORT = "abort"
    SET_WEIGHT = "set_weight"
    RETRY = "retry"  # start an aborted or rolled-back release again from its first step


@dataclass(frozen=True)
class Command:
    kind: CommandKind
    value: int | None = None  # the weight for set_weight
    actor: str = "operator"
    reason: str = ""


class ActionKind(StrEnum):
    """The levers an action can pull. The values are the journal's words: never rename one."""

    SET_WEIGHT = "set_weight"  # candidate traffic percent
    SCALE = "scale"  # replicas of one version
    SET_COHORTS = "set_cohorts"  # how many of the plan's cohort rules (rings) the router applies
    SET_MIRROR = "set_mirror"  # percent of live traffic copied to the candidate (dark launch)


@dataclass(frozen=True)
class Action:
    """A lever to pull. Idempotent by construction: it states a target, not a delta."""

    id: str
    kind: ActionKind
    value: int
    version: str = ""

    def __post_init__(self) -> None:  # a plain "scale" is accepted: the enum's value is the word
        object.__setattr__(self, "kind", ActionKind(self.kind))

    def describe(self) -> str:
        if self.kind is ActionKind.SCALE:
            return f"scale {self.version} to {self.value}"
        if self.kind is ActionKind.SET_COHORTS:
            return f"open {self.value} cohort ring(s) to the candidate"
        if self.kind is ActionKind.SET_MIRROR:
            return f"mirror {self.value}% of traffic to the candidate"
        return f"set candidate weight to {self.value}%"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind.value, "value": self.value, "version": self.version}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Action:
        return cls(
            id=str(data["id"]),
            kind=ActionKind(data["kind"]),
            value=int(data["value"]),
            version=str(data.get("version", "")),
        )


@dataclass(frozen=True)
class LeverTarget:
    """The last target a lever was given and confirmed (folded from `action_done` records):
    what reconciliation holds the world to."""

    kind: str  # the action kind: "set_weight" | "scale"
    version: str
    value: int
    at: float  # when the action was confirmed done

    @staticmethod
    def key_of(kind: str, version: str) -> str:
        return f"{kind}:{version}"

    @property
    def key(self) -> str:
        return self.key_of(self.kind, self.version)


@dataclass(frozen=True)
class Drift:
    """A lever the world does not hold where the journal put it (see strategies.reconcile)."""

    lever: str  # LeverTarget.key
    what: str  # "weight of v2", "replicas of v1"
    desired: int
    observed: float | None
    since: float
    corrections: int  # re-applied this many times in this episode
    persistent: bool  # survived several corrections or lasted long: alerted, holds the step
    settled: bool = False  # back where it should be, not yet for long enough to be forgotten
    detail: str = ""  # what differs, where the lever's state is not one number (cohort routes)

    def describe(self) -> str:
        unit = "%" if self.lever.startswith("set_weight") else ""
        seen = "unknown" if self.observed is None else f"{self.observed:g}{unit}"
        text = f"drift: {self.what} is {seen}, journal says {self.desired}{unit}"
        if self.detail:  # cohort routes name what differs; a dead router, what was found
            text = f"drift: {self.what} differ from the journal's: {self.detail}" \
                if self.lever.startswith("set_cohorts") else f"drift: {self.what} unknown: {self.detail}"
        if self.settled:
            text = f"drift: {self.what} back at {self.desired}{unit}, settling"
            if self.detail:
                text = f"drift: {self.what} back in place, settling"
        if self.corrections:
            text += f" (re-applied {self.corrections}×)"
        return text

    def to_dict(self) -> dict[str, Any]:
        out = {"lever": self.lever, "what": self.what, "desired": self.desired,
               "observed": self.observed, "since": self.since,
               "corrections": self.corrections, "persistent": self.persistent}
        if self.detail:  # cohort routes and dead routers only: older records stay as they were
            out["detail"] = self.detail
        return out


@dataclass(frozen=True)
class RolloutState:
    """Where the rollout is. Derived only by folding journal records, so a restart rebuilds it."""

    phase: Phase = Phase.PENDING
    step: int = 0  # index into the plan's steps; == len(steps) once fully promoted
    step_started: float | None = None  # when the current step's hold began
    step_entered: float | None = None  # when the current step (or attempt) began: gate evidence starts here
    weight: int = 0  # desired candidate traffic percent
    paused_by: str = ""  # "operator" | "gate:<name>" | "plan" when paused
    pause_reason: str = ""
    paused_at: float | None = None
    hold_elapsed_before_pause: float = 0.0  # hold time used before the current pause
    reason: str = ""  # why the last transition happened
    finished_at: float | None = None
    seq: int = 0  # number of journal records folded in
    done_actions: frozenset[str] = frozenset()
    pending: tuple[Action, ...] = ()  # decided, not yet confirmed done
    gate_failing_since: Mapping[str, float] = field(default_factory=no_entries)
    manual_weight: bool = False  # set_weight overrode the plan's weight for this step
    cause: tuple[Mapping[str, Any], ...] = ()  # evidence of the decision that ended the rollout
    cleaned: bool = False  # the losing side has been scaled down after the delay
    attempt_started: float | None = None  # when this attempt began (started, or the last retry)
    cohorts: int = 0  # cohort rules (rings) the router should apply: the latest set_cohorts target
    mirror: int = 0  # percent mirrored to the candidate: the latest set_mirror target
    targets: Mapping[str, LeverTarget] = field(default_factory=no_entries)  # confirmed, per lever

    @property
    def paused(self) -> bool:
        return self.phase is Phase.PAUSED

    def hold_elapsed(self, now: float) -> float:
        """Hold time used in this step: frozen while paused, so a pause stops the timer.

        Also frozen once the rollout stops moving forward (rolling back or finished), and never
        negative when `now` is earlier than the step's start (a clock that stepped back).
        """
        if self.step_started is None:
            return self.hold_elapsed_before_pause
        if self.phase in (Phase.PAUSED, Phase.ROLLING_BACK) or self.phase.terminal:
            return self.hold_elapsed_before_pause
        return self.hold_elapsed_before_pause + max(0.0, now - self.step_started)


class DecisionKind(StrEnum):
    """What a decision was. The values are the journal's and the event stream's words (a
    decision's event is named by its kind), so a value is never renamed: old journals resume."""

    STARTED = "started"  # the rollout entered its first step
    STEP = "step"  # the rollout entered a later step
    ADOPTED = "adopted"  # a resumed run continues at a step of a changed plan (--adopt-spec)
    PAUSED = "paused"
    RESUMED = "resumed"
    WEIGHT_SET = "weight_set"  # an operator moved the weight by hand (pauses)
    PROMOTING = "promoting"  # last step passed: full weight, finishing
    PROMOTED = "promoted"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"
    SCALED_DOWN = "scaled_down"  # the losing side removed after the scale-down delay
    RETRIED = "retried"  # an ended release started again from its first step
    GATE = "gate"  # a gate's status changed (its failure clock lives in the journal)
    ACTION_DONE = "action_done"
    ACTION_FAILED = "action_failed"
    REFUSED = "refused"  # a command the engine would not carry out
    STALE = "stale"  # metrics went stale: the rollout holds
    FRESH = "fresh"  # metrics are fresh again
    RECONCILE = "reconcile"  # a lever found off its journaled target, set again
    EVIDENCE = "evidence"  # a checkpoint of the step's gate evidence (journal only, no event)


@dataclass(frozen=True)
class Decision:
    """One thing the engine decided, with its evidence. Journaled before any action is taken."""

    kind: DecisionKind
    at: float
    phase: Phase  # the phase after this decision
    step: int
    weight: int
    actor: str = "engine"  # engine | operator | gate:<name> | plan
    reason: str = ""
    evidence: tuple[Mapping[str, Any], ...] = ()
    actions: tuple[Action, ...] = ()
    refused: bool = False  # a command the engine would not carry out

    def __post_init__(self) -> None:  # a plain "paused" is accepted: the enum's value is the word
        object.__setattr__(self, "kind", DecisionKind(self.kind))


# --------------------------------------------------------------------------- events


EVENT_SCHEMA_VERSION = 2
"""Version of the event lines (`schema` in each line); tui/schemas/events.schema.json describes
it. 2: `schema` added, `step` counts from 1 as the screen does, `unit` beside gate values,
gate fields flattened only onto decisions a gate made. (1: no `schema`, `step` from 0.)"""


@dataclass(frozen=True)
class Event:
    """One line of the event stream: JSON with ts (RFC 3339 UTC), release, event and details."""

    at: float
    release: str
    event: str
    details: Mapping[str, Any] = field(default_factory=no_entries)
    severity: str = "info"

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ts": rfc3339(self.at), "release": self.release, "event": self.event,
                                "schema": EVENT_SCHEMA_VERSION}
        for key, value in self.details.items():
            if key not in body:
                body[key] = value
        return body

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, MappingProxyType):
        return dict(value)
    if isinstance(value, frozenset | set | tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# --------------------------------------------------------------------------- what is published


@dataclass(frozen=True)
class VersionView:
    """One row of the versions table: platform facts and metrics for one version, merged."""

    version: str
    role: Role
    desired_weight: int
    actual_weight: float | None
    ready: int
    total: int
    sample: MetricSample | None
    image: str = ""
    digest: str = ""  # the image digest the instances run ("" unknown; "mixed" when they differ)


class ViewMode(StrEnum):
    FOLLOW = "follow"  # showing the State another session (the lease holder) publishes
    OBSERVE = "observe"  # nobody drives: gates evaluated here, no action taken


@dataclass(frozen=True)
class Viewing:
    """Set on a State shown by a session that does not drive: whom it follows, and since when
    the driver has been gone (None while it answers)."""

    mode: ViewMode
    driver: str = ""  # user@host/pid of the lease holder, when known
    url: str = ""  # the driver's state server
    gone_since: float | None = None
    note: str = ""  # one line: why nothing is connected, or what observing means


@dataclass(frozen=True)
class FlagView:
    """A flag release's flag as the screen names it: which flag, on which lever, where it lives,
    and the share of users each variant gets as the lever reads it back."""

    name: str
    lever: str  # flagd | unleash
    location: str  # the flagd file, or the Unleash URL and environment
    baseline: str  # variant that runs today's code path
    candidate: str  # variant that runs the new code path
    share: float | None  # the candidate's share as read back (None: not read yet or unreadable)
    kill_switch: bool = False  # rollback also disables the flag

    def shares(self) -> tuple[tuple[str, float | None], ...]:
        """(variant, percent of users) for both variants, baseline first."""
        if self.share is None:
            return ((self.baseline, None), (self.candidate, None))
        return ((self.baseline, 100.0 - self.share), (self.candidate, self.share))


@dataclass(frozen=True)
class Readout:
    """An A/B experiment's readout (see strategies.experiment): the rates, the lift of B over
    A with its interval, the winner."""

    control: str
    treatment: str
    confidence: float
    control_trials: float = 0.0
    control_success: float = 0.0
    treatment_trials: float = 0.0
    treatment_success: float = 0.0
    lift: float | None = None  # B's conversion / A's - 1
    low: float | None = None
    high: float | None = None
    evidence_better: float = 0.0  # log e-value that B converts more
    evidence_worse: float = 0.0  # log e-value that B converts less
    threshold: float = 0.0  # log(2/α): where a side decides
    winner: str | None = None

    @property
    def control_rate(self) -> float | None:
        return self.control_success / self.control_trials if self.control_trials else None

    @property
    def treatment_rate(self) -> float | None:
        return self.treatment_success / self.treatment_trials if self.treatment_trials else None

    def summary(self) -> str:
        """One line, e.g. 'v2 wins: converts 19.8% vs 10.1% (lift +96%, 95% interval +52%..+151%)'."""
        rates = f"{_pct(self.treatment_rate)} vs {_pct(self.control_rate)}"
        interval = f"lift {_signed(self.lift)}, {self.confidence:.0%} interval " \
                   f"{_signed(self.low)}..{_signed(self.high)}"
        if self.winner is None:
            return f"no winner yet: {self.treatment} converts {rates} of {self.control} ({interval})"
        loser = self.control if self.winner == self.treatment else self.treatment
        return f"{self.winner} wins over {loser}: {self.treatment} converts {rates} ({interval})"

    def to_dict(self) -> dict[str, Any]:
        return {"experiment": "conversion", "winner": self.winner, "control": self.control,
                "treatment": self.treatment, "confidence": self.confidence,
                "control_rate": _rounded(self.control_rate), "treatment_rate": _rounded(self.treatment_rate),
                "control_trials": _rounded(self.control_trials),
                "treatment_trials": _rounded(self.treatment_trials),
                "lift": _rounded(self.lift), "low": _rounded(self.low), "high": _rounded(self.high),
                "evidence_better": _rounded(self.evidence_better),
                "evidence_worse": _rounded(self.evidence_worse),
                "threshold": _rounded(self.threshold), "reason": self.summary()}


def _rounded(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, 6)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _signed(value: float | None) -> str:
    if value is None:
        return "?"
    if not math.isfinite(value):
        return "+∞"
    return f"{value * 100:+.0f}%"


@dataclass(frozen=True)
class CohortView:
    """One ring of a plan on screen: who is in it, the share of everyone it adds, where it stands.

    `requests` and `error_ratio` are the candidate's over the window while this ring is the
    current one: the ring's own traffic, which its gates judge.
    """

    name: str
    who: str  # "header X-User-Group in (staff)", "20% of everyone", "mirror 50% (dark)"
    share: int | None  # candidate percent of everyone from this ring on (None: unchanged)
    status: str  # "reached" | "current" | "ahead" | "closed" (rolled back)
    requests: float | None = None
    error_ratio: float | None = None


@dataclass(frozen=True)
class State:
    """Everything a surface needs to draw one frame. Widgets render this and nothing else."""

    at: float
    release: str
    strategy: str
    platform_kind: str
    metrics_source: str
    rollout: RolloutState
    steps: tuple[str, ...]  # human labels of the plan's steps
    hold: float  # hold of the current step in seconds (0 when none)
    gates: tuple[GateResult, ...] = ()
    versions: tuple[VersionView, ...] = ()
    history: Mapping[str, tuple[MetricSample, ...]] = field(default_factory=no_entries)
    events: tuple[Event, ...] = ()
    metrics_at: float | None = None  # when metrics were last read successfully
    metrics_error: str | None = None
    platform_error: str | None = None
    stale: bool = False
    stale_reason: str = ""  # why metrics are stale ("" when fresh)
    read_only: bool = False
    weight_note: str = ""
    baseline: str = ""  # version names, so every surface labels the two sides alike
    candidate: str = ""
    holding: tuple[str, ...] = ()  # why the current step has not advanced yet
    platform_status: str = ""  # the platform's own progress line (Argo phase/step, rollout status)
    observe: bool = False  # this session only watches: gates evaluated, nothing ever acted on
    resumed: bool = False  # the rollout was rebuilt from a journal written by an earlier run
    journal: str = ""  # where decisions are journaled ("" when kept in memory only)
    demo: bool = False  # the embedded demo drives this release (surfaces may say so)
    drift: tuple[Drift, ...] = ()  # levers the world does not hold where the journal put them
    hold_observed: float | None = None  # hold time observed at the step's weight (None: wall clock)
    flag: FlagView | None = None  # set in a flag release (a flag lever instead of a router)
    cohorts: tuple[CohortView, ...] = ()  # rings / cohorts of the plan, in order (ring, dark)
    experiment: Readout | None = None  # an A/B plan's experiment readout
    tick_seconds: float | None = None  # how long the last collect-decide-act tick took
    viewing: Viewing | None = None  # None: this session drives (or replays) the release
    # The least time the plan still needs (holds ahead + scale-down), while it moves on by
    # itself; None when paused, ended or not started. Counted only up to `waits_at`, the first
    # later step that waits for the operator (0-based; None when none does).
    time_left: float | None = None
    waits_at: int | None = None

    @property
    def metrics_age(self) -> float | None:
        return None if self.metrics_at is None else max(0.0, self.at - self.metrics_at)

    def hold_left(self) -> float:
        used = self.rollout.hold_elapsed(self.at) if self.hold_observed is None \
            else self.hold_observed
        return max(0.0, self.hold - used)
