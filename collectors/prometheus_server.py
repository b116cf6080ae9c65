"""Start a real Prometheus server on 127.0.0.1 for the demo (`--with-prometheus`).

It discovers the demo's instances through a file_sd targets file that is rewritten whenever
the platform's instances change, so scaling shows up in Prometheus without a reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import httpx

from collectors.local import reaper
from collectors.local.net import free_port
from collectors.local.tempdirs import owned_tempdir
from strategies.model import PlatformSnapshot, Snapshot
from strategies.ports import RawCounters


class FileSDTargets:
    """A Prometheus file_sd targets file kept in step with the platform's instances, so a
    Prometheus finds services on ports chosen at run time, without a reload."""

    def __init__(self, path: Path):
        self.path = path
        self._last = ""
        self.path.write_text("[]")

    def update(self, snapshot: PlatformSnapshot) -> None:
        """Rewrite the file (atomically) when the set of instances changed."""
        groups = []
        seen: set[tuple[str, str]] = set()  # a flag release lists one workload under each variant
        for status in snapshot.versions.values():
            for instance in status.instances:
                if instance.address and (instance.address, instance.id) not in seen:
                    seen.add((instance.address, instance.id))
                    groups.append({"targets": [instance.address],
                                   "labels": {"instance_id": instance.id}})
        text = json.dumps(groups, sort_keys=True)
        if text != self._last:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(self.path)
            self._last = text

    def on_snapshot(self, snapshot: Snapshot, raw: Sequence[RawCounters]) -> None:
        """Driver listener hook (a SnapshotListener): a tick whose platform answered."""
        if snapshot.platform is not None and not snapshot.platform.error:
            self.update(snapshot.platform)


START_ATTEMPTS = 3
"""A Prometheus that exits before it is ready is started again on a new port this many times:
the port picked was free, but another program may bind it before Prometheus does."""


class LocalPrometheus:
    """A Prometheus process of our own: temp storage, 1 s scrapes, file-based discovery."""

    def __init__(self, binary: str = "prometheus", scrape_interval: str = "1s"):
        found = shutil.which(binary)
        if found is None:
            raise FileNotFoundError(f"no {binary!r} on PATH (install Debian's 'prometheus')")
        self.binary = found
        self.scrape_interval = scrape_interval
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._dir = owned_tempdir("prom")
        self.targets = FileSDTargets(self._dir / "targets.json")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (for tests and the soak's outages)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    async def start(self, ready_timeout: float = 20.0) -> None:
        config = self._dir / "prometheus.yml"
        config.write_text(
            "global:\n"
            f"  scrape_interval: {self.scrape_interval}\n"
            f"  evaluation_interval: {self.scrape_interval}\n"
            "scrape_configs:\n"
            "  - job_name: releasedeck-demo\n"
            "    file_sd_configs:\n"
            f"      - files: ['{self.targets.path}']\n"
            "        refresh_interval: 1s\n")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ready_timeout
        for attempt in range(START_ATTEMPTS):
            if attempt:  # it exited at once: most likely its port was taken since we picked it
                reaper.forget(self._proc)
                self.port = free_port()
                self.url = f"http://127.0.0.1:{self.port}"
            # Through the reaper: it dies with releasedeck, however releasedeck ends (kill -9 too).
            self._proc = reaper.spawn(
                [self.binary, f"--config.file={config}", f"--storage.tsdb.path={self._dir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"])
            async with httpx.AsyncClient(timeout=1.0) as client:
                while loop.time() < deadline:
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(f"{self.url}/-/ready")).status_code == 200:
                            return
                    if self._proc.poll() is not None:
                        break
                    await asyncio.sleep(0.2)
            if self._proc.poll() is None:
                break  # running but not ready in time: no second try
        await self.stop()
        raise RuntimeError(f"prometheus did not become ready on {self.url}")

    def on_snapshot(self, snapshot: Snapshot, raw: Sequence[RawCounters]) -> None:
        """Driver listener hook: keep discovery in step with the platform."""
        self.targets.on_snapshot(snapshot, raw)

    async def stop(self) -> None:
        if self._proc is not None:
            await reaper.stop(self._proc, grace=10.0)
        shutil.rmtree(self._dir, ignore_errors=True)
