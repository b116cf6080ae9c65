"""Local processes as a platform: each instance of a version is one child process on 127.0.0.1.

By default an instance is the demo service (`collectors.local.demo_service`); a spec may give
`[platform] command = ["./my-service", "--port", "{port}"]` with the placeholders {port},
{version}, {service}, {host}, {latency_ms}, {error_ratio}. Per-version behaviour of the demo
comes from `[platform] behaviour = {v1 = {latency_ms = 20, error_ratio = 0.0}}` and can be
changed live with `inject_fault`. Crashed instances are restarted with a backoff (counted in
`restarts`); every process started here is stopped on close, on Ctrl-C, at exit, and by the
kernel if this process dies (see `reaper`).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collectors.flags.flagd import flag_file
from collectors.local import reaper
from collectors.local.net import LOOPBACK, free_port
from collectors.local.tempdirs import owned_tempdir
from collectors.loop_session import LoopSession
from collectors.usage import NOT_MEASURED, ProcessUsage
from strategies.duration import parse_duration
from strategies.model import Instance, PlatformSnapshot, VersionStatus, frozen_map
from strategies.spec import ReleaseSpec

DEMO_COMMAND: tuple[str, ...] = (
    sys.executable, "-m", "collectors.local.demo_service", "--service", "{service}",
    "--version", "{version}", "--port", "{port}", "--latency-ms", "{latency_ms}",
    "--error-ratio", "{error_ratio}", "--ready-delay-ms", "{ready_delay_ms}",
    "--conversion", "{conversion}",
)
DEFAULT_BEHAVIOUR: Mapping[str, float] = frozen_map(
    {"latency_ms": 20.0, "error_ratio": 0.0, "ready_delay_ms": 0.0, "conversion": 0.1})
BEHAVIOUR_KEYS = frozenset(DEFAULT_BEHAVIOUR)
MAX_BACKOFF = 10.0


class LocalPlatformError(RuntimeError):
    """A local-platform lever or read failed; the message is one line for people."""


@dataclass
class _Child:
    """One instance: its process, where it listens, and what we learned about it."""

    id: str
    version: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    started: float = field(default_factory=time.monotonic)
    restarts: int = 0
    ready: bool = False
    exited_at: float | None = None

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def state(self) -> str:
        code = self.proc.poll()
        if code is not None:
            return f"exited({code})"
        return "running" if self.ready else "starting"


class LocalPlatform:
    """`strategies.ports.Platform` over local child processes (kind "local")."""

    kind = "local"

    def __init__(self, service: str = "checkout", *, command: Sequence[str] | None = None,
                 behaviour: Mapping[str, Mapping[str, float]] | None = None,
                 base_port: int | None = None, ready_timeout: float = 15.0,
                 health_timeout: float = 0.5, metrics_path: str = "/metrics",
                 cwd: str | None = None, demo_args: Sequence[str] = ()):
        self.service = service
        self.custom = command is not None
        self.command: tuple[str, ...] = tuple(command) if command is not None else (*DEMO_COMMAND, *demo_args)
        self.base_port = base_port
        self.ready_timeout = ready_timeout
        self.health_timeout = health_timeout
        self.metrics_path = metrics_path
        self.cwd = cwd
        self._behaviour: dict[str, dict[str, float]] = {}
        for version, values in (behaviour or {}).items():
            self._behaviour[version] = self._checked_behaviour(version, values)
        self._expand("probe", 1)  # fail now, not at the first scale, on a bad placeholder
        self._children: dict[str, list[_Child]] = {}
        self._desired: dict[str, int] = {}
        self._serial: dict[str, int] = {}
        self._lock = asyncio.Lock()
        self._client = LoopSession(health_timeout)
        self._logdir = owned_tempdir("local")
        self._closed = False
        self._usage = ProcessUsage()

    @classmethod
    def from_spec(cls, spec: ReleaseSpec) -> LocalPlatform:
        """Build from `[platform]` (kind "local") of a release spec."""
        options = spec.platform.options
        try:
            ready_timeout = parse_duration(options.get("ready_timeout", 15.0))
        except ValueError as exc:
            raise LocalPlatformError(f"platform.ready_timeout: {exc}") from exc
        demo_args: tuple[str, ...] = ()
        if spec.router.kind == "flagd":  # the demo service evaluates the flag from the file
            demo_args = ("--flag", spec.strategy.flag, "--flag-file", str(flag_file(spec)),
                         "--flag-variants", f"{spec.release.baseline},{spec.release.candidate}")
        return cls(
            spec.release.service,
            command=options.get("command"),
            demo_args=demo_args,
            behaviour=options.get("behaviour"),
            base_port=options.get("base_port"),
            ready_timeout=ready_timeout,
            metrics_path=spec.metrics.metrics_path,
            cwd=str(Path(spec.path).parent) if spec.path and Path(spec.path).exists() else None,
        )

    # ----------------------------------------------------------------- the port

    async def snapshot(self, versions: Sequence[str], now: float) -> PlatformSnapshot:
        """Instances per version with readiness polled from /healthz (short timeouts)."""
        async with self._lock:
            await self._restart_crashed()
            await self._poll_health()
            names = list(dict.fromkeys([*versions, *self._children]))
            self._usage.forget_others({c.proc.pid for g in self._children.values() for c in g})
            return PlatformSnapshot(at=now, versions=frozen_map(
                {name: self._status(name) for name in names}))

    async def scale(self, version: str, replicas: int) -> None:
        """Make `version` run exactly `replicas` instances (a target, so repeating is harmless).

        Returns once new processes are started and removed ones have exited; readiness comes
        later (see `wait_ready`). Not-ready instances go first, then the newest.
        """
        if replicas < 0:
            raise LocalPlatformError(f"cannot scale {version} to {replicas}: replicas must be >= 0")
        victims: list[_Child] = []
        async with self._lock:
            self._check_open()
            self._desired[version] = replicas
            children = self._children.setdefault(version, [])
            while len(children) < replicas:
                children.append(self._start(version))
            if len(children) > replicas:
                order = sorted(children, key=lambda c: (c.ready and c.alive, -self._index(c)))
                victims = order[: len(children) - replicas]
                self._children[version] = [c for c in children if c not in victims]
        # outside the lock: snapshots go on while the removed ones take their grace time
        await asyncio.gather(*(reaper.stop(c.proc) for c in victims))

    async def close(self) -> None:
        """Stop every process this platform started. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        async with self._lock:
            everyone = [c for group in self._children.values() for c in group]
            self._children.clear()
            await asyncio.gather(*(reaper.stop(c.proc) for c in everyone))
            await self._client.close()
            shutil.rmtree(self._logdir, ignore_errors=True)

    # ----------------------------------------------------------------- more levers

    async def inject_fault(self, version: str, *, error_ratio: float | None = None,
                           latency_ms: float | None = None, code_path: str = "") -> int:
        """Change behaviour of every instance of `version` (and of those started later).

        `code_path="flagged"` changes only the demo service's new, flag-gated path (live
        instances only: one restarted later starts healthy). Returns how many instances took
        it; raises LocalPlatformError if some did not.
        """
        change: dict[str, float] = {}
        if error_ratio is not None:
            change["error_ratio"] = float(error_ratio)
        if latency_ms is not None:
            change["latency_ms"] = float(latency_ms)
        if not change:
            raise LocalPlatformError("inject_fault needs error_ratio and/or latency_ms")
        merged = self._checked_behaviour(version, {**self.behaviour(version), **change})
        endpoint = f"/control/{code_path}" if code_path else "/control"
        async with self._lock:
            self._check_open()
            if not code_path:
                self._behaviour[version] = merged
            targets = [c for c in self._children.get(version, []) if c.alive]
            answers = await asyncio.gather(
                *(self._client.request("POST", f"http://{c.address}{endpoint}", json=change,
                                       timeout=2.0)
                  for c in targets), return_exceptions=True)
        failed = [(c, a) for c, a in zip(targets, answers, strict=True)
                  if isinstance(a, BaseException) or a.status != 200]
        if failed:
            child, answer = failed[0]
            why = _why(answer) if isinstance(answer, BaseException) else f"HTTP {answer.status}"
            raise LocalPlatformError(
                f"fault injection reached {len(targets) - len(failed)}/{len(targets)} instances "
                f"of {version}; {child.id} at {child.address}{endpoint}: {why}")
        return len(targets)

    @property
    def log_dir(self) -> Path:
        """Where each instance's stdout/stderr goes (`<version>-<n>.log`); removed on close."""
        return self._logdir

    def behaviour(self, version: str) -> dict[str, float]:
        """What new instances of `version` start with (demo service knobs)."""
        return {**DEFAULT_BEHAVIOUR, **self._behaviour.get(version, {})}

    def addresses(self, version: str, *, ready_only: bool = True) -> list[str]:
        """host:port of the instances of `version` as last seen (ready ones by default)."""
        return [c.address for c in self._children.get(version, [])
                if c.alive and (c.ready or not ready_only)]

    def pids(self, version: str | None = None) -> list[int]:
        """Process ids of live instances, of one version or all (diagnostics and tests)."""
        groups = [self._children.get(version, [])] if version else list(self._children.values())
        return [c.proc.pid for group in groups for c in group if c.alive]

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait (bounded) until every wanted instance answers /healthz; else say which did not."""
        limit = self.ready_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            async with self._lock:
                self._check_open()
                await self._restart_crashed()
                await self._poll_health()
                waiting = [c for version, group in self._children.items() for c in group
                           if not (c.alive and c.ready)]
                short = [v for v, n in self._desired.items() if len(self._children.get(v, [])) < n]
            if not waiting and not short:
                return
            if time.monotonic() >= deadline:
                names = ", ".join(f"{c.id} ({c.state()}{_tail(c)})" for c in waiting[:4])
                raise LocalPlatformError(
                    f"local instances not ready after {limit:g}s: {names or ', '.join(short)}")
            await asyncio.sleep(0.1)

    # ----------------------------------------------------------------- inside

    def _check_open(self) -> None:
        if self._closed:
            raise LocalPlatformError("local platform is closed")

    def _checked_behaviour(self, version: str, values: Mapping[str, Any]) -> dict[str, float]:
        unknown = set(values) - BEHAVIOUR_KEYS
        if unknown:
            raise LocalPlatformError(f"platform.behaviour.{version}: unknown key(s) "
                                     f"{', '.join(sorted(unknown))} (known: {', '.join(sorted(BEHAVIOUR_KEYS))})")
        out: dict[str, float] = {}
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise LocalPlatformError(f"platform.behaviour.{version}.{key}: must be a number, got {value!r}")
            out[key] = float(value)
        for share in ("error_ratio", "conversion"):
            if not 0 <= out.get(share, 0.0) <= 1:
                raise LocalPlatformError(f"platform.behaviour.{version}.{share}: must be between 0 and 1")
        if out.get("latency_ms", 0.0) < 0 or out.get("ready_delay_ms", 0.0) < 0:
            raise LocalPlatformError(f"platform.behaviour.{version}: times must not be negative")
        return out

    def _expand(self, version: str, port: int) -> list[str]:
        values = {"port": port, "version": version, "service": self.service, "host": LOOPBACK,
                  **{k: f"{v:g}" for k, v in self.behaviour(version).items()}}
        try:
            return [part.format_map(values) for part in self.command]
        except (KeyError, IndexError, ValueError) as exc:
            raise LocalPlatformError(
                f"platform.command: bad placeholder {exc} (known: {', '.join(sorted(values))})") from exc

    def _index(self, child: _Child) -> int:
        return int(child.id.rsplit("-", 1)[1])

    def _pick_port(self, version: str) -> int:
        if self.base_port is None:
            return free_port()
        taken = {c.port for group in self._children.values() for c in group}
        for port in range(self.base_port, min(self.base_port + 1000, 65536)):
            if port not in taken:
                return port
        raise LocalPlatformError(f"no free port from base_port {self.base_port} for {version}")

    def _spawn(self, version: str, port: int, log: Path) -> subprocess.Popen[bytes]:
        argv = self._expand(version, port)
        env = {} if self.custom else reaper.package_env()
        try:
            with open(log, "ab") as sink:
                return reaper.spawn(argv, env=env, cwd=self.cwd, stdout=sink, stderr=sink)
        except OSError as exc:
            raise LocalPlatformError(f"cannot start {version} instance: {argv[0]}: "
                                     f"{exc.strerror or exc}") from exc

    def _start(self, version: str) -> _Child:
        serial = self._serial.get(version, 0) + 1
        self._serial[version] = serial
        child_id = f"{self.service}-{version}-{serial}"
        log = self._logdir / f"{child_id}.log"
        port = self._pick_port(version)
        return _Child(child_id, version, port, self._spawn(version, port, log), log)

    async def _restart_crashed(self) -> None:
        """Restart exited instances that are still wanted, with an exponential backoff."""
        now = time.monotonic()
        for group in self._children.values():
            for child in group:
                if child.alive:
                    continue
                reaper.forget(child.proc)
                child.ready = False
                if child.exited_at is None:
                    child.exited_at = now
                if now - child.exited_at < min(MAX_BACKOFF, 0.5 * 2 ** child.restarts):
                    continue
                child.port = self._pick_port(child.version)
                child.proc = self._spawn(child.version, child.port, child.log)
                child.started, child.exited_at = now, None
                child.restarts += 1

    async def _poll_health(self) -> None:
        live = [c for group in self._children.values() for c in group if c.alive]
        if not live:
            return
        answers = await asyncio.gather(
            *(self._client.get(f"http://{c.address}/healthz") for c in live), return_exceptions=True)
        for child, answer in zip(live, answers, strict=True):
            if isinstance(answer, BaseException):
                child.ready = False
            elif self.custom:
                child.ready = answer.status < 500  # a service without /healthz answering 404 is up
            else:
                child.ready = answer.status == 200

    def _status(self, version: str) -> VersionStatus:
        image = "demo-service" if not self.custom else Path(self.command[0]).name
        children = self._children.get(version, [])
        usage = [self._usage.usage(c.proc.pid) if c.alive else NOT_MEASURED for c in children]
        instances = tuple(
            Instance(id=c.id, version=version, ready=c.alive and c.ready, address=c.address,
                     state=c.state(), restarts=c.restarts, image=image,
                     metrics_url=f"http://{c.address}{self.metrics_path}",
                     cpu=u.cpu, memory=u.memory)
            for c, u in zip(children, usage, strict=True))
        return VersionStatus(version=version, instances=instances,
                             desired=self._desired.get(version, 0), image=image)


def _why(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _tail(child: _Child) -> str:
    tail = reaper.log_tail(child.log)
    return f": {tail}" if tail else ""
