"""`attach --web` behind a token, against the real textual-serve process.

Every path the wallboard serves (page, statics, websocket, downloads) answers 401 without the
token; `/?token=` once sets an HttpOnly SameSite=Strict cookie and redirects to the bare URL, and
the cookie then opens everything. Off loopback without a token the command refuses in one line
(exit 2). Bound to 0.0.0.0, the page's scripts and websocket point where the browser came from
(the request's Host, or a TLS proxy's X-Forwarded-Proto / -Host), never at ws://0.0.0.0.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
TOKEN = "wallboard-7f3a9c"
NOBODY = "http://127.0.0.1:9"  # no driver needed: the page and its auth come first


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    async def probe() -> bool:
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s, \
                    s.get(url, allow_redirects=False) as response:
                return response.status in (200, 401)
        except (aiohttp.ClientError, OSError, TimeoutError):
            return False
    return asyncio.run(probe())


def start_web(tmp_path: Path, host: str, *extra: str) -> Iterator[str]:
    """A real `attach --web` process; a port taken meanwhile by someone else → another port."""
    for _attempt in range(5):
        port = _port()
        proc = subprocess.Popen([sys.executable, "-m", "tui.cli", "attach", NOBODY, "--web",
                                 f"{host}:{port}", *extra], cwd=tmp_path, env=ENV,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while proc.poll() is None and time.monotonic() < deadline and not _answers(url + "/"):
            time.sleep(0.2)
        if proc.poll() is None and _answers(url + "/"):
            try:
                yield url
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            return
        proc.kill()
        proc.wait()
    raise RuntimeError("attach --web did not start on any of 5 ports")


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


@pytest.fixture
def web_any(tmp_path: Path, token_file: Path) -> Iterator[str]:
    yield from start_web(tmp_path, "0.0.0.0", "--token-file", str(token_file))


async def _status(session: aiohttp.ClientSession, url: str, **kw: object) -> int:
    async with session.get(url, allow_redirects=False, **kw) as response:
        await response.read()
        return response.status


def test_every_path_needs_the_token_and_the_cookie_opens_them(web_any: str) -> None:
    async def scenario() -> None:
        paths = ("/", "/static/js/textual.js", "/download/anything", "/ws")
        async with aiohttp.ClientSession() as anonymous:
            for path in paths:
                assert await _status(anonymous, web_any + path) == 401, path
            assert await _status(anonymous, web_any + "/?token=wrong") == 401
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await anonymous.ws_connect(web_any.replace("http", "ws") + "/ws")
            assert refused.value.status == 401
            async with anonymous.get(web_any + "/") as response:
                body = await response.text()
            assert TOKEN not in body and "textual" not in body.lower()

        jar = aiohttp.CookieJar(unsafe=True)  # an IP-address host keeps its cookies
        async with aiohttp.ClientSession(cookie_jar=jar) as browser:
            async with browser.get(f"{web_any}/?token={TOKEN}", allow_redirects=False) as first:
                assert first.status == 302
                assert first.headers["Location"] == "/"  # the token leaves the address bar
                cookie = first.headers["Set-Cookie"]
                assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert await _status(browser, web_any + "/") == 200
            assert await _status(browser, web_any + "/static/js/textual.js") == 200
            assert await _status(browser, web_any + "/download/anything") == 404  # past the guard
            ws = await browser.ws_connect(web_any.replace("http", "ws") + "/ws")
            await ws.close()

        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as script:
            assert await _status(script, web_any + "/") == 200

    asyncio.run(scenario())


def test_the_page_points_where_the_browser_came_from(web_any: str) -> None:
    async def page(**headers: str) -> str:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}", **headers}) as s, \
                s.get(web_any + "/") as response:
            assert response.status == 200
            return await response.text()

    async def scenario() -> None:
        direct = await page()
        port = web_any.rsplit(":", 1)[1]
        assert f'ws://127.0.0.1:{port}/ws' in direct
        assert f'http://127.0.0.1:{port}/static/js/textual.js' in direct
        assert "0.0.0.0" not in direct
        named = await page(Host=f"tv.lan:{port}")
        assert f"ws://tv.lan:{port}/ws" in named
        proxied = await page(**{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "board.example"})
        assert "wss://board.example/ws" in proxied
        assert re.search(r'src="https://board\.example/static/js/textual\.js"', proxied)
        assert "ws://" not in proxied and "0.0.0.0" not in proxied

    asyncio.run(scenario())


def test_off_loopback_without_a_token_refuses_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "tui.cli", "attach", NOBODY, "--web",
                           f"0.0.0.0:{_port()}"], cwd=tmp_path, env=ENV, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--token-file" in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_loopback_stays_tokenless(tmp_path: Path) -> None:
    async def scenario(url: str) -> None:
        async with aiohttp.ClientSession() as s:
            assert await _status(s, url + "/") == 200
            assert await _status(s, url + "/static/js/textual.js") == 200

    for url in start_web(tmp_path, "127.0.0.1"):
        asyncio.run(scenario(url))
