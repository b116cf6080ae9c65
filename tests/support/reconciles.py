"""What a journal's `reconcile` records put back, as the hand-fault tests compare it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def reapplied(records: Iterable[Mapping[str, Any]]) -> set[tuple[str, str, int]]:
    """Every action the corrections re-applied: (action kind, version, value)."""
    return {(a["kind"], a["version"], a["value"]) for r in records
            if r["kind"] == "reconcile" for a in r["actions"]}
