"""The `releasedeck` command line: demo, watch, attach, check, replay, history.

Exit codes everywhere: 0 promoted, 1 rolled back or aborted, 2 usage/spec/trace error,
3 platform or metrics unreachable, 4 another session drives this release (holds its lease).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from tui import exitcodes
from tui.demo_specs import DEFAULT_TARGETS


def _surface_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--headless", action="store_true",
                        help="no screen: JSON-line events on stdout, exit code says the outcome")
    parser.add_argument("--read-only", action="store_true",
                        help="watch only: every command is refused (shared screens)")
    parser.add_argument("--wallboard", action="store_true",
                        help="large-figure layout for a wall screen (implies --read-only)")
    parser.add_argument("--record", metavar="FILE",
                        help="write a trace of raw counters and events for replay")
    parser.add_argument("--refresh", type=positive("--refresh", 3600), default=1.0, metavar="SECONDS",
                        help="screen refresh interval (default 1s)")
    parser.add_argument("--timeout", type=positive("--timeout", 30 * 86400), default=None, metavar="SECONDS",
                        help="give up after this long (headless: exit 1 unless promoted)")
    parser.add_argument("--until", default="done", metavar="promoted|step:N",
                        help="headless: stop successfully once promoted or step N is reached")


def positive(flag: str, limit: float, *, zero: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number above 0 (or at 0 with `zero`) and at most `limit`, so
    `--rate 0`, `--timeout nan` or `--timeout 1e300` end in one usage line, never later."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        low_ok = value >= 0 if zero else value > 0
        if not math.isfinite(value) or not low_ok or value > limit:
            floor = "0 or more" if zero else "above 0"
            raise argparse.ArgumentTypeError(f"must be a number {floor} and at most {limit:.10g}, "
                                             f"got {text!r}")
        return value

    parse.__name__ = flag  # argparse names the type in its message
    return parse


def _serve_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--serve", metavar="ADDR", default=None,
                        help="where the driver's read-only state server listens (JSON, events, "
                             "/metrics); default 127.0.0.1 on a free port; recorded in the lease")
    parser.add_argument("--token-file", metavar="FILE",
                        help="a file holding a token the state server asks for (needed to serve "
                             "on a non-loopback address)")


class ExactParser(argparse.ArgumentParser):
    """Flags are taken only as spelled: argparse's default of taking any unambiguous prefix
    (`--headles` for `--headless`) lets a typo pass, and would make a script that used a prefix
    break, or change meaning, the day a flag sharing it is added."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = ExactParser(
        prog="releasedeck",
        description="Watch and steer software releases from the terminal.",
        epilog="Exit codes: 0 promoted, 1 rolled back or aborted, 2 usage/spec/trace error, "
               "3 platform or metrics unreachable, 4 another session drives this release.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=ExactParser)

    demo = sub.add_parser(
        "demo", help="a real release on local processes, end to end (nothing to install)",
        description="Run a whole release on this machine: two versions of a small HTTP service "
                    "as local processes, the built-in router splitting traffic by weight, a load "
                    "generator and the metrics. In the app, f injects a fault into the candidate "
                    "(the gates roll it back), F clears it, R retries; i shows the built-in spec.")
    _surface_flags(demo)
    demo.add_argument("--fault-at", type=positive("--fault-at", 86400, zero=True), metavar="SECONDS",
                      help="inject a fault into the candidate this many seconds in")
    demo.add_argument("--prometheus", metavar="URL",
                      help="read metrics from this running Prometheus instead of scraping")
    demo.add_argument("--targets-file", metavar="FILE",
                      default=DEFAULT_TARGETS,
                      help="with --prometheus: file_sd targets file listing the demo's instances "
                           "(default: %(default)s)")
    demo.add_argument("--with-prometheus", action="store_true",
                      help="start a prometheus binary from PATH on 127.0.0.1 for the demo")
    demo.add_argument("--rate", type=positive("--rate", 10000), default=50.0, help="load in requests/s (default 50)")
    demo.add_argument("--strategy", default="canary",
                      choices=("canary", "blue-green", "rolling", "ab", "ring", "flag", "dark"),
                      help="rollout strategy for the demo (default canary); ring opens to "
                           "staff first, ab names a winner by conversion, dark mirrors "
                           "traffic to the candidate before any user sees it")
    demo.add_argument("--spec", metavar="FILE", help="use this release.toml instead of the "
                      "embedded default (platform kind must be local)")
    _serve_flags(demo)

    watch = sub.add_parser("watch", help="watch and drive the release a spec describes")
    watch.add_argument("spec", metavar="SPEC",
                       help="the release spec (release.toml): versions, platform, metrics, "
                            "strategy, gates, alerts; `releasedeck check SPEC` validates it")
    _surface_flags(watch)
    watch.add_argument("--observe", action="store_true",
                       help="take no action at all: watch and alert only")
    watch.add_argument("--journal", metavar="FILE", help="journal path (default: next to SPEC)")
    watch.add_argument("--fleet", action="append", default=[], metavar="SPEC|DIR",
                       help="what the app's :fleet view lists (default: the specs beside SPEC); "
                            "repeatable")
    watch.add_argument("--fresh", action="store_true",
                       help="start a new run instead of resuming the journal's last one")
    watch.add_argument("--adopt-spec", action="store_true",
                       help="the spec's plan changed since the journal's run started: continue "
                            "on the new plan at the last step at or below the current weight, "
                            "its hold restarted (without it a changed plan stops the run)")
    _serve_flags(watch)

    attach = sub.add_parser(
        "attach", help="follow the session that drives a release (read-only; queries nothing)",
        description="Show the driving session's screen read-only: its State arrives from its state "
                    "server; no engine, no levers, no metric queries here. When the driver goes "
                    "away the screen says since when and picks up the next driver.")
    attach.add_argument("target", metavar="SPEC|URL",
                        help="a release spec (its lease says who drives and where) or the URL of a "
                             "driver's state server, e.g. http://127.0.0.1:41234")
    attach.add_argument("--headless", action="store_true",
                        help="no screen: print the driver's events and state changes as JSON lines; "
                             "exit with the driver's outcome code")
    attach.add_argument("--wallboard", action="store_true", help="the large-figure wall layout")
    attach.add_argument("--web", metavar="ADDR",
                        help="serve the wallboard to browsers at HOST:PORT (textual-serve); off "
                             "loopback it needs --token-file")
    attach.add_argument("--token-file", metavar="FILE",
                        help="a file holding the token: sent to the driver if it asks for one, and "
                             "with --web asked of every browser (open /?token=TOKEN once)")
    attach.add_argument("--refresh", type=float, default=1.0, metavar="SECONDS",
                        help="screen refresh interval (default 1s)")
    attach.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="give up after this long (headless: exit 3 if no driver answered)")

    check = sub.add_parser(
        "check", help="validate release specs and show their plans",
        description="Validate each SPEC (every field, every adapter option) and print the plan "
                    "it would walk; nothing is contacted. Exit 0 when all are valid, 2 otherwise.")
    check.add_argument("specs", nargs="+", metavar="SPEC", help="release spec files to check")

    replay = sub.add_parser("replay", help="replay a recorded trace through the gates and engine")
    replay.add_argument("spec", metavar="SPEC", help="the release spec to judge the trace with")
    replay.add_argument("trace", metavar="TRACE",
                        help="a trace recorded with --record (JSON lines of raw counters and "
                             "events)")
    replay.add_argument("--summary", action="store_true",
                        help="print one JSON summary object at the end")

    from tui.fleet.command import add_parser as add_fleet
    from tui.history import add_parser as add_history

    add_fleet(sub)
    add_history(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("releasedeck")
    except PackageNotFoundError:
        return "unknown (not installed)"


READ_ONLY_COMMANDS = ("check", "replay", "history", "fleet")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Ctrl-C in a command that only reads, and a closed standard output, end
    with one line (or none) and a shell-style code, never a traceback (README, exit codes)."""
    args = build_parser().parse_args(argv)
    try:
        code = _dispatch(args)
        _settle_output()
        return code
    except KeyboardInterrupt:
        if args.command not in READ_ONLY_COMMANDS:
            raise
        print("releasedeck: interrupted", file=sys.stderr)
        return exitcodes.INTERRUPTED
    except BrokenPipeError:
        _discard_stdout()
        return exitcodes.OUTPUT_CLOSED


def _settle_output() -> None:
    """Flush both streams now: a reader that left during the run would otherwise fail the
    interpreter's last flush at exit and turn the command's exit status into 120."""
    from tui.events_out import discard

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            discard(stream)


def _discard_stdout() -> None:
    """The reader went away: point stdout at /dev/null so the interpreter's last flush at exit
    does not raise a second BrokenPipeError (Python's documented recipe for SIGPIPE)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "check":
        from tui.check import run_check

        return run_check(args.specs, sys.stdout, sys.stderr)
    if args.command == "replay":
        from tui.replay import replay_command

        return replay_command(args)
    if args.command == "demo":
        from tui.demo import demo_command

        return demo_command(args)
    if args.command == "fleet":
        from tui.fleet.command import fleet_command

        return fleet_command(args)
    if args.command == "attach":
        from tui.attach import attach_command

        return attach_command(args)
    if args.command == "history":
        from tui.history import history_command

        return history_command(args, sys.stdout, sys.stderr)
    if args.command == "watch":
        from tui.watch import watch_command

        return watch_command(args)
    return exitcodes.USAGE


if __name__ == "__main__":
    sys.exit(main())
