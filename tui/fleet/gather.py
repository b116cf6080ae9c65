"""Gathers one row per release for the fleet, each from the best source there is for it.

A release a session drives: that session's published State (its lease says where it answers),
so the fleet shows exactly what the driver decided and asks its metrics of nobody. A release
nobody drives: its journal's state, with gates evaluated by an observer engine (it never acts)
on metrics read for the whole fleet at once (one Prometheus query per metric for every release
on the default PromQL). A spec or journal that cannot be read is a row that says why.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from collectors.fleet_discovery import discover_docker, discover_kubernetes, discovery_trouble
from collectors.fleet_prometheus import FleetPrometheus, batch_key, batchable
from collectors.lease import Holder, Lease, LeaseError
from collectors.prometheus_source import PrometheusSource, gate_queries
from strategies.engine import Engine
from strategies.fleet import Driver, FleetRow, row_from_rollout, row_from_state, unreadable_row
from strategies.journal import NotAJournal, last_run, read_records
from strategies.model import (
    MetricsSnapshot,
    Role,
    Snapshot,
    State,
    VersionView,
    Viewing,
    ViewMode,
)
from strategies.plans import build_plan
from strategies.spec import ReleaseSpec, SpecError, load_spec
from tui.follow import first_state
from tui.seat import lease_for

STATE_TIMEOUT = 2.0  # a driver slower than this shows as unreachable for this refresh


@dataclass
class Member:
    """One release of the fleet and what is kept about it between refreshes."""

    spec: ReleaseSpec
    lease: Lease
    journal: Path
    steps: int  # the plan's length, for "step 2/4"
    journal_mark: tuple[float, int] | None = None  # (mtime, size) the observer was built from
    observer: Engine | None = None
    problem: str = ""
    opened: bool = False
    """Somebody drilled into this release: its gates carry their confidence bounds from then
    on. The list shows each gate's figure against its bound, not its interval, so the other
    observers skip the bounds' search (most of a hundred releases' gate cost)."""

    @property
    def source(self) -> str:
        return str(self.spec.path)


@dataclass(frozen=True)
class Discovery:
    """A platform to look for releases on: `docker[=HOST]` or `kubernetes[=NAMESPACE[@CONTEXT]]`
    (Argo Rollouts, and Deployments / HTTPRoutes labelled `releasedeck.io/release`)."""

    kind: str
    target: str = ""

    @classmethod
    def parse(cls, text: str) -> Discovery:
        kind, _, target = text.partition("=")
        if kind not in ("docker", "kubernetes"):
            raise ValueError(f"--discover {text}: expected docker[=HOST] or "
                             "kubernetes[=NAMESPACE[@CONTEXT]]")
        return cls(kind, target)

    async def rows(self) -> list[FleetRow]:
        if self.kind == "docker":
            return await discover_docker(self.target)
        namespace, _, context = self.target.partition("@")
        return await discover_kubernetes({"namespace": namespace, "context": context})


@dataclass
class FleetGatherer:
    members: list[Member]
    unreadable: list[FleetRow] = field(default_factory=list)
    discover: tuple[Discovery, ...] = ()
    metric_reads: int = 0  # metric collections made (for the scale benchmark and tests)
    _batches: dict[tuple, FleetPrometheus] = field(default_factory=dict)
    _singles: dict[str, PrometheusSource] = field(default_factory=dict)

    @classmethod
    def from_paths(cls, paths: Sequence[str], discover: Sequence[Discovery] = ()) -> FleetGatherer:
        members, unreadable = [], []
        for path in spec_files(paths):
            try:
                spec = load_spec(path)
            except SpecError as exc:
                first = exc.lines()[0] if exc.lines() else str(exc)
                unreadable.append(unreadable_row(Path(path).stem, str(path), first))
                continue
            try:
                lease = lease_for(spec)
            except LeaseError as exc:  # e.g. a Kubernetes release and no kubeconfig here
                # The spec itself is readable: the row still says what release it describes.
                unreadable.append(replace(
                    unreadable_row(spec.release.service, str(path), f"who drives it: {exc}"),
                    driven_by=discovery_trouble(exc), environment=spec.release.environment,
                    strategy=spec.strategy.kind, baseline=spec.release.baseline,
                    candidate=spec.release.candidate))
                continue
            members.append(Member(spec, lease, spec.journal_path(), len(build_plan(spec).steps)))
        return cls(members, unreadable, tuple(discover))

    async def refresh(self, now: float) -> list[FleetRow]:
        holders = await asyncio.gather(*(self._holder(m) for m in self.members))
        idle = [m for m, h in zip(self.members, holders, strict=True) if h is None]
        metrics = await self._idle_metrics(idle, now)
        rows = await asyncio.gather(*(
            self._driven_row(m, h) if h is not None else self._idle_row(m, metrics.get(m.source), now)
            for m, h in zip(self.members, holders, strict=True)))
        found = await asyncio.gather(*(d.rows() for d in self.discover), return_exceptions=True)
        discovered: list[FleetRow] = []
        for where, answer in zip(self.discover, found, strict=True):
            if isinstance(answer, BaseException):
                name = f"{where.kind}{'=' + where.target if where.target else ''}"
                discovered.append(replace(
                    unreadable_row(name, f"--discover {name}", f"discovery failed: {answer}"),
                    driven_by=discovery_trouble(answer)))
            else:
                discovered.extend(answer)
        return [*rows, *self.unreadable, *discovered]

    async def state_of(self, source: str) -> State | None:
        """The State of one release of the list, for a drill-down from the operator's app: its
        driver's published State when a session drives it and answers, else its journal's."""
        member = next((m for m in self.members if m.source == source), None)
        if member is None:
            return None
        holder = await self._holder(member)
        if holder is not None and not holder.token:
            try:
                state = await first_state(holder.attach, timeout=STATE_TIMEOUT)
                return replace(state, read_only=True, viewing=Viewing(
                    ViewMode.FOLLOW, driver=holder.identity, url=holder.attach))
            except Exception:
                pass  # the journal's state below; the list row already says why
        member.opened = True
        self._observer(member).explain = True  # folded from the journal again when it grew
        return journal_state(member, time.time())

    async def close(self) -> None:
        for reader in [*self._batches.values(), *self._singles.values()]:
            await reader.close()

    # ------------------------------------------------------------------ driven releases

    @staticmethod
    async def _holder(member: Member) -> Holder | None:
        try:
            return await member.lease.holder()
        except Exception as exc:  # an unreadable lease: treat as idle, and say so
            member.problem = f"lease unreadable: {exc}"
            return None

    async def _driven_row(self, member: Member, holder: Holder) -> FleetRow:
        spec = member.spec
        common = {"environment": spec.release.environment, "driver": Driver.DRIVEN,
                  "driven_by": holder.identity, "source": member.source,
                  "baseline": spec.release.baseline, "candidate": spec.release.candidate}
        if holder.token:
            return self._idle_row_problem(member, holder, "driver's state server needs a token")
        if not holder.attach:  # not listening yet, or its disk refused to say where
            return self._idle_row_problem(member, holder, "its lease does not say where it answers")
        try:
            state = await first_state(holder.attach, timeout=STATE_TIMEOUT)
        except Exception as exc:
            return self._idle_row_problem(member, holder, f"driver not answering: {exc}")
        return row_from_state(state, **common)

    def _idle_row_problem(self, member: Member, holder: Holder, problem: str) -> FleetRow:
        row = self._journal_row(member, (), problem)
        return replace(row, driver=Driver.DRIVEN, driven_by=holder.identity)

    # ------------------------------------------------------------------ idle releases

    async def _idle_metrics(self, idle: Sequence[Member], now: float) -> dict[str, MetricsSnapshot]:
        """Metrics of every idle release on Prometheus: batched where they can share queries."""
        groups, singles = _batches_and_singles(idle)
        jobs = []
        for key, members in groups.items():
            reader = await self._batch_reader(key, members)
            jobs.append((members, reader.collect_fleet(now)))
        for member in singles:
            reader = self._singles.get(member.source)
            if reader is None:
                reader = self._singles[member.source] = PrometheusSource.for_release(
                    member.spec, record_raw=False)
            versions = (member.spec.release.baseline, member.spec.release.candidate)
            jobs.append(([member], reader.collect(versions, None, now)))
        answers = await asyncio.gather(*(job for _, job in jobs), return_exceptions=True)
        self.metric_reads += len(jobs)
        return {member.source: _answer_for(member, answer, now)
                for (members, _), answer in zip(jobs, answers, strict=True) for member in members}

    async def _batch_reader(self, key: tuple, members: list[Member]) -> FleetPrometheus:
        """The batch's reader, made anew (the old one closed) when its set of services changed,
        since the shared queries name every service."""
        services = sorted({m.spec.release.service for m in members})
        reader = self._batches.get(key)
        if reader is None or reader.services != tuple(services):
            if reader is not None:
                await reader.close()
            reader = self._batches[key] = FleetPrometheus(members[0].spec.metrics, services)
        return reader

    async def _idle_row(self, member: Member, metrics: MetricsSnapshot | None, now: float) -> FleetRow:
        observer = self._observer(member)
        gates = ()
        if metrics is not None:
            observer.tick(Snapshot(at=now, metrics=metrics), now)
            gates = observer.gates
        problem = member.problem or (metrics.error if metrics is not None and metrics.error else "")
        return self._journal_row(member, gates, problem)

    def _journal_row(self, member: Member, gates, problem: str) -> FleetRow:
        spec = member.spec
        observer = self._observer(member)
        return row_from_rollout(
            spec.release.service, observer.state, gates, environment=spec.release.environment,
            strategy=spec.strategy.kind, steps=member.steps, baseline=spec.release.baseline,
            candidate=spec.release.candidate, source=member.source, problem=problem,
            stale=observer.stale)

    def _observer(self, member: Member) -> Engine:
        """An observing engine folded from the journal's last run; rebuilt when the journal grows."""
        path = member.journal
        try:
            stat = path.stat()
            mark = (stat.st_mtime, stat.st_size)
        except FileNotFoundError:
            mark = None
        if member.observer is None or mark != member.journal_mark:
            records = []
            if mark is not None:
                records = _last_run(member)
            member.observer = Engine(member.spec, records=records, observe=True,
                                     explain=member.opened)
            member.journal_mark = mark
        return member.observer


