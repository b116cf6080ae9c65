"""The fleet: one row per release, built from whatever says most about it right now.

A release that a session drives is shown as that session publishes it (its State); one that
nobody drives is shown as its journal leaves it, with the gates an observer evaluates on fresh
metrics. Either way a row says the same things in the same words, so a list of a hundred
releases reads like one release's top bar. Pure: rows from States and records, sorting and
filtering; who fetches those belongs to `tui/` and `collectors/`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePath

from strategies.model import GateResult, GateStatus, Phase, RolloutState, Severity, State


class Driver(StrEnum):
    """Where a row's figures come from."""

    DRIVEN = "driven"  # a session holds the lease: the row is that session's State
    IDLE = "idle"  # nobody drives: the journal's state, gates observed here
    UNREADABLE = "unreadable"  # the spec or journal cannot be read: the row says why
    DISCOVERED = "discovered"  # found on a platform with no spec here: what the platform says


@dataclass(frozen=True)
class GateCell:
    """The worst gate of a release, in a few words with its evidence."""

    name: str
    status: GateStatus
    severity: Severity
    text: str  # e.g. "error-rate 2.1 % > 1 %" or "p99 unknown: only 3 requests"

    @property
    def rank(self) -> int:
        return gate_rank(self.status, self.severity)


@dataclass(frozen=True)
class FleetRow:
    release: str
    environment: str
    strategy: str
    phase: Phase | None
    step: str  # "2/4" as the top bar shows it; "" before the first step
    desired_weight: int | None
    actual_weight: float | None
    worst_gate: GateCell | None
    since: float | None  # when the current phase or step began
    driver: Driver
    driven_by: str = ""  # who holds the lease (user@host/pid), when someone does
    baseline: str = ""
    candidate: str = ""
    source: str = ""  # the spec file the row comes from
    problem: str = ""  # why the row is partly blank (unreadable spec, driver unreachable)
    stale: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.release, self.environment)

    @property
    def place(self) -> str:
        """Where this release runs, in a word: its environment, else the spec it comes from."""
        if self.environment:
            return self.environment
        spec = PurePath(self.source)
        return spec.stem if spec.suffix == ".toml" else self.source or "—"


def display_names(rows: Sequence[FleetRow]) -> list[str]:
    """Each row's name in the list: the release, and where two rows would read the same (one
    service in several specs, no environment to tell them apart) where it comes from beside
    it: the spec's name, with as many of its folders as it takes to tell them apart."""
    groups: dict[tuple[str, str], list[int]] = {}
    for index, row in enumerate(rows):
        groups.setdefault(row.key, []).append(index)
    names = [row.release for row in rows]
    for members in groups.values():
        if len(members) > 1:
            for index, place in zip(members, _distinct_places([rows[i] for i in members]),
                                    strict=True):
                names[index] = f"{rows[index].release} ({place})"
    return names


def _distinct_places(rows: Sequence[FleetRow]) -> list[str]:
    """`canary`, `docker/dark`, `kubernetes/dark`: for each, the fewest trailing path parts
    that no other row's spec ends with."""
    if any(row.environment or PurePath(row.source).suffix != ".toml" for row in rows):
        return [row.place for row in rows]
    paths = [PurePath(row.source).with_suffix("").parts for row in rows]
    return ["/".join(path[-_unique_depth(path, paths):]) for path in paths]


def _unique_depth(path: tuple[str, ...], paths: Sequence[tuple[str, ...]]) -> int:
    """How many trailing parts of `path` no other path in `paths` ends with (at most all)."""
    for depth in range(1, len(path)):
        if sum(1 for other in paths if other[-depth:] == path[-depth:]) == 1:
            return depth
    return len(path)


def gate_rank(status: GateStatus, severity: Severity) -> int:
    """Higher is worse: failing gates by severity, then unknown ones, then passing ones."""
    if status is GateStatus.FAIL:
        return 10 + severity.rank
    return 5 if status is GateStatus.UNKNOWN else 0


def worst_gate(gates: Iterable[GateResult]) -> GateCell | None:
    """The gate a person should look at first, with its value against its bound."""
    ordered = sorted(gates, key=lambda g: (-gate_rank(g.status, g.severity), g.name))
    if not ordered:
        return None
    gate = ordered[0]
    return GateCell(gate.name, gate.status, gate.severity, describe_gate(gate))


def describe_gate(gate: GateResult) -> str:
    if gate.status is GateStatus.UNKNOWN:
        return f"{gate.name} unknown" + (f": {gate.reason}" if gate.reason else "")
    if gate.value is None or gate.threshold is None:
        return f"{gate.name} {gate.status.value}"
    relation = {"min": "<" if gate.status is GateStatus.FAIL else "≥"}.get(
        gate.comparison, ">" if gate.status is GateStatus.FAIL else "≤")
    return f"{gate.name} {_figure(gate.metric, gate.value)} {relation} {_figure(gate.metric, gate.threshold)}"


def _figure(metric: str, value: float) -> str:
    if metric == "error_rate":
        return f"{value * 100:.2g} %"
    if metric.startswith("latency_"):
        return f"{value * 1000:.0f} ms"
    if metric == "memory":
        return f"{value / 1024 ** 2:.0f} MiB"
    return f"{value:.3g}"


def step_text(rollout: RolloutState, steps: int) -> str:
    if rollout.phase is Phase.PENDING or steps == 0:
        return ""
    return f"{min(rollout.step + 1, steps)}/{steps}"


