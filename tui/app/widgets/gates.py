"""The gates panel: every gate's evidence, bound, progress and verdict, and why a step holds.

A sequential gate shows its estimate over the step with the confidence bounds that decide it
(`2.1% [1.4–3.0%] ≤5%`) and a bar of how far its test is toward failing (red) or passing
(green); a point gate shows this window's value and, with `for`, how much of it a failure has
used.

Columns are as wide as their widest cell (nothing is cut; GatesPanel says how it narrows). Once the rollout has ended
on a gate, that gate keeps the figures it failed with (marked with the time), instead of the
"unknown" a scaled-down candidate would give it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from strategies.model import GateResult, GateStatus, Phase, Severity, State
from tui.app import facts, fmt
from tui.app.widgets.drawn import Drawn, shape_of
from tui.app.widgets.grid import GAP, Column, grid
from tui.app.widgets.state_panel import StatePanel

STATUS_STYLE = {GateStatus.PASS: "bold green", GateStatus.FAIL: "bold red",
                GateStatus.UNKNOWN: "bold yellow"}
STATUS_MARK = {GateStatus.PASS: "✔ pass", GateStatus.FAIL: "✖ FAIL", GateStatus.UNKNOWN: "? unknown"}
SEVERITY_STYLE = {Severity.CRITICAL: "red", Severity.WARNING: "yellow", Severity.INFO: "dim"}
SHORT_SEVERITY = {Severity.CRITICAL: "crit", Severity.WARNING: "warn", Severity.INFO: "info"}
# name, justify; widths come from the cells (GatesPanel.show)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("gate", "left"), ("evidence", "right"), ("bound", "left"), ("test", "left"),
    ("state", "left"), ("sev", "left"))


def for_bar(gate: GateResult, now: float, width: int = 6) -> Text:
    """How much of the `for` window a failure has used: full means the severity acts (width 0:
    the words alone, for a narrow panel)."""
    progress = gate.for_progress(now)
    filled = round(progress * width)
    bar = Text("▰" * filled, style="red" if filled else "")
    bar.append("▱" * (width - filled), style="dim")
    used = 0.0 if gate.failing_since is None else max(0.0, now - gate.failing_since)
    bar.append(f"{' ' if width else ''}{fmt.secs(min(used, gate.for_seconds))}/{fmt.secs(gate.for_seconds)}")
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
    return _interval(gate.scale, gate.estimate, gate.low, gate.high)


def _interval(scale: str, estimate_: float, low: float | None, high: float | None) -> str:
    show = _times if scale == "ratio" else _share
    if low is None or high is None:
        return show(estimate_)
    return f"{show(estimate_)} [{show(low)}–{show(high)}]"


def failed_with(gate: GateResult, evidence: Mapping[str, Any]) -> str:
    """The figure a gate failed with, in the unit of its bound: a sequential gate's estimate
    and interval (a share of slow requests beside a share bound, not the latency it was read
    from), a point gate's value."""
    figure = evidence.get("estimate")
    if evidence.get("test") == "sequential" and isinstance(figure, int | float):
        low, high = evidence.get("low"), evidence.get("high")
        return _interval(str(evidence.get("scale", "")), figure,
                         low if isinstance(low, int | float) else None,
                         high if isinstance(high, int | float) else None)
    return _num(gate.metric, evidence.get("value"))


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
    bar.append(f"{' ' if width else ''}{'fail' if failing else 'pass'} {progress:.0%}")
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


def ended_on(state: State) -> Mapping[str, Mapping[str, Any]]:
    """Gate name -> the evidence it failed with, once a gate ended the rollout."""
    rollout = state.rollout
    if not (rollout.phase.terminal or rollout.phase is Phase.ROLLING_BACK):
        return {}
    return {str(e["gate"]): e for e in rollout.cause if "gate" in e and e.get("status") == "fail"}


def _num(metric: str, value: Any) -> str:
    return fmt.metric(metric, value) if isinstance(value, int | float) else "—"