def _last_run(member: Member) -> list[dict[str, Any]]:
    """The journal's last run of the member's release; none from a device or FIFO, or from a
    journal the OS will not let us read (said in the row's problem: a traceback took down the
    whole fleet for one unreadable file)."""
    try:
        read = read_records(member.journal)
    except NotAJournal:
        return []
    except OSError as exc:
        member.problem = member.problem or f"journal unreadable: {exc.strerror or exc}"
        return []
    spec = member.spec.release
    return last_run(read.records, spec.service, spec.baseline, spec.candidate)


def journal_state(member: Member, now: float) -> State:
    """What a release nobody drives looks like from its journal alone: phase, step, weights and
    the gates as last journaled; no platform or metrics (nothing here reads them)."""
    spec, engine = member.spec, member.observer
    assert engine is not None  # built by the first refresh, or below
    rollout = engine.state
    views = tuple(VersionView(version=version, role=role, actual_weight=None, ready=0, total=0,
                              sample=None,
                              desired_weight=rollout.weight if role is Role.CANDIDATE
                              else 100 - rollout.weight)
                  for version, role in ((spec.release.baseline, Role.BASELINE),
                                        (spec.release.candidate, Role.CANDIDATE)))
    return State(at=now, release=spec.release.service, strategy=spec.strategy.kind,
                 platform_kind=spec.platform.kind, metrics_source=spec.metrics.source,
                 rollout=rollout, steps=engine.plan.labels(), hold=engine.step_hold(),
                 gates=engine.gates, versions=views, read_only=True, observe=True,
                 baseline=spec.release.baseline, candidate=spec.release.candidate,
                 journal=str(member.journal), stale=engine.stale,
                 viewing=Viewing(ViewMode.OBSERVE, note="nobody drives it: its journal's state"))


