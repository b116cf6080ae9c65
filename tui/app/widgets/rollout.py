"""The rollout bar: strategy, phase, step i/n with labels, weight, hold time left, PAUSED; in a
flag release a third line names the flag, its lever and the share each variant gets."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from strategies.model import FlagView, Phase, State
from tui.app import fmt

PHASE_STYLE = {
    Phase.PENDING: "dim",
    Phase.PROGRESSING: "bold green",
    Phase.PAUSED: "bold yellow",
    Phase.PROMOTING: "bold cyan",
    Phase.SUCCEEDED: "bold green",
    Phase.ROLLING_BACK: "bold red",
    Phase.ROLLED_BACK: "bold red",
    Phase.ABORTED: "bold red",
}


def phase_word(phase: Phase) -> str:
    return phase.value.replace("_", " ").upper()


class RolloutBar(Static):
    """Two lines: where the rollout is, then the plan's steps with the current one marked."""

    def show(self, state: State) -> None:
        line = steps_line(state)
        if state.platform_status:
            line.append(platform_note(state.platform_kind, state.platform_status,
                                      (self.size.width or self.app.size.width) - line.cell_len))
        lines = [top_line(state), line]
        if state.flag is not None:
            lines.append(flag_line(state.flag, state.rollout.phase))
        self.update(Text("\n").join(lines))


def top_line(state: State) -> Text:
    """Strategy, phase, step i/n, weight, hold left, and why it is paused or ended."""
    rollout = state.rollout
    n = len(state.steps)
    top = Text()
    top.append(f" {state.strategy.upper()} ", style="bold reverse")
    top.append(f" {phase_word(rollout.phase)} ", style=PHASE_STYLE[rollout.phase] + " reverse")
    top.append(f"  step {min(rollout.step + 1, n)}/{n}")
    top.append(f"  weight {rollout.weight}%", style="bold")
    if rollout.phase in (Phase.PROGRESSING, Phase.PAUSED, Phase.PROMOTING) and state.hold:
        top.append(f"  hold {fmt.secs(state.hold_left())} left of {fmt.secs(state.hold)}")
        if rollout.paused:
            top.append(" (timer stopped)", style="yellow")
    if rollout.paused:
        top.append("  ⏸ PAUSED ", style="bold black on yellow")
        top.append(f" {rollout.pause_reason or 'by ' + (rollout.paused_by or 'operator')}",
                   style="yellow")
    elif rollout.phase.terminal or rollout.phase is Phase.ROLLING_BACK:
        top.append(f"  {rollout.reason}", style=PHASE_STYLE[rollout.phase])
    if state.weight_note:
        top.append(f"  ({state.weight_note})", style="dim")
    return top


def steps_line(state: State) -> Text:
    """The plan's steps: done ones ticked, the current one marked."""
    rollout = state.rollout
    line = Text(" ")
    for index, label in enumerate(state.steps):
        if index:
            line.append(" ─ ", style="dim")
        if index < rollout.step or rollout.phase is Phase.SUCCEEDED:
            line.append(f"✔ {label}", style="green")
        elif index == rollout.step and not rollout.phase.terminal:
            line.append(f"▶ {label}", style="bold reverse")
        else:
            line.append(label, style="dim")
    return line


MIN_NOTE = 12  # the platform's own status keeps at least this many characters


def platform_note(kind: str, status: str, room: int) -> Text:
    """`   kubernetes: Progressing · step 2/4 · setWeight 25`: the platform's own words about the
    rollout (Argo's phase/step/analysis, `rollout status`), clipped to the room left."""
    prefix = f"   {kind}: "
    note = Text(prefix, style="dim")
    note.append(fmt.clip(status, max(MIN_NOTE, room - len(prefix) - 1)), style="italic")
    return note


def flag_line(flag: FlagView, phase: Phase) -> Text:
    """` flag new-checkout  off 70% │ on 30%  flagd flags.json  kill switch armed`"""
    line = Text(" flag ", style="dim")
    line.append(flag.name, style="bold")
    line.append("  ")
    for index, (variant, share) in enumerate(flag.shares()):
        if index:
            line.append(" │ ", style="dim")
        line.append(f"{variant} ", style="bold")
        line.append(fmt.weight(share))
    line.append(f"  {flag.lever} {flag.location}", style="dim")
    if flag.kill_switch:
        if phase in (Phase.ROLLED_BACK, Phase.ABORTED, Phase.ROLLING_BACK):
            line.append("  killed", style="bold red")
        else:
            line.append("  kill switch armed", style="dim")
    return line
