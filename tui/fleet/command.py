"""`releasedeck fleet [SPEC|DIR ...]`: the list of releases, and a way into each of them.

Interactive: the list (FleetApp); Enter opens the chosen release's dashboard read-only (it
follows the release's driver, or observes it when nobody drives), `d` drives a release nobody
drives; quitting that dashboard comes back to the list. Headless: one JSON line per release,
then exit, for a pipeline or a cron job that wants the fleet's state.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from strategies.fleet import FleetRow, SortKey, sort_rows
from strategies.model import rfc3339
from tui import exitcodes
from tui.fleet.gather import Discovery, FleetGatherer


def add_parser(sub: argparse._SubParsersAction) -> None:
    fleet = sub.add_parser(
        "fleet", help="every release on one screen: phase, step, weights, worst gate, driver",
        description="One row per release found in the given specs or folders. A release a "
                    "session drives shows that session's state (nothing is queried twice); one "
                    "nobody drives shows its journal's state and gates observed on Prometheus "
                    "(one query per metric for the whole fleet). Enter opens a release, read-only.")
    fleet.add_argument("paths", nargs="*", metavar="SPEC|DIR",
                       help="release specs, or folders searched for *.toml specs (default: .)")
    fleet.add_argument("--discover", action="append", default=[], metavar="PLATFORM",
                       help="also list releases found on a platform without a spec here: "
                            "docker[=HOST] (containers releasedeck labelled) or "
                            "kubernetes[=NAMESPACE[@CONTEXT]] (Argo Rollouts, and Deployments and "
                            "HTTPRoutes labelled releasedeck.io/release); repeatable")
    fleet.add_argument("--headless", action="store_true",
                       help="print one JSON line per release and exit (no screen)")
    fleet.add_argument("--wallboard", action="store_true",
                       help="the list for a wall screen: no key can open or drive a release")
    fleet.add_argument("--refresh", type=float, default=2.0, metavar="SECONDS",
                       help="how often the list is gathered again (default 2s)")


def fleet_command(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr,
                  open_release: Callable[[list[str]], int] | None = None) -> int:
    if not args.refresh > 0:  # also refuses NaN
        print("releasedeck fleet: --refresh must be a positive number of seconds", file=err)
        return exitcodes.USAGE
    try:
        discover = [Discovery.parse(text) for text in args.discover]
    except ValueError as exc:
        print(f"releasedeck fleet: {exc}", file=err)
        return exitcodes.USAGE
    missing = [path for path in args.paths if not Path(path).exists()]
    if missing:  # a typo must not open a screen listing a release that does not exist
        for path in missing:
            print(f"releasedeck fleet: {path}: no such file or folder", file=err)
        return exitcodes.USAGE
    gatherer = FleetGatherer.from_paths(list(args.paths) or ["."], discover)
    if not gatherer.members and not gatherer.unreadable and not discover:
        print(f"releasedeck fleet: no release specs (*.toml) in {', '.join(args.paths or ['.'])}",
              file=err)
        return exitcodes.USAGE
    if args.headless:
        rows = asyncio.run(_gather_once(gatherer))
        for row in sort_rows(rows, SortKey.NAME):
            out.write(json.dumps(row_json(row), separators=(",", ":")) + "\n")
        return exitcodes.PROMOTED
    from tui.cli import main as cli_main
    from tui.fleet.app import Choice, FleetApp

    opener = open_release or cli_main
    while True:
        chosen = FleetApp(gatherer, refresh=args.refresh, wallboard=args.wallboard).run()
        if not isinstance(chosen, Choice) or args.wallboard:
            asyncio.run(gatherer.close())
            return exitcodes.PROMOTED
        opener(["watch", chosen.row.source] + ([] if chosen.drive else ["--read-only"]))


async def _gather_once(gatherer: FleetGatherer) -> list[FleetRow]:
    try:
        return await gatherer.refresh(time.time())
    finally:
        await gatherer.close()


def row_json(row: FleetRow) -> dict[str, Any]:
    gate = row.worst_gate
    return {
        "ts": rfc3339(time.time()), "release": row.release, "environment": row.environment,
        "strategy": row.strategy, "phase": row.phase.value if row.phase else None,
        "step": row.step, "desired_weight": row.desired_weight, "actual_weight": row.actual_weight,
        "worst_gate": None if gate is None else {"gate": gate.name, "status": gate.status.value,
                                                 "severity": gate.severity.value, "text": gate.text},
        "since": None if row.since is None else rfc3339(row.since), "driver": row.driver.value,
        "driven_by": row.driven_by, "baseline": row.baseline, "candidate": row.candidate,
        "spec": row.source, "problem": row.problem, "stale": row.stale,
    }
