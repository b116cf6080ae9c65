"""`releasedeck attach SPEC|URL --web HOST:PORT`: the wallboard in a browser, for a TV.

Textual's own web serving (textual-serve) runs the very same read-only wallboard app, one
`releasedeck attach ... --wallboard` process per browser tab, and streams its screen to the
page. Each tab is a follower of the driver's state server like any terminal: it queries no
metrics and holds no lever. The page needs nothing from the internet (its scripts and fonts are
served from the package), so a TV on an isolated network works.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import TextIO

from tui import exitcodes
from tui.serve.server import is_loopback, parse_address


def wallboard_command(args: argparse.Namespace) -> str:
    """The command each browser tab runs: attach, wallboard layout, same token."""
    parts = [sys.executable, "-m", "tui.cli", "attach", args.target, "--wallboard",
             "--refresh", str(float(getattr(args, "refresh", 1.0) or 1.0))]
    if getattr(args, "token_file", None):
        parts += ["--token-file", args.token_file]
    return shlex.join(parts)


def serve_web(args: argparse.Namespace, *, err: TextIO) -> int:
    try:
        host, port = parse_address(args.web)
    except ValueError as exc:
        print(f"releasedeck: {str(exc).replace('--serve', '--web')}", file=err)
        return exitcodes.USAGE
    if port == 0:
        print("releasedeck: --web needs a fixed port (a TV's browser must find it), e.g. 127.0.0.1:8080",
              file=err)
        return exitcodes.USAGE
    if not is_loopback(host):
        print(f"releasedeck: warning: --web {args.web} has no login: anyone who can reach it sees this "
              "release (read-only)", file=err)
    from textual_serve.server import Server

    server = Server(wallboard_command(args), host=host, port=port, title=f"releasedeck · {args.target}")
    print(f"releasedeck: wallboard for {args.target} at http://{host}:{port} (Ctrl+C stops)", file=err)
    server.serve()
    return exitcodes.PROMOTED