class GatesPanel(StatePanel):
    """A table of gates and, under it, the holding reasons (the thing no peer shows well).

    Columns are as wide as their widest cell, so no figure is ever cut. Where the table cannot
    fit the panel, it narrows the way k9s does, least useful first: severity shortened
    ("crit"), then the test without its bar ("pass 100%"), then the gate name wraps onto a
    second line; never an ellipsis. The table is built only when a cell or the holding line
    changed, and laid out only when that can change its height.

    While the rollout runs, the holding line keeps the most lines it has needed (HoldingRoom)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._room = HoldingRoom()

    def show(self, state: State) -> None:
        self._state = state
        failed = ended_on(state)
        at = fmt.clock(state.rollout.finished_at) if state.rollout.finished_at else "end"
        available = self.content_region.width
        for bar, short in ((True, False), (True, True), (False, True)):
            rows = [_gate_cells(gate, state, failed.get(gate.name), at, bar=bar, short=short)
                    for gate in state.gates]
            widths = _widths(rows, test=len("▰▰▰▰ pass 100%") if bar else len("pass 100%"))
            if available <= 0 or sum(widths) + len(widths) <= available:
                break
        holding = holding_text(state)
        lines = shape_of(self.app, [holding], available)[0]
        room = self._room.keep(holding, lines, (state.rollout.phase.terminal, available))
        shape = (len(rows), names_shape(rows, widths, available), room)
        self.put((widths, rows, holding, available),
                 lambda: gates_table(widths, rows, holding, available), shape)


def names_shape(rows: list[list[Text]], widths: list[int], available: int) -> object:
    """What decides the rows' heights: nothing while every column fits at its widest (each gate
    is one line, whatever its figures); else the gate names wrap in the width left to them."""
    if available <= 0 or sum(widths) + len(widths) <= available:
        return None
    return (available, tuple(widths), tuple(row[0].plain for row in rows))


def gates_table(widths: list[int], rows: list[list[Text]], holding: Text,
                available: int) -> RenderableType:
    """The gate's name takes the width the other columns leave; it folds onto more lines when
    even the narrowest form of the table is too wide."""
    others = sum(widths[1:]) + GAP * len(widths)
    name = max(4, available - others) if available > 0 else widths[0]
    columns = [Column(title, name if title == "gate" else width, justify,  # type: ignore[arg-type]
                      fold=title == "gate")
               for (title, justify), width in zip(COLUMNS, widths, strict=True)]
    if not rows:
        rows = [[Text("no gates evaluated yet", style="dim")] + [Text()] * (len(COLUMNS) - 1)]
        columns[0] = Column("gate", max(name, rows[0][0].cell_len))
    return Group(grid(columns, rows), holding)


def _gate_cells(gate: GateResult, state: State, failed: Mapping[str, Any] | None, at: str, *,
                bar: bool, short: bool) -> list[Text]:
    """One gate's row. A gate that ended the rollout keeps the figures it failed with, not the
    "unknown" a scaled-down candidate would give it today."""
    severity = Text(SHORT_SEVERITY[gate.severity] if short else gate.severity.value,
                    style=SEVERITY_STYLE[gate.severity])
    if failed is not None:
        return [Text(gate.name, style="bold"), Text(failed_with(gate, failed)),
                Text(bound(gate)), Text(f"at {at}", style="dim"),
                Text(STATUS_MARK[GateStatus.FAIL], style=STATUS_STYLE[GateStatus.FAIL]), severity]
    return [Text(gate.name, style="bold"), Text(estimate(gate)), Text(bound(gate)),
            evidence_bar(gate, state.at, width=4 if bar else 0),
            Text(STATUS_MARK[gate.status], style=STATUS_STYLE[gate.status]), severity]


def _widths(rows: list[list[Text]], test: int) -> list[int]:
    """Each column as wide as its widest cell or header; the test and state columns at least as
    wide as their widest words, so a verdict that changes does not move the columns."""
    least = {"test": test, "state": max(len(mark) for mark in STATUS_MARK.values())}
    return [max([len(name), least.get(name, 0)] + [row[i].cell_len for row in rows])
            for i, (name, _) in enumerate(COLUMNS)]


def holding_text(state: State) -> Text:
    reasons = facts.holding(state)
    why = Text()
    if reasons:
        why.append("holding: ", style="bold yellow")
        why.append(" · ".join(reasons))
    elif state.rollout.phase is Phase.PROGRESSING:
        why.append("nothing holds this step: it moves on at the next tick", style="green")
    elif state.rollout.phase.terminal:
        why.append("ended: nothing moves until retry (R)" if state.rollout.phase
                   is not Phase.SUCCEEDED else "promoted: nothing left to do", style="dim")
    return why


class HoldingRoom:
    """The lines a holding reason keeps while the rollout runs: the most it has needed. A
    reason that comes and goes with every step ("3 gates unknown: only 12 requests this step")
    would otherwise move every panel below it up and down, each time a layout pass of the
    whole screen. The rollout's end, a retry or a new width (the `key`) start it afresh."""

    def __init__(self) -> None:
        self._key: object = ()
        self._lines = 0

    def keep(self, text: Text, lines: int, key: object) -> int:
        """Pad `text`, which takes `lines` lines (0: not shown), to the lines kept; return how
        many lines that is (0: the reason need not be shown)."""
        kept = self._lines if self._key == key else 0
        if lines < kept:
            text.append("\n" * (kept - max(lines, 1)))  # an empty text still takes one line
        self._key, self._lines = key, max(lines, kept)
        return self._lines


class GatesStrip(Drawn):
    """The wallboard's one-line-per-gate strip: name, verdict, evidence against bound, and why
    it holds (kept in its room while the rollout runs, as the gates panel keeps it)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._room = HoldingRoom()

    def show(self, state: State) -> None:
        failed = ended_on(state)
        rows: list[tuple[Text | str, ...]] = []
        for gate in state.gates:
            evidence = failed.get(gate.name)
            status = GateStatus.FAIL if evidence is not None else gate.status
            shown = failed_with(gate, evidence) if evidence is not None else estimate(gate)
            rows.append((Text(f" {gate.name} ", style=STATUS_STYLE[status] + " reverse"),
                         Text(STATUS_MARK[status], style=STATUS_STYLE[status]),
                         shown, bound(gate),
                         Text(gate.severity.value, style=SEVERITY_STYLE[gate.severity])))
        reasons = facts.holding(state)
        why = Text()
        if reasons:
            why.append("holding: ", style="bold yellow")
            why.append(" · ".join(reasons))
        width = self.content_region.width
        lines = shape_of(self.app, [why], width)[0] if reasons else 0
        room = self._room.keep(why, lines, (state.rollout.phase.terminal, width))
        self.put((rows, why, room), lambda: strip_table(rows, why, room), (len(rows), room))


def strip_table(rows: list[tuple[Text | str, ...]], why: Text, room: int) -> RenderableType:
    """The gates, and under them why it holds when there is room kept for it."""
    table = Table.grid(padding=(0, 2))
    for justify in ("left", "left", "right", "left", "left"):
        table.add_column(justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*row)
    return Group(table, why) if room else table
