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
- replicas are judged only where the platform reports its wanted count (`VersionStatus.desired`)
  and the lever does not size versions itself;
- re-applying backs off (1, 2, 4 … 30 s); drift that survives PERSIST_AFTER corrections, or
  lasts PERSIST_SECONDS, is persistent: shown, alerted (`ReleaseDrift`), and it holds the step
  until the lever has stayed clean for SETTLE_SECONDS.

Pure: no I/O, time passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from strategies.model import Drift, LeverTarget, PlatformSnapshot

WEIGHT_TOLERANCE = 1.0  # percent points: routers report effective shares as floats
PERSIST_AFTER = 3  # corrections in one episode
PERSIST_SECONDS = 10.0  # or this long drifting without a break
SETTLE_SECONDS = 10.0  # clean this long before a drift episode is forgotten
BACKOFF_CAP = 30.0

Correction = tuple[str, int, str]  # (action kind, value, version): the engine's action triple


def observed_values(snapshot: PlatformSnapshot | None, baseline: str, candidate: str,
                    targets: Mapping[str, LeverTarget]) -> dict[str, float]:
    """What the world reports for each lever that can be judged now (see the module rules)."""
    if snapshot is None or snapshot.error:
        return {}
    out: dict[str, float] = {}
    weight = targets.get(LeverTarget.key_of("set_weight", ""))
    observed = snapshot.weights.get(candidate)
    if weight is not None and observed is not None and not snapshot.weight_note:
        shares = {candidate: weight.value, baseline: 100 - weight.value}
        reported = [v for v in shares if v in snapshot.versions]
        serving = all(snapshot.version(v).ready > 0 for v, share in shares.items() if share > 0)
        if reported and serving:
            out[weight.key] = float(observed)
    if snapshot.weight_note:
        return out
    for target in targets.values():
        if target.kind != "scale" or target.version not in snapshot.versions:
            continue
        desired = snapshot.version(target.version).desired
        if desired is not None:
            out[target.key] = float(desired)
    return out


def _differs(target: LeverTarget, observed: float) -> bool:
    if target.kind == "set_weight":
        return abs(observed - target.value) > WEIGHT_TOLERANCE
    return round(observed) != target.value


def describe_lever(target: LeverTarget, candidate: str) -> str:
    if target.kind == "set_weight":
        return f"weight of {candidate}"
    return f"replicas of {target.version}"


@dataclass
class _Episode:
    """One lever's drift from first sight until it has stayed clean for SETTLE_SECONDS."""

    since: float
    corrections: int = 0
    next_at: float = 0.0
    clean_since: float | None = None
    observed: float | None = None


class DriftTracker:
    """Per-lever drift episodes; `observe` is called once per tick with the tick's snapshot."""

    def __init__(self, candidate: str) -> None:
        self.candidate = candidate
        self._episodes: dict[str, _Episode] = {}
        self.drift: tuple[Drift, ...] = ()

    def observe(self, targets: Mapping[str, LeverTarget], observed: Mapping[str, float],
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

    def _judge_lever(self, key: str, target: LeverTarget, value: float,
                     now: float) -> Correction | None:
        """One lever seen now: in line, its episode starts counting clean time; off target, an
        episode opens (or goes on) and a correction is due on a backoff (1 s, 2 s, 4 s … capped)
        so a lever that keeps drifting is not hammered."""
        episode = self._episodes.get(key)
        if not _differs(target, value):
            if episode is not None:
                episode.observed = value
                episode.clean_since = episode.clean_since if episode.clean_since is not None \
                    else now
            return None
        if episode is None:
            episode = self._episodes[key] = _Episode(since=now, next_at=now)
        episode.observed = value
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
                     settled=episode.clean_since is not None)

    def reset(self) -> None:
        self._episodes.clear()
        self.drift = ()
