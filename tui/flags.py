"""The run commands' flags, typed once where argparse's Namespace ends.

`watch`, `demo` and `attach` (and `attach --web`'s browser tabs) each define a subset of these
flags; the code behind them (seat, session, headless run, app, follower) shares them. Reading
them from the Namespace with per-flag defaults at every use spread an untyped bag across
modules: here each flag has one type and one default, and what a command does not define is
that default.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class RunFlags:
    """What a run command was asked for (`releasedeck watch|demo|attach --help` words each)."""

    spec: str = ""
    """The spec file (`watch SPEC`, `demo --spec FILE`); empty for the demo's built-in spec."""
    target: str = ""
    """`attach SPEC|URL`: whom to follow."""
    headless: bool = False
    observe: bool = False
    read_only: bool = False
    wallboard: bool = False
    refresh: float = 1.0
    timeout: float | None = None
    until: str = "done"
    journal: str | None = None
    fresh: bool = False
    adopt_spec: bool = False
    record: str | None = None
    serve: str | None = None
    token_file: str | None = None
    web: str | None = None
    fleet: tuple[str, ...] = ()

    @classmethod
    def of(cls, args: argparse.Namespace) -> RunFlags:
        """The flags a parsed command line gave; a flag its command lacks (or left unset, None)
        keeps its default. A wallboard is read-only whatever else was asked."""
        given = vars(args)
        values: dict[str, Any] = {f.name: given[f.name] for f in fields(cls)
                                  if given.get(f.name) is not None}
        if "fleet" in values:
            values["fleet"] = tuple(values["fleet"])
        if "until" in values:
            values["until"] = values["until"] or "done"
        if "refresh" in values:
            values["refresh"] = float(values["refresh"]) or 1.0
        flags = cls(**values)
        return flags if not flags.wallboard else cls(**{**values, "read_only": True})
