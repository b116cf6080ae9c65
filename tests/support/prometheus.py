"""A real Prometheus server for tests: own temp storage, 127.0.0.1 on a free port, always stopped.

Two ways to feed it: a scrape config (start() waits until every target was scraped once), or
exact samples backfilled with `promtool tsdb create-blocks-from openmetrics` before start, which
is how rate tests get byte-for-byte the same samples on both sides.

    server = PrometheusServer(tmp_path)
    server.backfill(openmetrics_text)          # optional, before start
    url = server.start({"scrape_configs": [...]})
    server.query("rate(x[30s])", at=1700000000.5)
    server.stop()

The `prometheus_server` fixture skips the test only when the binary is missing.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.ports import PortTaken, free_port, retry_on_taken_port

START_TIMEOUT = 30.0


class PrometheusError(RuntimeError):
    pass


class PrometheusServer:
    """One prometheus process with its own storage dir under `workdir`."""

    def __init__(self, workdir: Path, binary: str = "prometheus", promtool: str = "promtool"):
        self.workdir = Path(workdir)
        self.binary = binary
        self.promtool = promtool
        self.data = self.workdir / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.client = httpx.Client(timeout=10.0)

    def backfill(self, openmetrics: str) -> None:
        """Write exact samples as TSDB blocks (timestamps in seconds; text must end '# EOF')."""
        if self.process is not None:
            raise PrometheusError("backfill before start: blocks are loaded at startup")
        if shutil.which(self.promtool) is None:
            pytest.skip("promtool binary not found on PATH (Debian package 'prometheus')")
        source = self.workdir / "backfill.om"
        source.write_text(openmetrics if openmetrics.rstrip().endswith("# EOF")
                          else openmetrics.rstrip() + "\n# EOF\n", encoding="utf-8")
        done = subprocess.run([self.promtool, "tsdb", "create-blocks-from", "openmetrics",
                               str(source), str(self.data)], capture_output=True, text=True,
                              timeout=60, check=False)
        if done.returncode != 0:
            raise PrometheusError(f"promtool backfill failed: {done.stderr.strip()[-500:]}")

    def start(self, config: str | Mapping[str, Any] | None = None,
              timeout: float = START_TIMEOUT) -> str:
        """Start, wait until ready and every scrape target was scraped once; return the URL."""
        if isinstance(config, Mapping):
            text = json.dumps(config)  # JSON is YAML
        else:
            text = config or json.dumps({"global": {"scrape_interval": "1s"}})
        config_path = self.workdir / "prometheus.yml"
        config_path.write_text(text, encoding="utf-8")
        deadline = time.monotonic() + timeout

        def launch() -> None:
            port = free_port()
            self.url = f"http://127.0.0.1:{port}"
            with self.log_path.open("wb") as log:
                self.process = subprocess.Popen(
                    [self.binary, f"--config.file={config_path}", f"--storage.tsdb.path={self.data}",
                     f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=3650d",
                     "--log.level=warn"],
                    stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
            try:
                self._wait(deadline, self._ready, "ready")
            except PrometheusError as exc:
                if "address already in use" in self.log_tail():
                    raise PortTaken(str(exc)) from exc  # someone took the port: a new one
                raise

        retry_on_taken_port(launch)
        self._wait(deadline, self._scraped, "first scrape of every target")
        return self.url

    def _wait(self, deadline: float, check: Any, what: str) -> None:
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise PrometheusError(f"prometheus exited ({self.process.returncode}) before "
                                      f"{what}: {self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                if check():
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise PrometheusError(f"prometheus not {what} in time: {self.log_tail()}")
            time.sleep(0.1)

    def _ready(self) -> bool:
        return self.client.get(f"{self.url}/-/ready", timeout=2.0).status_code == 200

    def _scraped(self) -> bool:
        targets = self.client.get(f"{self.url}/api/v1/targets", timeout=2.0).json()["data"]
        return all(not t.get("lastScrape", "").startswith("0001")
                   for t in targets.get("activeTargets", []))

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-800:].strip()
        except OSError:
            return ""

    def api(self, path: str, **params: Any) -> Any:
        reply = self.client.get(f"{self.url}/api/v1/{path}", params=params).json()
        if reply.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {reply.get('error')}")
        return reply["data"]

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        """Instant query at `at`; the result vector (list of {metric, value})."""
        return list(self.api("query", query=expr, time=f"{at:.3f}")["result"])

    def scalar(self, expr: str, at: float) -> float | None:
        """The value of a one-element result, None for an empty one."""
        result = self.query(expr, at)
        if not result:
            return None
        if len(result) > 1:
            raise PrometheusError(f"{expr}: {len(result)} series, expected one")
        return float(result[0]["value"][1])

    def vector(self, expr: str, at: float, label: str) -> dict[str, float]:
        """Instant query at `at`, keyed by one label's value."""
        return {r["metric"].get(label, ""): float(r["value"][1]) for r in self.query(expr, at)}

    def stop(self) -> None:
        self.client.close()
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def prometheus_server(tmp_path: Path) -> Iterator[PrometheusServer]:
    """An unstarted PrometheusServer (backfill, then start); stopped after the test."""
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus binary not found on PATH (Debian package 'prometheus')")
    server = PrometheusServer(tmp_path / "prometheus")
    try:
        yield server
    finally:
        server.stop()
