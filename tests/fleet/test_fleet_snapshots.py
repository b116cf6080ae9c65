"""Snapshots of the fleet list at 80×24 and 160×48, from fixed rows and a fixed clock.

Update after an intended change with: pytest tests/fleet --snapshot-update
"""

from __future__ import annotations

import pytest

from strategies.fleet import Driver, FleetRow, GateCell
from strategies.model import GateStatus, Phase, Severity
from tests.fleet.test_fleet_command import _Fixed
from tui.fleet.app import FleetApp

NOW = 1_795_780_000.0


def _rows() -> list[FleetRow]:
    failing = GateCell("error-rate", GateStatus.FAIL, Severity.CRITICAL, "error-rate 22 % > 5 %")
    passing = GateCell("p99", GateStatus.PASS, Severity.CRITICAL, "p99 180 ms ≤ 500 ms")
    unknown = GateCell("errors", GateStatus.UNKNOWN, Severity.CRITICAL, "errors unknown: only 3 requests, need 20")

    def row(release: str, env: str, phase: Phase | None, step: str, weight: int | None,
            gate: GateCell | None, since: float | None, driver: Driver, by: str = "",
            problem: str = "", strategy: str = "canary") -> FleetRow:
        return FleetRow(release=release, environment=env, strategy=strategy, phase=phase,
                        step=step, desired_weight=weight,
                        actual_weight=float(weight) if driver is Driver.DRIVEN and weight else None,
                        worst_gate=gate, since=since, driver=driver, driven_by=by,
                        baseline="v41", candidate="v42", source=f"{release}-{env}.toml",
                        problem=problem)

    return [
        row("checkout", "production", Phase.ROLLING_BACK, "2/4", 0, failing, NOW - 12, Driver.DRIVEN, "ann@ops1/4242"),
        row("checkout", "staging", Phase.SUCCEEDED, "4/4", 100, passing, NOW - 5400, Driver.IDLE),
        row("search", "production", Phase.PAUSED, "3/5", 50, passing, NOW - 95, Driver.DRIVEN, "bo@ops2/77"),
        row("cart", "production", Phase.PROGRESSING, "1/4", 10, unknown, NOW - 30, Driver.IDLE),
        row("payments", "", None, "", None, None, None, Driver.UNREADABLE,
            problem="payments.toml: strategy.steps[2]: must be 0..100, got 150"),
        row("users", "shop", Phase.PAUSED, "2/6", 20, None, None, Driver.DISCOVERED, "argo-rollouts"),
    ]


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_fleet_list(snap_compare, size: tuple[int, int]) -> None:
    app = FleetApp(_Fixed(_rows()), refresh=3600, clock=lambda: NOW)  # type: ignore[arg-type]
    assert snap_compare(app, terminal_size=size)


def test_fleet_environments(snap_compare) -> None:
    app = FleetApp(_Fixed(_rows()), refresh=3600, clock=lambda: NOW)  # type: ignore[arg-type]
    assert snap_compare(app, terminal_size=(160, 48), press=["e"])
