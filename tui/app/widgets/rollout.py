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
        rollout = state.rollout
        steps = state.steps
        n = len(steps)
        top = Text()
        top.append(f" {state.strategy.upper()} ", style="bold reverse")
        top.append(f" {phase_word(rollout.phase)} ", style=PHASE_STYLE[rollout.phase] + " reverse")
        shown = min(rollout.step + 1, n)
        top.append(f"  step {shown}/{n}")
        top.append(f"  weight {rollout.weight}%", style="bold")
        if rollout.phase in (Phase.PROGRESSING, Phase.PAUSED, Phase.PROMOTING) and state.hold:
            left = state.hold_left()
            top.append(f"  hold {fmt.secs(left)} left of {fmt.secs(state.hold)}")
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
        line = Text(" ")
        for index, label in enumerate(steps):
            if index:
                line.append(" ─ ", style="dim")
            if index < rollout.step or rollout.phase is Phase.SUCCEEDED:
                line.append(f"✔ {label}", style="green")
            elif index == rollout.step and not rollout.phase.terminal:
                line.append(f"▶ {label}", style="bold reverse")
            else:
                line.append(label, style="dim")
        if state.platform_status:
            line.append(platform_note(state.platform_kind, state.platform_status,
                                      (self.size.width or self.app.size.width) - line.cell_len))
        lines = [top, line]
        if state.flag is not None:
            lines.append(flag_line(state.flag, rollout.phase))
        self.update(Text("\n").join(lines))


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
