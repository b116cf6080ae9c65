"""The fault table's tools: `releasedeck` as a real subprocess over the real local stack
(demo service processes, the built-in router on a known port, load), its journal read back,
and the router's weights read back over its admin API."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]

SPEC = """
[release]
service = "checkout"
baseline = "v1"
candidate = "v2"

[platform]
kind = "local"
replicas = 1
behaviour = {{ v1 = {{ latency_ms = 2 }}, v2 = {{ latency_ms = 2 }} }}

[router]
kind = "local"
port = {port}

[metrics]
interval = "250ms"
window = "2s"
stale_after = "{stale_after}"

[strategy]
kind = "{kind}"
{strategy}
scale_down_delay = "0s"

[[gate]]
name = "errors"
metric = "error_rate"
max = 0.05
min_requests = 10
severity = "critical"
"""

CANARY = 'steps = [20, 50, 100]\nhold = "2s"'


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


@dataclass
class Release:
    """One spec in a temp dir, its journal, and its router's port."""

    dir: Path
    port: int
    kind: str = "canary"
    strategy: str = CANARY
    stale_after: str = "3s"

    @property
    def spec(self) -> Path:
        return self.dir / "release.toml"

    @property
    def journal(self) -> Path:
        return self.dir / ".release.releasedeck.journal"

    def write(self, **changes: str) -> Release:
        for key, value in changes.items():
            setattr(self, key, value)
        self.spec.write_text(SPEC.format(port=self.port, kind=self.kind, strategy=self.strategy,
                                         stale_after=self.stale_after))
        return self

    def records(self) -> list[dict[str, Any]]:
        if not self.journal.exists():
            return []
        out = []
        for line in self.journal.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def kinds(self) -> list[str]:
        return [r["kind"] for r in self.records() if r["kind"] not in ("gate",)]

    def start(self, *args: str, env_extra: dict[str, str] | None = None
              ) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "tui.cli", "watch", str(self.spec), "--headless", *args],
            cwd=self.dir, env={**env(), **(env_extra or {})}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)

    def run(self, *args: str, timeout: float = 240, env_extra: dict[str, str] | None = None
            ) -> tuple[int, list[dict[str, Any]], str]:
        proc = subprocess.run(
            [sys.executable, "-m", "tui.cli", "watch", str(self.spec), "--headless", *args],
            cwd=self.dir, env={**env(), **(env_extra or {})}, capture_output=True, text=True,
            timeout=timeout, check=False)
        return proc.returncode, events(proc.stdout), proc.stderr

    def weights(self) -> dict[str, Any]:
        """GET /-/weights of the running router: configured and effective weights."""
        answer = httpx.get(f"http://127.0.0.1:{self.port}/-/weights", timeout=2.0,
                           trust_env=False)
        answer.raise_for_status()
        return dict(answer.json())

    def set_router_weights(self, weights: dict[str, int]) -> None:
        """Someone else moves the lever: a PUT straight to the router's admin API."""
        httpx.put(f"http://127.0.0.1:{self.port}/-/weights", json=weights, timeout=2.0,
                  trust_env=False).raise_for_status()


def events(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def wait_for(what: str, check: Callable[[], Any], timeout: float = 90.0,
             proc: subprocess.Popen[str] | None = None) -> Any:
    """Poll `check` until it returns something truthy (bounded); fail with `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except (OSError, httpx.HTTPError, ValueError):
            value = None
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: releasedeck exited {proc.returncode} first: "
                                 f"{proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def confirmed(release: Release, kind: str, value: int) -> bool:
    """The journal shows an `action_done` of this action kind and value."""
    for record in release.records():
        if record["kind"] == "action_done":
            for item in record.get("evidence", ()):
                if item.get("kind") == kind and item.get("value") == value:
                    return True
    return False


def kill(proc: subprocess.Popen[str], sig: int = signal.SIGKILL) -> int:
    proc.send_signal(sig)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    return int(proc.returncode)


def exited(pid: int) -> bool:
    """Whether our child `pid` has exited so that its parent can reap it now (not reaped here:
    WNOWAIT). Its zombie shows in /proc a moment earlier, while a multi-threaded process's
    other threads are still going, and waitpid (Popen.poll) does not report it yet."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True  # reaped already


def port_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def decision_actions(records: list[dict[str, Any]]) -> list[tuple[str, int, str]]:
    """Every action a decision (not a reconcile) asked for: kind, value, version, in order."""
    return [(a["kind"], a["value"], a.get("version", "")) for r in records
            if r["kind"] not in ("reconcile",) for a in r.get("actions", ())]


def descendants(pid: int) -> list[Any]:
    """Every live process below `pid` (psutil.Process objects)."""
    import psutil

    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return []


def command_line(proc: Any) -> str:
    """A process's command line, "" once it is gone or a zombie."""
    import psutil

    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


def all_gone(procs: list[Any]) -> bool:
    import psutil

    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True


def owned_dirs(tmp: Path, pid: int) -> list[Path]:
    """releasedeck temp dirs created by process `pid` under `tmp` (see collectors.local.tempdirs)."""
    return sorted(p for p in tmp.glob(f"releasedeck-*-{pid}-*") if p.is_dir())


class Tmux:
    """A private tmux server (its own socket) running one command in a 100x30 pane; reads the
    pane's terminal modes the way a person would see them after the program ends."""

    def __init__(self, name: str):
        self.base = ["tmux", "-L", name]

    def start(self, command: str, cwd: Path) -> None:
        subprocess.run([*self.base, "-f", "/dev/null", "new-session", "-d", "-s", "t", "-x",
                        "100", "-y", "30", "-c", str(cwd), command], check=True, env=env())
        subprocess.run([*self.base, "set-option", "-g", "remain-on-exit", "on"], check=True)

    def show(self, fmt: str) -> str:
        return subprocess.run([*self.base, "display-message", "-p", "-t", "t", fmt],
                              capture_output=True, text=True, check=True).stdout.strip()

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True, check=False)
