"""The rollout bar: strategy, phase, step i/n, weight, hold left, PAUSED; the plan's steps with
the current one marked, elapsed time and ETA; in a flag release a line naming the flag, its
lever and each variant's share; and, once it ends, why — kept for as long as it stays ended."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from strategies.model import FlagView, Phase, State
from tui.app import facts, fmt
from tui.app.widgets.drawn import shape_of
from tui.app.widgets.state_panel import StatePanel

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
STRATEGY_WORDS = {"ab": "A/B", "blue-green": "BLUE-GREEN"}


def phase_word(phase: Phase) -> str:
    return phase.value.replace("_", " ").upper()


def strategy_word(kind: str) -> str:
    return STRATEGY_WORDS.get(kind, kind.upper())


def line(text: Text) -> Text:
    """One screen line: cut with an ellipsis at the edge instead of wrapping the layout away."""
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text


def step_labels(labels: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """A prefix the named steps repeat ('new-checkout 10%', 'new-checkout 30%', ..., '100%')
    said once: ('new-checkout', ('10%', '30%', ..., '100%'))."""
    named = [label for label in labels if " " in label]
    heads = {label.rsplit(" ", 1)[0] for label in named}
    if len(named) < 2 or len(heads) != 1:
        return "", labels
    head = heads.pop()
    return head, tuple(label[len(head) + 1:] if label.startswith(head + " ") else label
                       for label in labels)


def where(state: State) -> str:
    """'step 2/4' counted from 1, the same numbering everywhere (screen, summary, JSON)."""
    n = len(state.steps)
    return f"step {min(state.rollout.step + 1, n)}/{n}"


class RolloutBar(StatePanel):
    """Two lines while it runs; a third (and more, one per failing gate) once it has ended.

    Its lines are cut at the edge, never wrapped, except the evidence under the cause: so its
    height changes only with the number of lines or the wrapping of that evidence, and a
    countdown ticking inside a line redraws the bar without a layout pass."""

    def show(self, state: State) -> None:
        self._state = state
        rollout = state.rollout
        top = Text()
        top.append(f" {strategy_word(state.strategy)} ", style="bold reverse")
        top.append(f" {phase_word(rollout.phase)} ", style=PHASE_STYLE[rollout.phase] + " reverse")
        top.append(f"  {where(state)}")
        top.append(f"  weight {rollout.weight}%", style="bold")
        if rollout.phase in (Phase.PROGRESSING, Phase.PAUSED) and state.hold:
            top.append(f"  hold {facts.countdown(state.hold_left())} left of "
                       f"{fmt.secs(state.hold)}")
            if rollout.paused:
                top.append(" (stopped)", style="yellow")
        elif rollout.phase is Phase.PROMOTING and state.hold:
            top.append(f"  scale-down in {facts.countdown(state.hold_left())}")
        if state.weight_note:
            top.append(f"  ({state.weight_note})", style="dim")
        lines = [line(top), line(self.steps_line(state))]
        if state.platform_status:  # the platform's own words (Argo phase/step, rollout status)
            lines.append(line(platform_note(state.platform_kind, state.platform_status,
                                            self.size.width or self.app.size.width)))
        if state.flag is not None:
            lines.append(line(flag_line(state.flag, rollout.phase)))
        wrapping: list[Text] = []
        ended = facts.cause(state)
        if ended is not None and not self.has_class("-no-cause"):  # the wallboard's banner has it
            style = "bold green" if rollout.phase is Phase.SUCCEEDED else "bold red"
            mark = "✔" if rollout.phase is Phase.SUCCEEDED else "✖"
            head = Text(f" {mark} {ended.headline}", style=style)
            n = len(state.steps)
            head.append(f" at step {min(ended.step + 1, n)}/{n}", style=style)
            if ended.at is not None:
                head.append(f", {fmt.clock(ended.at)}", style="dim")
            lines.append(line(head))
            # the evidence wraps rather than lose its end ("breach shown at 0.99 confidence")
            wrapping = [Text(f"   {detail}") for detail in ended.details]
        lines += wrapping
        shape = (len(lines), shape_of(self.app, wrapping, self.content_region.width))
        self.put(tuple(lines), lambda: Group(*lines), shape)

    def steps_line(self, state: State) -> Text:
        """The steps, each marked done, current or to come, then the timing. Wider than the
        screen, the labels give up words (k9s style) before anything is cut: first what follows
        a colon ("batch 2/3: 2 of 3 new" → "batch 2/3"), then every step but the current one
        is its number."""
        width = self.size.width or self.app.size.width
        for level in range(3):
            text = self._steps_text(state, level)
            if text.cell_len <= width:
                break
        return text

    def _steps_text(self, state: State, level: int) -> Text:
        rollout = state.rollout
        head, labels = step_labels(state.steps)
        if level >= 1:
            labels = tuple(label.split(":", 1)[0] for label in labels)
        text = Text(" ")
        if head:
            text.append(f"{head}: ", style="dim")
        failed = rollout.phase in (Phase.ROLLING_BACK, Phase.ROLLED_BACK, Phase.ABORTED)
        for index, label in enumerate(labels):
            if index:
                text.append(" ─ ", style="dim")
            if level >= 2 and index != rollout.step:
                label = str(index + 1)
            if rollout.phase is Phase.SUCCEEDED or index < rollout.step:
                text.append(f"✔ {label}", style="green")
            elif index == rollout.step and failed:
                text.append(f"✖ {label}", style="bold red reverse")
            elif index == rollout.step and rollout.phase is not Phase.PENDING:
                text.append(f"▶ {label}", style="bold reverse")
            else:
                text.append(label, style="dim")
        clock = timing(state)
        if clock:
            text.append(f"   {clock}", style="dim")
        return text


def timing(state: State) -> str:
    """'elapsed 1m02s · ≥1m10s to go': time since this attempt began, and the least time the
    plan still needs (gates and readiness can only add to it); where a later step waits for
    the operator, the figure runs up to there and says so."""
    rollout = state.rollout
    if rollout.attempt_started is None:
        return ""
    end = rollout.finished_at if rollout.phase.terminal and rollout.finished_at else state.at
    took = fmt.secs(end - rollout.attempt_started)
    parts = [f"took {took}" if rollout.phase.terminal else f"elapsed {took}"]
    if state.time_left is not None:
        if state.waits_at is not None:
            parts.append(f"≥{facts.countdown(state.time_left)} to step {state.waits_at + 1} "
                         "(waits for you)")
        else:
            parts.append(f"≥{facts.countdown(state.time_left)} to go")
    elif rollout.paused:
        parts.append("paused: no ETA")
    return " · ".join(parts)


MIN_NOTE = 12  # the platform's own status keeps at least this many characters


def platform_note(kind: str, status: str, room: int) -> Text:
    """`   kubernetes: Progressing · step 2/4 · setWeight 25`: the platform's own words about the
    rollout (Argo's phase/step/analysis, `rollout status`), clipped to the room left."""
    prefix = f" {kind}: "
    note = Text(prefix, style="dim")
    note.append(fmt.clip(status, max(MIN_NOTE, room - len(prefix) - 1)), style="italic")
    return note


def flag_line(flag: FlagView, phase: Phase) -> Text:
    """` flag new-checkout  off 70% │ on 30%  kill switch armed  flagd flags.json`: where the flag
    lives comes last, so a long path is what the screen's edge cuts, never the kill switch."""
    line = Text(" flag ", style="dim")
    line.append(flag.name, style="bold")
    line.append("  ")
    for index, (variant, share) in enumerate(flag.shares()):
        if index:
            line.append(" │ ", style="dim")
        line.append(f"{variant} ", style="bold")
        line.append(fmt.weight(share))
    if flag.kill_switch:
        if phase in (Phase.ROLLED_BACK, Phase.ABORTED, Phase.ROLLING_BACK):
            line.append("  killed", style="bold red")
        else:
            line.append("  kill switch armed", style="dim")
    line.append(f"  {flag.lever} {flag.location}", style="dim")
    return line
