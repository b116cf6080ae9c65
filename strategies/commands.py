"""Which operator command the rollout accepts right now, and in the operator's words why not.

One pure rule used twice: the engine refuses with it, and a screen asks it *before* a
confirmation dialog opens or a key is offered in the footer, so nobody confirms "Roll back?"
only to be told the release was already promoted.
"""

from __future__ import annotations

from strategies.model import CommandKind, Phase, RolloutState

# The words people use for each command (Argo Rollouts' where it has one), for messages.
COMMAND_WORDS = {
    CommandKind.PROMOTE: "promote",
    CommandKind.PROMOTE_FULL: "promote fully",
    CommandKind.PAUSE: "pause",
    CommandKind.RESUME: "resume",
    CommandKind.ROLLBACK: "roll back",
    CommandKind.ABORT: "abort",
    CommandKind.SET_WEIGHT: "set weight",
    CommandKind.RETRY: "retry",
}

_ENDED = {Phase.SUCCEEDED: "the release is already promoted",
          Phase.ROLLED_BACK: "the release is already rolled back",
          Phase.ABORTED: "the release was aborted",
          Phase.ROLLING_BACK: "the release is rolling back"}


def refusal(rollout: RolloutState, kind: CommandKind, *, read_only: bool = False,
            value: int | None = None) -> str | None:
    """None when `kind` would be carried out now; otherwise one line saying why not."""
    word = COMMAND_WORDS[kind]
    if read_only:
        return f"cannot {word}: this session is read-only"
    phase = rollout.phase
    if kind is CommandKind.RETRY:
        return _retry_refusal(phase)
    if phase in _ENDED:
        return f"cannot {word}: {_ENDED[phase]}" + \
            ("; retry (R) starts it again" if phase in (Phase.ROLLED_BACK, Phase.ABORTED) else "")
    if kind is CommandKind.PAUSE:
        return _pause_refusal(phase)
    if kind is CommandKind.RESUME and phase is not Phase.PAUSED:
        return f"cannot resume: not paused (it is {phase.value.replace('_', ' ')})"
    if kind is CommandKind.SET_WEIGHT:
        return _set_weight_refusal(phase, value)
    return None


def _retry_refusal(phase: Phase) -> str | None:
    """Only a release that ended badly (aborted, rolled back) can be tried again."""
    if phase in (Phase.ABORTED, Phase.ROLLED_BACK):
        return None
    return f"cannot retry: only an aborted or rolled-back release can be retried " \
           f"(it is {phase.value.replace('_', ' ')})"


def _pause_refusal(phase: Phase) -> str | None:
    """A pause needs a moving rollout: not before it starts, not twice, not while promotion
    finishes (rolling back is the way to stop that)."""
    if phase is Phase.PENDING:
        return "cannot pause: the rollout has not started yet"
    if phase is Phase.PAUSED:
        return "cannot pause: already paused"
    if phase is Phase.PROMOTING:
        return "cannot pause: promotion is finishing; roll back to stop it"
    return None


def _set_weight_refusal(phase: Phase, value: int | None) -> str | None:
    """A manual weight is a percentage, set on a started rollout that is not finishing."""
    if value is not None and not 0 <= value <= 100:
        return f"cannot set weight: it must be 0..100, got {value}"
    if phase is Phase.PENDING:
        return "cannot set weight: the rollout has not started yet"
    if phase is Phase.PROMOTING:
        return "cannot set weight: promotion is finishing"
    return None