def row_from_state(state: State, *, environment: str, driver: Driver, driven_by: str = "",
                   source: str = "", baseline: str = "", candidate: str = "",
                   problem: str = "") -> FleetRow:
    """A row as a session publishes the release (its own, or the one we follow)."""
    candidate_view = next((v for v in state.versions if v.version == candidate), None)
    rollout = state.rollout
    return FleetRow(
        release=state.release, environment=environment, strategy=state.strategy,
        phase=rollout.phase, step=step_text(rollout, len(state.steps)),
        desired_weight=rollout.weight,
        actual_weight=None if candidate_view is None else candidate_view.actual_weight,
        worst_gate=worst_gate(state.gates), since=rollout.step_started or rollout.finished_at,
        driver=driver, driven_by=driven_by, baseline=baseline, candidate=candidate,
        source=source, problem=problem or state.metrics_error or "", stale=state.stale)


def row_from_rollout(release: str, rollout: RolloutState, gates: Iterable[GateResult], *,
                     environment: str, strategy: str, steps: int, baseline: str, candidate: str,
                     source: str = "", problem: str = "", stale: bool = False) -> FleetRow:
    """A row for a release nobody drives: its journal's state and the gates observed on it."""
    return FleetRow(
        release=release, environment=environment, strategy=strategy, phase=rollout.phase,
        step=step_text(rollout, steps), desired_weight=rollout.weight, actual_weight=None,
        worst_gate=worst_gate(gates), since=rollout.finished_at or rollout.step_started,
        driver=Driver.IDLE, baseline=baseline, candidate=candidate, source=source,
        problem=problem, stale=stale)


def unreadable_row(release: str, source: str, problem: str) -> FleetRow:
    return FleetRow(release=release, environment="", strategy="", phase=None, step="",
                    desired_weight=None, actual_weight=None, worst_gate=None, since=None,
                    driver=Driver.UNREADABLE, source=source, problem=problem)


# --------------------------------------------------------------------------- the list


class SortKey(StrEnum):
    ATTENTION = "attention"  # failing first, then paused, then the rest by name
    NAME = "name"
    PHASE = "phase"
    SINCE = "since"  # most recent change first


_PHASE_ORDER = {Phase.ROLLING_BACK: 0, Phase.PAUSED: 1, Phase.PROGRESSING: 2, Phase.PROMOTING: 3,
                Phase.PENDING: 4, Phase.ROLLED_BACK: 5, Phase.ABORTED: 6, Phase.SUCCEEDED: 7}


def sort_rows(rows: Sequence[FleetRow], key: SortKey) -> list[FleetRow]:
    def phase(row: FleetRow) -> int:
        return _PHASE_ORDER.get(row.phase, 8) if row.phase is not None else 9

    if key is SortKey.NAME:
        return sorted(rows, key=lambda r: r.key)
    if key is SortKey.PHASE:
        return sorted(rows, key=lambda r: (phase(r), r.key))
    if key is SortKey.SINCE:
        return sorted(rows, key=lambda r: (-(r.since or 0.0), r.key))
    return sorted(rows, key=lambda r: (-(r.worst_gate.rank if r.worst_gate else 0),
                                       r.driver is not Driver.UNREADABLE, phase(r), r.key))


def filter_rows(rows: Iterable[FleetRow], text: str) -> list[FleetRow]:
    """Rows whose release, environment, strategy, phase, versions or driver contain every word."""
    words = text.lower().split()

    def haystack(row: FleetRow) -> str:
        return " ".join((row.release, row.environment, row.strategy,
                         row.phase.value if row.phase else "", row.baseline, row.candidate,
                         row.driver.value, row.driven_by)).lower()

    return [r for r in rows if all(w in haystack(r) for w in words)]


@dataclass(frozen=True)
class ServiceLine:
    """One service across its environments: which version each runs and what is still to go."""

    release: str
    environments: tuple[tuple[str, str], ...]  # (environment, what it runs: "v2" or "v1→v2 50%")
    to_go: tuple[str, ...]  # environments not yet on the newest candidate


def by_service(rows: Sequence[FleetRow]) -> list[ServiceLine]:
    """Group a service's releases across environments (staging, production, ...)."""
    groups: dict[str, list[FleetRow]] = {}
    for row in rows:
        if row.candidate:  # an unreadable or discovered row says nothing about versions
            groups.setdefault(row.release, []).append(row)
    lines = []
    for release, items in sorted(groups.items()):
        newest = max((r.candidate for r in items if r.candidate), default="")
        shown = []
        to_go = []
        ordered = sorted(items, key=lambda r: (r.environment, r.source))
        for row, place in zip(ordered, _distinct_places(ordered), strict=True):
            shown.append((place, running_text(row)))
            if row.phase is not Phase.SUCCEEDED or row.candidate != newest:
                to_go.append(place)
        lines.append(ServiceLine(release, tuple(shown), tuple(to_go)))
    return lines


def running_text(row: FleetRow) -> str:
    """What an environment serves now, in a few characters."""
    if row.phase is Phase.SUCCEEDED:
        return row.candidate
    if row.phase in (Phase.ROLLED_BACK, Phase.ABORTED, Phase.PENDING, None):
        return row.baseline or "?"
    weight = row.actual_weight if row.actual_weight is not None else row.desired_weight
    shown = "?" if weight is None else f"{weight:.0f}%"
    return f"{row.baseline}→{row.candidate} {shown}"
