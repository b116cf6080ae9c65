"""A real headless Chromium (Debian's `chromium`) driven over the DevTools protocol, for tests.

Own empty profile in a temp dir, loopback only (every other host name resolves to nothing), no
background networking; always stopped. `open(url)` loads a page; `evaluate(js)` runs script in
it; `screenshot(path)` writes a PNG; `add_init_script(js)` runs before the page's own scripts
(e.g. to record what a WebSocket receives).

    async with Chromium(tmp_path) as browser:
        await browser.open("http://127.0.0.1:8080/")
        title = await browser.evaluate("document.title")
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--hide-scrollbars",
         "--mute-audio", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0")


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Chromium:
    def __init__(self, workdir: Path, *, width: int = 1600, height: int = 900):
        self.binary = chromium_binary()
        if self.binary is None:
            pytest.skip("chromium not found on PATH (Debian package 'chromium')")
        self.profile = Path(workdir) / "chromium-profile"
        self.profile.mkdir(parents=True, exist_ok=True)
        self.size = (width, height)
        self.process: subprocess.Popen[bytes] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Chromium:
        try:
            return await self._start()
        except BaseException:
            await self.__aexit__(None, None, None)  # never leave a browser behind
            raise

    async def _start(self) -> Chromium:
        with (self.profile.parent / "chromium.log").open("wb") as log:
            self.process = subprocess.Popen(
                [self.binary or "chromium", *FLAGS, f"--user-data-dir={self.profile}",
                 f"--window-size={self.size[0]},{self.size[1]}", "about:blank"],
                stdout=log, stderr=subprocess.STDOUT)
        port_file = self.profile / "DevToolsActivePort"
        port_file.unlink(missing_ok=True)
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                log_tail = (self.profile.parent / "chromium.log").read_text()[-800:]
                raise RuntimeError(f"chromium did not start: {log_tail}")
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        self._session = aiohttp.ClientSession()
        pages: list[dict[str, Any]] = []
        for _ in range(300):
            with contextlib.suppress(aiohttp.ClientError):
                async with self._session.get(f"http://127.0.0.1:{port}/json/list") as reply:
                    pages = [t for t in await reply.json() if t.get("type") == "page"]
            if pages:
                break
            await asyncio.sleep(0.1)
        if not pages:
            raise RuntimeError("chromium offers no page to drive")
        self._ws = await self._session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)
        self._reader = asyncio.create_task(self._read())
        await self.send("Page.enable")
        await self.send("Runtime.enable")
        return self

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            body = message.json()
            future = self._pending.pop(body.get("id", -1), None)
            if future is not None and not future.done():
                if "error" in body:
                    future.set_exception(RuntimeError(f"CDP error: {body['error']}"))
                else:
                    future.set_result(body.get("result", {}))

    async def send(self, method: str, **params: Any) -> Any:
        assert self._ws is not None
        ident = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        await self._ws.send_json({"id": ident, "method": method, "params": params})
        return await asyncio.wait_for(future, timeout=30)

    async def add_init_script(self, source: str) -> None:
        await self.send("Page.addScriptToEvaluateOnNewDocument", source=source)

    async def open(self, url: str) -> None:
        await self.send("Page.navigate", url=url)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    async def screenshot(self, path: Path) -> None:
        data = await self.send("Page.captureScreenshot", format="png")
        Path(path).write_bytes(base64.b64decode(data["data"]))

    async def __aexit__(self, *exc: object) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        if self._session is not None:
            await self._session.close()
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
