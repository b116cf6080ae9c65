"""`releasedeck attach SPEC|URL --web HOST:PORT`: the wallboard in a browser, for a TV.

Textual's own web serving (textual-serve) runs the very same read-only wallboard app, one
`releasedeck attach ... --wallboard` process per browser tab, and streams its screen to the
page. Each tab is a follower of the driver's state server like any terminal: it queries no
metrics and holds no lever. The page needs nothing from the internet (its scripts and fonts are
served from the package), so a TV on an isolated network works.

Two things are added to textual-serve's server here:
- **a token** (`--token-file`): every path (page, statics, websocket, downloads) answers 401
  without it. A browser opens `http://HOST:PORT/?token=T` once; that sets an HttpOnly,
  SameSite=Strict cookie and redirects to the bare URL, so the token leaves the address bar and
  scripts on other sites cannot send it. Off loopback the token is required: the wallboard shows
  the release to anyone who can reach the port. Loopback stays tokenless (only this machine).
- **the address the browser used**: textual-serve writes its own bind address into the page
  (`ws://0.0.0.0:8080/ws` for `--web 0.0.0.0:8080`, which no browser can open). The page here is
  built from the request's Host (or X-Forwarded-Host / X-Forwarded-Proto behind a TLS proxy),
  so the scripts and the websocket go back where the page came from.
"""

from __future__ import annotations

import hmac
import shlex
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

from tui import exitcodes
from tui.flags import RunFlags
from tui.serve.server import is_loopback, parse_address

COOKIE = "releasedeck_token"
Handler = Callable[[Any], Awaitable[Any]]


def wallboard_command(flags: RunFlags) -> str:
    """The command each browser tab runs: attach, wallboard layout, same token."""
    parts = [sys.executable, "-m", "tui.cli", "attach", flags.target, "--wallboard",
             "--refresh", str(flags.refresh)]
    if flags.token_file:
        parts += ["--token-file", flags.token_file]
    return shlex.join(parts)


def public_base(scheme: str, host: str, headers: Any) -> tuple[str, str]:
    """(http(s) base URL, ws(s) base URL) as the browser reached this server: the first
    X-Forwarded-Proto / X-Forwarded-Host a proxy set, else the request's own scheme and Host."""
    proto = (headers.get("X-Forwarded-Proto") or scheme or "http").split(",")[0].strip().lower()
    where = (headers.get("X-Forwarded-Host") or host or "").split(",")[0].strip()
    secure = proto in ("https", "wss")
    return (f"{'https' if secure else 'http'}://{where}", f"{'wss' if secure else 'ws'}://{where}")


def make_server(command: str, host: str, port: int, title: str, token: str | None) -> Any:
    """textual-serve's Server with the token check and the request-relative page."""
    import aiohttp_jinja2
    from aiohttp import web
    from textual_serve.server import Server, to_int

    def authorised(request: web.Request) -> bool:
        if token is None:
            return True
        offered = [request.cookies.get(COOKIE, "")]
        bearer = request.headers.get("Authorization", "")
        if bearer.startswith("Bearer "):
            offered.append(bearer[7:].strip())
        return any(hmac.compare_digest(o.encode(), token.encode()) for o in offered if o)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> Any:
        given = request.query.get("token")
        if token is not None and given is not None:
            if not hmac.compare_digest(given.encode(), token.encode()):
                return web.Response(status=401, text="releasedeck: wrong token\n")
            query = {k: v for k, v in request.query.items() if k != "token"}
            response = web.HTTPFound(request.rel_url.with_query(query))
            secure = public_base(request.scheme, request.host, request.headers)[0].startswith("https")
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=secure,
                                path="/")
            return response
        if not authorised(request):
            return web.Response(status=401, text="releasedeck: this wallboard needs its token: "
                                "open it once as /?token=TOKEN\n")
        return await handler(request)

    class WallboardServer(Server):  # type: ignore[misc]
        async def _make_app(self) -> web.Application:
            app = await super()._make_app()
            app.middlewares.append(guard)
            return app

        @aiohttp_jinja2.template("app_index.html")
        async def handle_index(self, request: web.Request) -> dict[str, Any]:
            base, ws_base = public_base(request.scheme, request.host, request.headers)
            router = request.app.router
            return {
                "font_size": to_int(request.query.get("fontsize", "16"), 16),
                "app_websocket_url": f"{ws_base}{router['websocket'].url_for()}",
                "config": {"static": {
                    "url": f"{base}{router['static'].url_for(filename='/')}".rstrip("/") + "/"}},
                "application": {"name": self.title},
            }

    return WallboardServer(command, host=host, port=port, title=title)


def serve_web(flags: RunFlags, *, err: TextIO) -> int:
    try:
        host, port = parse_address(flags.web or "")
    except ValueError as exc:
        print(f"releasedeck: {str(exc).replace('--serve', '--web')}", file=err)
        return exitcodes.USAGE
    if port == 0:
        print("releasedeck: --web needs a fixed port (a TV's browser must find it), e.g. 127.0.0.1:8080",
              file=err)
        return exitcodes.USAGE
    from tui.seat import token_option

    try:
        token = token_option(flags.token_file)
    except ValueError as exc:
        print(f"releasedeck: {exc}", file=err)
        return exitcodes.USAGE
    if token is None and not is_loopback(host):
        print(f"releasedeck: --web {flags.web}: a non-loopback address needs --token-file (anyone "
              "who can reach it would see this release)", file=err)
        return exitcodes.USAGE
    server = make_server(wallboard_command(flags), host, port, f"releasedeck · {flags.target}", token)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    hint = "/?token=TOKEN once (sets a cookie)" if token else ""
    print(f"releasedeck: wallboard for {flags.target} at http://{shown}:{port}{hint} "
          "(Ctrl+C stops)", file=err)
    server.serve()
    return exitcodes.PROMOTED
