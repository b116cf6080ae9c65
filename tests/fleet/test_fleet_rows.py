"""Fleet rows: one release per row, the worst gate first, sorting, filtering, environments."""

from __future__ import annotations

from strategies.fleet import (
    Driver,
    FleetRow,
    GateCell,
    SortKey,
    by_service,
    display_names,
    filter_rows,
    row_from_state,
    sort_rows,
    worst_gate,
)
from strategies.model import GateResult, GateStatus, Phase, Role, RolloutState, Severity, State, VersionView


def _gate(name: str, status: GateStatus, severity: Severity = Severity.CRITICAL, **kw) -> GateResult:
    return GateResult(name=name, metric=kw.pop("metric", "error_rate"), severity=severity,
                      status=status, **kw)


def test_worst_gate_is_the_most_severe_failure_then_unknown_then_pass() -> None:
    gates = [_gate("p99", GateStatus.PASS, metric="latency_p99", value=0.2, threshold=0.5),
             _gate("errors", GateStatus.FAIL, Severity.WARNING, value=0.031, threshold=0.01),
             _gate("cpu", GateStatus.UNKNOWN, reason="only 3 requests, need 20"),
             _gate("crit", GateStatus.FAIL, Severity.CRITICAL, value=0.5, threshold=0.1)]
    cell = worst_gate(gates)
    assert cell is not None and cell.name == "crit" and cell.text == "crit 50 % > 10 %"
    assert worst_gate(gates[:1]).text == "p99 200 ms ≤ 500 ms"
    assert worst_gate([gates[0], gates[2]]).text == "cpu unknown: only 3 requests, need 20"
    assert worst_gate([]) is None


def test_row_from_a_published_state_reads_like_the_top_bar() -> None:
    state = State(at=100.0, release="checkout", strategy="canary", platform_kind="local",
                  metrics_source="scrape",
                  rollout=RolloutState(phase=Phase.PROGRESSING, step=1, weight=25, step_started=90.0),
                  steps=("10%", "25%", "50%", "100%"), hold=30.0,
                  gates=(_gate("errors", GateStatus.PASS, value=0.001, threshold=0.01),),
                  versions=(VersionView("v1", Role.BASELINE, 75, 75.0, 2, 2, None),
                            VersionView("v2", Role.CANDIDATE, 25, 24.0, 1, 1, None)))
    row = row_from_state(state, environment="prod", driver=Driver.DRIVEN, driven_by="ann@h/1",
                         baseline="v1", candidate="v2")
    assert (row.phase, row.step, row.desired_weight, row.actual_weight) == (Phase.PROGRESSING, "2/4", 25, 24.0)
    assert row.worst_gate.text == "errors 0.1 % ≤ 1 %" and row.since == 90.0
    assert row.key == ("checkout", "prod")


def _row(release: str, phase: Phase | None, *, env: str = "", gate: GateCell | None = None,
         since: float = 0.0, candidate: str = "v2", driver: Driver = Driver.IDLE) -> FleetRow:
    return FleetRow(release=release, environment=env, strategy="canary", phase=phase, step="1/3",
                    desired_weight=10, actual_weight=None, worst_gate=gate, since=since,
                    driver=driver, baseline="v1", candidate=candidate)


def test_attention_order_puts_failures_first_then_phases() -> None:
    failing = GateCell("errors", GateStatus.FAIL, Severity.CRITICAL, "errors 5 % > 1 %")
    rows = [_row("a", Phase.SUCCEEDED), _row("b", Phase.PROGRESSING),
            _row("c", Phase.PROGRESSING, gate=failing), _row("d", Phase.PAUSED),
            _row("e", None, driver=Driver.UNREADABLE)]
    assert [r.release for r in sort_rows(rows, SortKey.ATTENTION)] == ["c", "e", "d", "b", "a"]
    assert [r.release for r in sort_rows(rows, SortKey.NAME)] == ["a", "b", "c", "d", "e"]
    timed = [_row("x", Phase.PAUSED, since=5), _row("y", Phase.PAUSED, since=9)]
    assert [r.release for r in sort_rows(timed, SortKey.SINCE)] == ["y", "x"]


def test_filter_matches_every_word_anywhere_in_the_row() -> None:
    rows = [_row("checkout", Phase.PAUSED, env="prod"), _row("checkout", Phase.SUCCEEDED, env="staging"),
            _row("search", Phase.PAUSED, env="prod")]
    assert [r.environment for r in filter_rows(rows, "checkout PROD")] == ["prod"]
    assert len(filter_rows(rows, "paused")) == 2 and len(filter_rows(rows, "")) == 3


def test_a_service_across_environments_says_what_each_runs_and_what_is_to_go() -> None:
    rows = [_row("checkout", Phase.SUCCEEDED, env="staging"),
            _row("checkout", Phase.PROGRESSING, env="production"),
            _row("search", Phase.ROLLED_BACK, env="production")]
    lines = {line.release: line for line in by_service(rows)}
    assert lines["checkout"].environments == (("production", "v1→v2 10%"), ("staging", "v2"))
    assert lines["checkout"].to_go == ("production",)
    assert lines["search"].environments == (("production", "v1"),)


def test_rows_that_would_read_the_same_are_told_apart_by_their_spec() -> None:
    """Nineteen specs of one service with no environment listed nineteen identical "checkout"
    rows: each now names its spec, with only as many folders as it takes."""
    from dataclasses import replace

    sources = ["ex/canary.toml", "ex/dark.toml", "ex/docker/dark.toml", "ex/kubernetes/dark.toml"]
    rows = [replace(_row("checkout", Phase.PENDING), source=s) for s in sources]
    rows += [_row("search", Phase.PENDING), _row("cart", Phase.PENDING, env="prod"),
             _row("cart", Phase.PENDING, env="staging")]
    assert display_names(rows) == [
        "checkout (canary)", "checkout (ex/dark)", "checkout (docker/dark)",
        "checkout (kubernetes/dark)", "search", "cart", "cart"]
    [line] = [line for line in by_service(rows) if line.release == "checkout"]
    assert [place for place, _ in line.environments] == [
        "canary", "ex/dark", "docker/dark", "kubernetes/dark"]
