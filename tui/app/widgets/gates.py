"""The gates panel: every gate's evidence, bound, progress and verdict, and why a step holds.

A sequential gate shows its estimate over the step with the confidence bounds that decide it
(`2.1% [1.4–3.0%] ≤5%`) and a bar of how far its test is toward failing (red) or passing
(green); a point gate shows this window's value and, with `for`, how much of it a failure has
used."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from strategies.model import GateResult, GateStatus, Severity, State
from tui.app import fmt

STATUS_STYLE = {GateStatus.PASS: "bold green", GateStatus.FAIL: "bold red",
                GateStatus.UNKNOWN: "bold yellow"}
STATUS_MARK = {GateStatus.PASS: "✔ pass", GateStatus.FAIL: "✖ FAIL", GateStatus.UNKNOWN: "? unknown"}
SEVERITY_STYLE = {Severity.CRITICAL: "red", Severity.WARNING: "yellow", Severity.INFO: "dim"}


def for_bar(gate: GateResult, now: float, width: int = 6) -> Text:
    """How much of the `for` window a failure has used: full means the severity acts."""
    progress = gate.for_progress(now)
    filled = round(progress * width)
    bar = Text("▰" * filled, style="red" if filled else "")
    bar.append("▱" * (width - filled), style="dim")
    used = 0.0 if gate.failing_since is None else max(0.0, now - gate.failing_since)
    bar.append(f" {fmt.secs(min(used, gate.for_seconds))}/{fmt.secs(gate.for_seconds)}")
    return bar


def _share(value: float | None) -> str:
    if value is None:
        return "—"
    percent = value * 100
    return f"{percent:.2g}%" if percent < 10 else f"{percent:.0f}%"


def _times(value: float | None) -> str:
    if value is None:
        return "—"
    return "∞" if value == float("inf") else f"{value:.2g}×"


def estimate(gate: GateResult) -> str:
    """The evidence's estimate with its bounds, or the point value."""
    if gate.test != "sequential" or gate.estimate is None:
        return fmt.metric(gate.metric, gate.value)
    show = _times if gate.scale == "ratio" else _share
    if gate.low is None or gate.high is None:
        return show(gate.estimate)
    return f"{show(gate.estimate)} [{show(gate.low)}–{show(gate.high)}]"


def evidence_bar(gate: GateResult, now: float, width: int = 6) -> Text:
    """Sequential gates: how far the test is toward failing (red) or passing (green); while
    a `for` runs, its clock (as for point gates)."""
    if gate.test != "sequential" or (gate.failing_since is not None and gate.for_seconds > 0):
        return for_bar(gate, now, width)
    failing = gate.toward_fail >= gate.toward_pass and gate.toward_fail > 0
    progress = gate.toward_fail if failing else gate.toward_pass
    filled = round(progress * width)
    bar = Text("▰" * filled, style="red" if failing else "green")
    bar.append("▱" * (width - filled), style="dim")
    bar.append(f" {'fail' if failing else 'pass'} {progress:.0%}")
    return bar


def bound(gate: GateResult) -> str:
    if gate.test == "sequential" and gate.bound is not None:
        if gate.scale == "ratio":
            return f"≤{gate.bound:g}×base"
        return f"≤{_share(gate.bound)}"
    if gate.threshold is None:
        return gate.comparison or "—"
    if gate.comparison == "proportion":
        return f"p≥{gate.threshold:g}"
    word = {"max": "≤", "min": "≥", "max_ratio": "≤"}.get(gate.comparison, gate.comparison)
    text = f"{word}{fmt.metric(gate.metric, gate.threshold)}"
    return text + (" (×base)" if gate.comparison == "max_ratio" else "")


def holding_lines(state: State) -> list[str]:
    """Why the current step has not moved on: the engine's own reasons, plus pause reasons."""
    lines = list(state.holding)
    rollout = state.rollout
    if rollout.paused:
        why = rollout.pause_reason or f"paused by {rollout.paused_by or 'operator'}"
        lines.insert(0, f"{why} — resume with space")
    return lines


class GatesPanel(Static):
    """A table of gates and, under it, the holding reasons (the thing no peer shows well)."""

    def show(self, state: State) -> None:
        table = Table(box=None, expand=True, padding=(0, 1, 0, 0), header_style="bold underline")
        for name, justify in (("gate", "left"), ("evidence", "right"), ("bound", "right"),
                              ("test", "left"), ("state", "left"), ("sev", "left")):
            table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
        for gate in state.gates:
            table.add_row(
                Text(f"{gate.name}", style="bold"),
                estimate(gate), bound(gate), evidence_bar(gate, state.at),
                Text(STATUS_MARK[gate.status], style=STATUS_STYLE[gate.status]),
                Text(gate.severity.value, style=SEVERITY_STYLE[gate.severity]))
        if not state.gates:
            table.add_row(Text("no gates evaluated yet", style="dim"), "", "", "", "", "")
        holding = holding_lines(state)
        why = Text()
        if holding:
            why.append("holding: ", style="bold yellow")
            why.append(" · ".join(holding))
        elif state.rollout.phase.value == "progressing":
            why.append("nothing holds this step: it moves on at the next tick", style="green")
        self.update(Group(table, why) if why else table)


class GatesStrip(Static):
    """The wallboard's one-line-per-gate strip: name, verdict, value against bound."""

    def show(self, state: State) -> None:
        text = Text()
        for gate in state.gates:
            text.append(f" {gate.name} ", style=STATUS_STYLE[gate.status] + " reverse")
            text.append(f" {STATUS_MARK[gate.status]} {estimate(gate)} {bound(gate)} ")
            text.append_text(evidence_bar(gate, state.at, width=4))
            text.append("   ")
        holding = holding_lines(state)
        if holding:
            text.append("\nholding: ", style="bold yellow")
            text.append(" · ".join(holding))
        self.update(text)