def _batches_and_singles(idle: Sequence[Member]) -> tuple[dict[tuple, list[Member]], list[Member]]:
    """Idle releases on Prometheus, grouped where one query can serve them all (same source and
    shape, no gate with its own query); the rest are read one by one. Scrape sources are left
    out: they need the platform's instances, and only a driver reads those."""
    groups: dict[tuple, list[Member]] = {}
    singles: list[Member] = []
    for member in idle:
        metrics = member.spec.metrics
        if metrics.source != "prometheus":
            continue
        if batchable(metrics, member.spec.release.service) and not gate_queries(member.spec):
            groups.setdefault(batch_key(metrics), []).append(member)
        else:
            singles.append(member)
    return groups, singles


def _answer_for(member: Member, answer: MetricsSnapshot | dict[str, MetricsSnapshot] | BaseException,
                now: float) -> MetricsSnapshot:
    """One release's metrics out of its read's answer: an error for a failed read, a batch's
    entry for its service (or an error saying the batch had none)."""
    if isinstance(answer, BaseException):
        return MetricsSnapshot(at=now, error=f"metrics: {answer}")
    if isinstance(answer, MetricsSnapshot):
        return answer
    return answer.get(member.spec.release.service) or \
        MetricsSnapshot(at=now, error="no answer for this service")


def spec_files(paths: Sequence[str]) -> list[Path]:
    """Spec files named, or found in the folders named (*.toml, sorted); each once."""
    found: list[Path] = []
    for text in paths:
        path = Path(text)
        items = sorted(path.rglob("*.toml")) if path.is_dir() else [path]
        for item in items:
            if item not in found:
                found.append(item)
    return found
