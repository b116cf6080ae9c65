"""Level-triggered reconciliation: make the world match what the journal says it should be.

The engine decides on edges (enter a step, roll back), but the world does not stay where it was
put: a restarted router comes back at its defaults, someone moves a weight by hand, a resumed run
finds a fresh local stack. Each tick, `DriftTracker.observe` compares the levers' targets folded
from the journal (`RolloutState.targets`) with what the platform and router report, and returns
the drift it sees and the corrections to re-apply. Corrections are journaled as `reconcile`
records (never as a new decision), so a resume never repeats a decision's action.

Rules (the same as Argo Rollouts' reconcile loop and Flagger's canary controller):
- only a lever whose last target was confirmed *before* the observation is judged, so a change
  made between collecting and deciding is not mistaken for drift;
- a weight is judged only where it is exact (no `weight_note`) and every version that should get
  traffic has a ready instance (an empty version routes 0 % whatever the lever says: that is a
  readiness problem the step already holds on, not drift);
- replicas are judged only where the platform reports its wanted count (`VersionStatus.desired`,
  a controller's, e.g. a Deployment's) or, where no controller restores a stopped instance
  (Docker), the instances it keeps alive (`VersionStatus.running`), and the lever does not size
  versions itself;
- cohort routes (a ring's cohort rules, the sticky users' slots, a dark step's mirror) are one
  lever, `set_cohorts`: the router reads its maps or rules back against the route folded from the
  journal (`route_target`, never a router's memory, which a restart empties) and says what
  differs (`RouteReading`). The sticky map is compared only when the journal knows the weights
  its slots follow; a map or rule the route wants empty must be there and empty, not missing;
- a router releasedeck runs itself (nginx) and finds not serving holds none of its levers: the
  weight and cohort routes read as `RouterDown` whatever it was last told, so their targets are
  re-applied, and that lever call starts it again from the journal's targets;
- re-applying backs off (1, 2, 4 … 30 s); drift that survives PERSIST_AFTER corrections, or
  lasts PERSIST_SECONDS, is persistent: shown, alerted (`ReleaseDrift`), and it holds the step
  until the lever has stayed clean for SETTLE_SECONDS.

Pure: no I/O, time passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from strategies.cohorts import Route
from strategies.model import Drift, LeverTarget, PlatformSnapshot, RouterDown, RouteReading
from strategies.plans import Plan

WEIGHT_TOLERANCE = 1.0  # percent points: routers report effective shares as floats
PERSIST_AFTER = 3  # corrections in one episode
PERSIST_SECONDS = 10.0  # or this long drifting without a break
SETTLE_SECONDS = 10.0  # clean this long before a drift episode is forgotten
BACKOFF_CAP = 30.0

DETAIL_LINES = 3  # differences named in a drift's detail; the rest are counted

Correction = tuple[str, int, str]  # (action kind, value, version): the engine's action triple
Observed = float | RouteReading | RouterDown  # a number, the cohort route's differences, or a
# router found not serving

WEIGHT_LEVER = LeverTarget.key_of("set_weight", "")
COHORT_LEVER = LeverTarget.key_of("set_cohorts", "")
MIRROR_LEVER = LeverTarget.key_of("set_mirror", "")


@dataclass(frozen=True)
class RouteTarget:
    """The cohort route the journal says is in place, handed to the router to check its own
    maps or rules against (`strategies.ports.RouteReadback`)."""

    cohorts: int  # rings open: the confirmed set_cohorts target
    mirror: int  # percent mirrored: the confirmed set_mirror target (0 without one)
    route: Route
    weights: Mapping[str, int] | None  # percent per version the sticky slots follow; None: unknown

    def reading(self, differences: Iterable[str]) -> RouteReading:
        return RouteReading(self.cohorts, self.mirror, tuple(differences))


def route_target(plan: Plan, targets: Mapping[str, LeverTarget], pending: Iterable[str],
                 baseline: str, candidate: str, live: Mapping[str, float] | None = None
                 ) -> RouteTarget | None:
    """The route to check this tick, or None when there is none to judge: a plan without cohort
    routing, no confirmed set_cohorts yet, or a cohort or mirror change on its way (the act path
    is moving the route).

    The weights the sticky slots follow: the confirmed set_weight target; before the journal
    has one (a ring without a weight of its own), the `live` split the router reports (whole
    percents, as the router shares the slots out by then). While a weight is on its way they are
    not known, and the sticky slots are not compared."""
    busy = set(pending)
    cohorts = targets.get(COHORT_LEVER)
    if not plan.routes_cohorts or cohorts is None or {COHORT_LEVER, MIRROR_LEVER} & busy:
        return None
    mirror_target = targets.get(MIRROR_LEVER)
    mirror = mirror_target.value if mirror_target is not None else 0
    return RouteTarget(cohorts.value, mirror, plan.route_for(cohorts.value, mirror, candidate),
                       _sticky_weights(targets.get(WEIGHT_LEVER), WEIGHT_LEVER in busy, live,
                                       baseline, candidate))


def _sticky_weights(weight: LeverTarget | None, moving: bool, live: Mapping[str, float] | None,
                    baseline: str, candidate: str) -> Mapping[str, int] | None:
    if moving:
        return None
    if weight is not None:
        return {baseline: 100 - weight.value, candidate: weight.value}
    if live:
        return {v: round(w) for v, w in live.items()}
    return None


def table_differences(desired: Mapping[str, Mapping[str, str]],
                      observed: Mapping[str, Mapping[str, str] | None]) -> tuple[str, ...]:
    """One line per table (an HAProxy map, say) whose entries are not exactly the wanted ones.

    Only the tables in `desired` are compared (a sticky map left out when the weights are not
    known is not judged). A table wanted empty must be present and empty: missing (absent from
    `observed`, or None) is a difference of its own, never taken for "empty".
    """
    out: list[str] = []
    for name in sorted(desired):
        want, have = desired[name], observed.get(name)
        if have is None:
            out.append(f"{name}: missing")
            continue
        missing = sum(1 for k in want if k not in have)
        wrong = sum(1 for k, v in want.items() if k in have and have[k] != v)
        extra = sum(1 for k in have if k not in want)
        parts = [f"{n} {what}" for n, what in ((missing, "missing"), (wrong, "wrong"),
                                               (extra, "extra")) if n]
        if parts:
            out.append(f"{name}: {', '.join(parts)} of {len(want)} entries")
    return tuple(out)


def compare_routes(have: Route, want: Route, where: str) -> tuple[str, ...]:
    """One line per part of a whole route a router reports back (the built-in router's) that
    is not the wanted one: its cohort rules, its sticky key and salt, its mirror."""
    def rules(route: Route) -> str:
        return ", ".join(r.name for r in route.cohorts) or "none"

    def sticky(route: Route) -> str:
        return f"{route.sticky.describe()} (salt {route.salt!r})" if route.sticky else "none"

    def mirror(route: Route) -> str:
        return f"{route.mirror.percent:g}% to {route.mirror.version}" if route.mirror else "none"

    out = []
    if have.cohorts != want.cohorts:
        out.append(f"{where}: cohort rules {rules(have)}, journal says {rules(want)}")
    if (have.sticky, have.salt if have.sticky else "") != (want.sticky, want.salt if want.sticky else ""):
        out.append(f"{where}: sticky key {sticky(have)}, journal says {sticky(want)}")
    if have.mirror != want.mirror:
        out.append(f"{where}: mirror {mirror(have)}, journal says {mirror(want)}")
    return tuple(out)


def detail_of(differences: Iterable[str]) -> str:
    """A drift's detail: the first DETAIL_LINES differences, then how many more."""
    lines = list(differences)
    shown = "; ".join(lines[:DETAIL_LINES])
    return shown + (f"; {len(lines) - DETAIL_LINES} more" if len(lines) > DETAIL_LINES else "")


def _route_observed(snapshot: PlatformSnapshot, targets: Mapping[str, LeverTarget]
                    ) -> RouteReading | None:
    """The route reading, if it checked the route the journal's targets name now."""
    reading, cohorts = snapshot.route, targets.get(COHORT_LEVER)
    if reading is None or cohorts is None:
        return None
    mirror = targets.get(MIRROR_LEVER)
    if reading.cohorts != cohorts.value or reading.mirror != (mirror.value if mirror else 0):
        return None
    return reading


def observed_values(snapshot: PlatformSnapshot | None, baseline: str, candidate: str,
                    targets: Mapping[str, LeverTarget]) -> dict[str, Observed]:
    """What the world reports for each lever that can be judged now (see the module rules)."""
    if snapshot is None or snapshot.error:
        return {}
    out: dict[str, Observed] = _routing_observed(snapshot, baseline, candidate, targets)
    if snapshot.weight_note:
        return out
    for target in targets.values():
        if target.kind != "scale" or target.version not in snapshot.versions:
            continue
        status = snapshot.version(target.version)
        seen = status.desired if status.desired is not None else status.running
        if seen is not None:
            out[target.key] = float(seen)
    return out


def _routing_observed(snapshot: PlatformSnapshot, baseline: str, candidate: str,
                      targets: Mapping[str, LeverTarget]) -> dict[str, Observed]:
    """The router's levers (weight, cohort routes). A router found not serving holds none of
    them, whatever it was last told: each is read as `RouterDown`, so its target is re-applied
    (and the lever call starts the router again)."""
    if snapshot.router_down:
        return {key: RouterDown(snapshot.router_down) for key in (WEIGHT_LEVER, COHORT_LEVER)
                if key in targets}
    out: dict[str, Observed] = {}
    route = _route_observed(snapshot, targets)
    if route is not None:
        out[COHORT_LEVER] = route
    weight = targets.get(WEIGHT_LEVER)
    observed = snapshot.weights.get(candidate)
    if weight is not None and observed is not None and not snapshot.weight_note:
        shares = {candidate: weight.value, baseline: 100 - weight.value}
        reported = [v for v in shares if v in snapshot.versions]
        serving = all(snapshot.version(v).ready > 0 for v, share in shares.items() if share > 0)
        if reported and serving:
            out[weight.key] = float(observed)
    return out


def _differs(target: LeverTarget, observed: Observed) -> bool:
    if isinstance(observed, RouterDown):
        return True
    if isinstance(observed, RouteReading):
        return not observed.in_place
    if target.kind == "set_weight":
        return abs(observed - target.value) > WEIGHT_TOLERANCE
    return round(observed) != target.value


def describe_lever(target: LeverTarget, candidate: str) -> str:
    if target.kind == "set_weight":
        return f"weight of {candidate}"
    if target.kind == "set_cohorts":
        return "cohort routes"
    return f"replicas of {target.version}"


@dataclass
class _Episode:
    """One lever's drift from first sight until it has stayed clean for SETTLE_SECONDS."""

    since: float
    corrections: int = 0
    next_at: float = 0.0
    clean_since: float | None = None
    observed: float | None = None
    detail: str = ""  # the cohort route's last differences seen

    def saw(self, value: Observed) -> None:
        if isinstance(value, RouterDown):
            self.detail = value.found
        elif isinstance(value, RouteReading):
            self.detail = detail_of(value.differences) or self.detail
        else:
            self.observed, self.detail = value, ""  # a number again: the router serves


class DriftTracker:
    """Per-lever drift episodes; `observe` is called once per tick with the tick's snapshot."""

    def __init__(self, candidate: str) -> None:
        self.candidate = candidate
        self._episodes: dict[str, _Episode] = {}
        self.drift: tuple[Drift, ...] = ()

    def observe(self, targets: Mapping[str, LeverTarget], observed: Mapping[str, Observed],
                pending: Iterable[str], observed_at: float, now: float
                ) -> tuple[tuple[Drift, ...], list[Correction]]:
        """Drift seen now and the corrections to journal and apply.

        `pending`: keys of levers with an action decided and not yet confirmed: the act path is
        already moving them, so they are not corrected again (a refusing lever is retried there),
        but an episode already open on them stays visible and can become persistent.
        """
        busy = set(pending)
        corrections: list[Correction] = []
        seen: set[str] = set()
        for key, target in targets.items():
            value = observed.get(key)
            episode = self._episodes.get(key)
            if key in busy or value is None or target.at > observed_at:
                # Moving already, or cannot judge now: keep an open episode as it is.
                if episode is not None:
                    seen.add(key)
                continue
            seen.add(key)
            correction = self._judge_lever(key, target, value, now)
            if correction is not None:
                corrections.append(correction)
        self._close_episodes(targets, seen, now)
        self.drift = tuple(self._drift(targets[k], e, now) for k, e in sorted(self._episodes.items())
                           if self._shown(e, now))
        return self.drift, corrections

    def _judge_lever(self, key: str, target: LeverTarget, value: Observed,
                     now: float) -> Correction | None:
        """One lever seen now: in line, its episode starts counting clean time; off target, an
        episode opens (or goes on) and a correction is due on a backoff (1 s, 2 s, 4 s … capped)
        so a lever that keeps drifting is not hammered."""
        episode = self._episodes.get(key)
        if not _differs(target, value):
            if episode is not None:
                episode.saw(value)
                episode.clean_since = episode.clean_since if episode.clean_since is not None \
                    else now
            return None
        if episode is None:
            episode = self._episodes[key] = _Episode(since=now, next_at=now)
        episode.saw(value)
        episode.clean_since = None
        if now < episode.next_at:
            return None
        episode.corrections += 1
        episode.next_at = now + min(BACKOFF_CAP, 2.0 ** (episode.corrections - 1))
        return (target.kind, target.value, target.version)

    def _close_episodes(self, targets: Mapping[str, LeverTarget], seen: set[str], now: float) -> None:
        """An episode ends when its lever is no longer a target (or not seen), or has stayed
        clean for SETTLE_SECONDS."""
        for key in list(self._episodes):
            episode = self._episodes[key]
            gone = key not in targets or key not in seen
            settled = episode.clean_since is not None and now - episode.clean_since >= SETTLE_SECONDS
            if gone or settled:
                del self._episodes[key]

    def _shown(self, episode: _Episode, now: float) -> bool:
        return episode.clean_since is None or self._persistent(episode, now)

    @staticmethod
    def _persistent(episode: _Episode, now: float) -> bool:
        end = episode.clean_since if episode.clean_since is not None else now
        return episode.corrections >= PERSIST_AFTER or end - episode.since >= PERSIST_SECONDS

    def _drift(self, target: LeverTarget, episode: _Episode, now: float) -> Drift:
        return Drift(lever=target.key, what=describe_lever(target, self.candidate),
                     desired=target.value, observed=episode.observed, since=episode.since,
                     corrections=episode.corrections,
                     persistent=self._persistent(episode, now),
                     settled=episode.clean_since is not None, detail=episode.detail)

    def reset(self) -> None:
        self._episodes.clear()
        self.drift = ()
