"""Exit codes, the same for every command: how the release ended — and the one rule that turns
how a run ended into a code and the words for it (headless, replay and the app all use it)."""

from __future__ import annotations

from dataclasses import dataclass

from strategies.model import Phase

PROMOTED = 0
ROLLED_BACK = 1  # rolled back or aborted
USAGE = 2  # usage, spec or trace error
UNREACHABLE = 3  # platform or metrics unreachable
# Another session drives this release (it holds the lease), or this session lost the lease while
# driving. Not an outcome of the release and not a fault: a pipeline can wait and retry, or attach.
LEASE_HELD = 4
# From outside a release, as a shell reports them: Ctrl-C stopped a command that only reads
# (128 + SIGINT), and the reader of standard output went away (128 + SIGPIPE).
INTERRUPTED = 130
OUTPUT_CLOSED = 141
UNREACHABLE_FACTOR = 3.0  # stop once unreachable this many times stale_after: nothing can be decided


@dataclass(frozen=True)
class Ending:
    code: int
    outcome: str  # promoted | rolled_back | aborted | unreachable | incomplete | observed
    words: str  # for the one human line at the end


def ending(phase: Phase, *, unreachable: float, stale_after: float, stopped_unreachable: bool = False,
           observe: bool = False, critical_seen: bool = False, reached: str = "",
           stopped_by: str = "timed out", unfinished: str = "", where: str = "") -> Ending:
    """How a run ended. `unreachable`: seconds platform/metrics had been bad without a break;
    `stopped_unreachable`: the run stopped because that passed UNREACHABLE_FACTOR × stale_after;
    `reached`: words when an --until goal short of promotion was reached; `stopped_by`: why an
    unfinished run stopped; `unfinished`: its words (default "<stopped_by> before promotion");
    `where`: appended to the unreachable words (" in the trace")."""
    if stopped_unreachable:
        return Ending(UNREACHABLE, "unreachable", f"unreachable for {unreachable:.1f}s (> "
                      f"{UNREACHABLE_FACTOR:g}× stale_after {stale_after:g}s){where}")
    if observe:
        if unreachable > stale_after:
            return Ending(UNREACHABLE, "unreachable", f"observed; unreachable for {unreachable:.1f}s")
        if critical_seen:
            return Ending(ROLLED_BACK, "observed", "observed a critical gate breach")
        return Ending(PROMOTED, "observed", "observed, no critical gate breached")
    if phase is Phase.SUCCEEDED:
        return Ending(PROMOTED, "promoted", "promoted")
    if phase is Phase.ABORTED:
        return Ending(ROLLED_BACK, "aborted", "aborted")
    if phase.failed:
        return Ending(ROLLED_BACK, "rolled_back",
                      "rolling back" if phase is Phase.ROLLING_BACK else "rolled back")
    if reached:
        return Ending(PROMOTED, "promoted", reached)
    if unreachable > stale_after:
        return Ending(UNREACHABLE, "unreachable", f"{stopped_by} while unreachable for {unreachable:.1f}s")
    return Ending(ROLLED_BACK, "incomplete", unfinished or f"{stopped_by} before promotion")


def quit_code(phase: Phase, *, observe: bool) -> int:
    """A run the operator left (the app was quit): 0 once promoted, or for a session that only
    observed; 1 otherwise."""
    return PROMOTED if phase is Phase.SUCCEEDED or observe else ROLLED_BACK
