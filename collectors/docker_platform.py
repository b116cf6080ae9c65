"""Docker as a platform: versions are containers found by label, scaled from a template.

Discovery reads every container matching `[platform] selector` (e.g. "app=checkout") and groups
them by the version label. The scale lever starts containers from a template (image per version,
command, env, labels, network mode, volumes, healthcheck) and stops the surplus. Containers this
module starts carry `releasedeck.managed=true` and `releasedeck.service=<service>`, so
`cleanup()` (or `docker rm -f $(docker ps -aq -f label=releasedeck.managed=true)`) finds them all.

The docker SDK blocks, so every call runs in a thread with the SDK's own HTTP timeout; errors
become one-line messages that say which engine and why (socket missing, permission, image).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import docker
import docker.errors
import docker.tls
import docker.types
from docker.models.containers import Container

from collectors.usage import NOT_MEASURED, Usage, container_usage
from strategies.duration import parse_duration
from strategies.model import Instance, PlatformSnapshot, VersionStatus, frozen_map
from strategies.spec import ReleaseSpec

MANAGED = "releasedeck.managed"
SERVICE = "releasedeck.service"
VERSION = "releasedeck.version"  # the version, whatever the spec's version_label: for discovery
PORT = "releasedeck.port"
INDEX = "releasedeck.index"
LIVE_STATES = ("running", "restarting", "paused")
LOOPBACK = "127.0.0.1"
API_VERSION = "1.40"
"""Docker Engine API spoken: Docker 19.03+, Podman's compat API; all this module needs."""
SETTLE = 0.5
"""Seconds a container without a healthcheck must stay running before a scale counts it ready."""


class DockerPlatformError(RuntimeError):
    """A Docker read or lever failed; the message is one line for people."""


class EngineUnreachable(DockerPlatformError):
    """No connection to the engine at all (socket missing, refused, permission, TLS)."""


@dataclass(frozen=True)
class Template:
    """How to start one instance of a version. Strings may use {service} {version} {port}
    {index} {host}."""

    image: str = ""  # default image, e.g. "shop/checkout:{version}"
    images: Mapping[str, str] = field(default_factory=dict)  # version -> image (wins over image)
    command: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    network_mode: str = "host"
    port: int | None = None  # port the service listens on inside the container
    base_port: int | Mapping[str, int] | None = None  # host mode: first port per instance,
    # or per version ({v1 = 8101, v2 = 8201}) so a static HAProxy config knows every address
    volumes: Mapping[str, Any] | Sequence[str] = field(default_factory=dict)
    healthcheck: Mapping[str, Any] = field(default_factory=dict)
    restart: str = "on-failure"  # Docker restart policy; "no" to disable
    init: bool = False

    def image_for(self, version: str) -> str:
        raw = self.images.get(version) or self.image
        return raw.replace("{version}", version) if raw else ""


def parse_selector(selector: str) -> dict[str, str | None]:
    """ "app=checkout,tier=web" -> {"app": "checkout", "tier": "web"}; a bare key matches any value."""
    out: dict[str, str | None] = {}
    for part in selector.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        out[key.strip()] = value.strip() if sep else None
    return out


def tls_config(options: Mapping[str, Any]) -> docker.tls.TLSConfig:
    """`[platform] tls = {ca_cert = "...", client_cert = "...", client_key = "...", verify = true}`."""
    cert, key = options.get("client_cert"), options.get("client_key")
    ca = options.get("ca_cert")
    verify = options.get("verify", True)
    return docker.tls.TLSConfig(
        client_cert=(cert, key) if cert and key else None,
        ca_cert=ca, verify=(ca if (verify and ca) else bool(verify)))


def explain(exc: BaseException, where: str) -> str:
    """One line for people: what failed against which engine, and what to do about it."""
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 8:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    text = " ".join(str(e) for e in chain)
    if any(isinstance(e, PermissionError) for e in chain) or "Permission denied" in text:
        return (f"permission denied on the Docker socket {where} "
                "(join the 'docker' group, or point [platform] host / DOCKER_HOST elsewhere)")
    if any(isinstance(e, FileNotFoundError) for e in chain) or "No such file or directory" in text:
        return f"Docker engine not found at {where}: no socket there (is dockerd or podman running?)"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "Connection refused" in text:
        return f"Docker engine at {where} refused the connection (is it running?)"
    ssl = re.search(r"\[SSL: [A-Z0-9_]+\] ([^(]+?)\s*\(_ssl", text)
    if ssl or "SSLError" in text:
        why = ssl.group(1) if ssl else "TLS error"
        return (f"TLS handshake with the Docker engine at {where} failed ({why}): check "
                "[platform] tls ca_cert, client_cert and client_key")
    if "timed out" in text.lower() or "timeout" in type(exc).__name__.lower():
        return f"Docker engine at {where} did not answer in time"
    if isinstance(exc, docker.errors.ImageNotFound):
        return f"image not found on the engine at {where}: {_api_text(exc)} (build, load or pull it first)"
    if isinstance(exc, docker.errors.APIError):
        return f"Docker engine at {where}: {_api_text(exc)}"
    if isinstance(exc, docker.errors.TLSParameterError):
        return f"Docker TLS settings for {where}: {exc}"
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"Docker engine at {where}: {first}"


def _api_text(exc: docker.errors.APIError) -> str:
    return str(exc.explanation or exc).splitlines()[0]


class DockerPlatform:
    """`strategies.ports.Platform` over a Docker (or Podman) engine (kind "docker")."""

    kind = "docker"

    def __init__(self, service: str, *, selector: str = "", version_label: str = "version",
                 template: Template | None = None, host: str = "",
                 tls: Mapping[str, Any] | None = None, api_timeout: float = 10.0,
                 ready_timeout: float = 20.0, stop_timeout: int = 5,
                 metrics_path: str = "/metrics",
                 client_factory: Callable[[], docker.DockerClient] | None = None):
        self.service = service
        self.selector = parse_selector(selector) or {SERVICE: service}
        self.version_label = version_label
        self.template = template or Template()
        self.host = host
        self.tls = dict(tls or {})
        self.api_timeout = api_timeout
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.metrics_path = metrics_path
        self._factory = client_factory
        self._client: docker.DockerClient | None = None
        self._lock = asyncio.Lock()
        self._usage: dict[str, Usage] = {}  # container name → its latest stats read
        self._usage_task: asyncio.Task[None] | None = None

    @classmethod
    def from_spec(cls, spec: ReleaseSpec) -> DockerPlatform:
        """Build from `[platform]` (kind "docker"); bad option values raise DockerPlatformError."""
        o = spec.platform.options
        base = Path(spec.path).parent if spec.path and Path(spec.path).exists() else Path.cwd()
        try:
            ready = parse_duration(o.get("ready_timeout", 20.0))
            api = parse_duration(o.get("api_timeout", 10.0))
            stop = int(parse_duration(o.get("stop_timeout", 5)))
            health = _healthcheck(o.get("healthcheck") or {})
        except ValueError as exc:
            raise DockerPlatformError(f"[platform] of {spec.path}: {exc}") from exc
        template = Template(
            image=str(o.get("image", "")),
            images=dict(o.get("images") or {}),
            command=tuple(o.get("command") or ()),
            env={str(k): str(v) for k, v in (o.get("env") or {}).items()},
            labels={str(k): str(v) for k, v in (o.get("labels") or {}).items()},
            network_mode=str(o.get("network_mode", "host")),
            port=o.get("port"),
            base_port=o.get("base_port"),
            volumes=_volumes(o.get("volumes") or {}, base),
            healthcheck=health,
            restart=str(o.get("restart", "on-failure")),
            init=bool(o.get("init", False)),
        )
        return cls(spec.release.service, selector=spec.platform.selector,
                   version_label=spec.platform.version_label, template=template,
                   host=str(o.get("host", "")), tls=o.get("tls"), api_timeout=api,
                   ready_timeout=ready, stop_timeout=stop, metrics_path=spec.metrics.metrics_path)

    # ----------------------------------------------------------------- where the engine is

    @property
    def where(self) -> str:
        return self.host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"

    @property
    def local_engine(self) -> bool:
        return self.where.startswith(("unix://", "npipe://")) or self.where.startswith("/")

    @property
    def engine_host(self) -> str:
        """The address instances in host network mode answer on, as seen from here."""
        if self.local_engine:
            return LOOPBACK
        return urlparse(self.where.replace("tcp://", "https://", 1)).hostname or LOOPBACK

    def _connect(self) -> docker.DockerClient:
        if self._client is not None:
            return self._client
        try:
            if self._factory is not None:
                client = self._factory()
            else:
                # A fixed API version: no network call inside the constructor, so TLS settings
                # below are in place before the first request (Docker >= 19.03, Podman 3+).
                if self.host:
                    tls = tls_config(self.tls) if self.tls else False
                    client = docker.DockerClient(base_url=self.host, tls=tls, version=API_VERSION,
                                                 timeout=int(self.api_timeout))
                else:
                    client = docker.DockerClient.from_env(version=API_VERSION,
                                                          timeout=int(self.api_timeout))
                if str(client.api.base_url).startswith("https"):
                    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace the session's CA,
                    # which would silently drop the engine's CA named in the spec
                    client.api.trust_env = False
                try:
                    client.ping()
                except Exception:
                    client.close()
                    raise
        except Exception as exc:
            raise EngineUnreachable(explain(exc, self.where)) from exc
        self._client = client
        return client

    async def _call(self, fn: Callable[[], Any], what: str, limit: float | None = None) -> Any:
        """Run a blocking SDK call in a thread; any failure becomes a DockerPlatformError."""
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn),
                                          limit or self.api_timeout + 1.0)
        except EngineUnreachable as exc:
            raise DockerPlatformError(f"{what}: {exc}") from exc
        except DockerPlatformError:
            raise
        except TimeoutError as exc:
            raise DockerPlatformError(f"{what}: Docker engine at {self.where} "
                                      "did not answer in time") from exc
        except Exception as exc:
            self._forget_client(exc)
            raise DockerPlatformError(f"{what}: {explain(exc, self.where)}") from exc

    def _forget_client(self, exc: BaseException) -> None:
        """Drop the client on connection trouble so the next call reconnects (and retries)."""
        if not isinstance(exc, docker.errors.APIError) and self._client is not None:
            client, self._client = self._client, None
            with contextlib.suppress(Exception):  # a broken client may fail to close
                client.close()

    # ----------------------------------------------------------------- the port

    async def snapshot(self, versions: Sequence[str], now: float) -> PlatformSnapshot:
        """Instances per version as the engine sees them; an unreachable engine sets `error`."""
        try:
            containers = await self._call(self._list, "listing containers")
        except DockerPlatformError as exc:
            return PlatformSnapshot(at=now, error=str(exc))
        self._refresh_usage(containers)
        usage = self._usage
        groups: dict[str, list[Instance]] = {v: [] for v in versions}
        image: dict[str, str] = {}
        # No wanted count is kept anywhere in Docker: what it keeps alive is what runs, so a
        # container someone stopped or killed reads as missing and is started again.
        running: Counter[str] = Counter()
        for c in containers:
            version = c.labels.get(self.version_label, "")
            if not version:
                continue
            groups.setdefault(version, []).append(
                self._instance(c, version, usage.get(c.name, NOT_MEASURED)))
            image.setdefault(version, _image_name(c))
            if c.status in LIVE_STATES:
                running[version] += 1
        out = {v: VersionStatus(version=v, instances=tuple(sorted(groups[v], key=lambda i: i.id)),
                                image=image.get(v, ""), running=running[v])
               for v in groups}
        return PlatformSnapshot(at=now, versions=frozen_map(out))

    async def scale(self, version: str, replicas: int) -> None:
        """Make exactly `replicas` live containers of `version`: idempotent, waits for readiness
        of new ones (up to ready_timeout) so a following scale-down never leaves a gap."""
        if replicas < 0:
            raise DockerPlatformError(f"scale {version}: replicas must not be negative ({replicas})")
        async with self._lock:
            started = await self._call(lambda: self._scale(version, replicas),
                                       f"scale {version} to {replicas}",
                                       limit=self.api_timeout * (replicas + 3) + 30.0)
            if started and self.ready_timeout > 0:
                await self._wait_ready(version, started)

    async def close(self) -> None:
        """Drop the connection. Containers keep running: the release outlives the dashboard."""
        task, self._usage_task = self._usage_task, None
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._client is not None:
            client, self._client = self._client, None
            await asyncio.to_thread(client.close)

    # ----------------------------------------------------------------- extras

    async def cleanup(self) -> int:
        """Remove every container releasedeck started for this service; returns how many."""
        def work() -> int:
            client = self._connect()
            found = client.containers.list(
                all=True, filters={"label": [f"{MANAGED}=true", f"{SERVICE}={self.service}"]})
            for c in found:
                c.remove(force=True)
            return len(found)
        return int(await self._call(work, "removing releasedeck containers"))

    async def containers(self, version: str | None = None) -> list[Container]:
        """The raw containers of the release (optionally one version), for tools and tests."""
        found = await self._call(self._list, "listing containers")
        return [c for c in found if version is None or c.labels.get(self.version_label) == version]

    # ----------------------------------------------------------------- blocking parts

    def _filters(self) -> dict[str, Any]:
        labels = [k if v is None else f"{k}={v}" for k, v in self.selector.items()]
        return {"label": [*labels, self.version_label]}

    def _list(self) -> list[Container]:
        return list(self._connect().containers.list(all=True, filters=self._filters()))

    def _refresh_usage(self, containers: Sequence[Container]) -> None:
        """Start reading the running containers' stats unless a read is still under way.

        A stats read waits about a second for the engine's second CPU sample (the one-shot
        form needs API 1.41, newer than the 1.40 spoken here), so it runs beside the snapshots:
        each snapshot shows the latest finished read, a second or two old, never waits for one.
        """
        task, loop = self._usage_task, asyncio.get_running_loop()
        if task is not None and not task.done() and task.get_loop() is loop:
            return
        running = [c for c in containers if c.status == "running"]
        self._usage_task = loop.create_task(self._read_usage(running))

    async def _read_usage(self, running: Sequence[Container]) -> None:
        def read(c: Container) -> Callable[[], Any]:
            return lambda: c.stats(stream=False)

        answers = await asyncio.gather(
            *(self._call(read(c), f"reading stats of {c.name}", self.api_timeout + 3.0)
              for c in running), return_exceptions=True)
        self._usage = {c.name: container_usage(answer) for c, answer in zip(running, answers, strict=True)
                       if isinstance(answer, Mapping)}

    def _instance(self, c: Container, version: str, usage: Usage = NOT_MEASURED) -> Instance:
        state = c.attrs.get("State", {})
        status = str(state.get("Status") or c.status)
        health = (state.get("Health") or {}).get("Status")
        ready = status == "running" and (health is None or health == "healthy")
        label = status if health is None or status != "running" else f"running ({health})"
        if status == "exited":
            label = f"exited({state.get('ExitCode', '?')})"
        address = self._address(c)
        return Instance(
            id=c.name, version=version, ready=ready, address=address, state=label,
            restarts=int(c.attrs.get("RestartCount") or 0), image=_image_name(c),
            metrics_url=f"http://{address}{self.metrics_path}" if address else "",
            cpu=usage.cpu, memory=usage.memory, digest=str(c.attrs.get("Image") or ""))

    def _address(self, c: Container) -> str:
        port = c.labels.get(PORT)
        mode = c.attrs.get("HostConfig", {}).get("NetworkMode", "")
        if mode == "host":
            port = port or (str(self.template.port) if self.template.port else None)
            return f"{self.engine_host}:{port}" if port else ""
        ports = (c.attrs.get("NetworkSettings") or {}).get("Ports") or {}
        if self.template.port:
            bound = ports.get(f"{self.template.port}/tcp") or []
            if bound:
                ip = bound[0].get("HostIp") or ""
                ip = self.engine_host if ip in ("", "0.0.0.0", "::") else ip
                return f"{ip}:{bound[0].get('HostPort')}"
        return ""

    def _scale(self, version: str, replicas: int) -> list[str]:
        client = self._connect()
        mine = [c for c in self._list() if c.labels.get(self.version_label) == version]
        live = [c for c in mine if c.status in LIVE_STATES]
        for c in mine:  # crashed or never-started leftovers of ours make room for fresh ones
            if c.status not in LIVE_STATES and c.labels.get(MANAGED) == "true":
                c.remove(force=True)
        started: list[str] = []
        if len(live) < replicas:
            used = {int(c.labels.get(INDEX, "0")) for c in live if c.labels.get(INDEX, "").isdigit()}
            ports = {int(c.labels[PORT]) for c in self._list() if c.labels.get(PORT, "").isdigit()
                     and c.status in LIVE_STATES}
            for _ in range(replicas - len(live)):
                index = next(i for i in range(1, 10_000) if i not in used)
                used.add(index)
                container = self._start(client, version, index, ports)
                started.append(container.name)
        elif len(live) > replicas:
            def order(c: Container) -> tuple[int, int, int]:
                ready = self._instance(c, version).ready
                managed = c.labels.get(MANAGED) == "true"
                index = int(c.labels.get(INDEX, "0") or 0)
                return (ready, not managed, -index)  # unready, ours, newest go first
            for c in sorted(live, key=order)[: len(live) - replicas]:
                c.stop(timeout=self.stop_timeout)
                if c.labels.get(MANAGED) == "true":
                    c.remove(force=True)
        return started

    def _start(self, client: docker.DockerClient, version: str, index: int,
               taken: set[int]) -> Container:
        t = self.template
        image = t.image_for(version)
        if not image:
            raise DockerPlatformError(
                f"no image for {version}: set [platform] images.{version} (or image = \"...:{{version}}\")")
        port = self._pick_port(version, index, taken)
        if port is not None:
            taken.add(port)
        values = {"service": self.service, "version": version, "index": index,
                  "port": port if port is not None else "", "host": self.engine_host}
        name = f"releasedeck-{self.service}-{version}-{index}"
        labels = {**{k: v or "" for k, v in self.selector.items()}, **_fmt_map(t.labels, values),
                  self.version_label: version, MANAGED: "true", SERVICE: self.service, VERSION: version,
                  INDEX: str(index)}
        if port is not None:
            labels[PORT] = str(port)
        kwargs: dict[str, Any] = {
            "name": name, "labels": labels, "environment": _fmt_map(t.env, values),
            "network_mode": t.network_mode, "init": t.init or None, **self._run_options(values),
        }
        self._clear_leftover(client, name, version)
        try:
            container = client.containers.create(image, **kwargs)
        except docker.errors.ImageNotFound as exc:
            raise DockerPlatformError(
                f"scale {version}: image {image!r} not found on the engine at {self.where} "
                "(build, load or pull it first)") from exc
        container.start()
        return container

    def _run_options(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The template's optional container settings, only those it sets (Docker's defaults
        otherwise), with `{service}`/`{version}`/`{index}`/`{port}` filled in."""
        t = self.template
        kwargs: dict[str, Any] = {}
        if t.command:
            kwargs["command"] = [_fmt(part, values) for part in t.command]
        if t.volumes:
            kwargs["volumes"] = t.volumes
        if t.healthcheck:
            hc = dict(t.healthcheck)
            hc["test"] = [_fmt(str(x), values) for x in hc.get("test", [])]
            kwargs["healthcheck"] = docker.types.Healthcheck(**hc)
        if t.restart and t.restart != "no":
            kwargs["restart_policy"] = {"Name": t.restart}
        if t.network_mode != "host" and t.port:
            kwargs["ports"] = {f"{t.port}/tcp": (LOOPBACK, None) if self.local_engine else None}
        return kwargs

    @staticmethod
    def _clear_leftover(client: docker.DockerClient, name: str, version: str) -> None:
        """A stopped leftover of ours from a crashed run makes room for the new instance;
        anything else under that name is someone's container: never touched, refused."""
        try:
            existing = client.containers.get(name)
        except docker.errors.NotFound:
            return
        if existing.labels.get(MANAGED) != "true" or existing.status in LIVE_STATES:
            raise DockerPlatformError(
                f"scale {version}: a container named {name} already exists and is not a "
                "stopped releasedeck leftover; remove or rename it")
        existing.remove(force=True)

    def _pick_port(self, version: str, index: int, taken: set[int]) -> int | None:
        """Host network: a per-version base port is a fixed slot (instance n on base + n - 1,
        the address a static HAProxy server line names); a shared base port hands out the
        first free one; no base port asks the kernel (local engines only)."""
        t = self.template
        if t.network_mode != "host":
            return None
        if isinstance(t.base_port, Mapping):
            if version not in t.base_port:
                raise DockerPlatformError(f"no port for {version}: add it to [platform] base_port")
            port = t.base_port[version] + index - 1
            if port in taken or (self.local_engine and not _bindable(port)):
                raise DockerPlatformError(f"port {port} for {version} instance {index} is in use "
                                          "on 127.0.0.1 (base_port + index - 1)")
            return port
        base = t.base_port
        if base is None:
            if t.port is not None:
                return t.port  # one instance per host, listening where the image says
            if not self.local_engine:
                raise DockerPlatformError("host network on a remote engine needs [platform] base_port")
            with socket.socket() as sock:
                sock.bind((LOOPBACK, 0))
                return int(sock.getsockname()[1])
        for port in range(base, min(base + 1000, 65536)):
            if port not in taken and (not self.local_engine or _bindable(port)):
                return port
        raise DockerPlatformError(f"no free port for {version} from base_port {base}")

    async def _wait_ready(self, version: str, names: list[str]) -> None:
        """Poll until every new container is ready. Without a healthcheck "ready" is only
        "running", so it must also stay up (same restart count) for SETTLE seconds: a process
        that dies at once would otherwise count as ready for a moment."""
        deadline = time.monotonic() + self.ready_timeout
        settle = 0.0 if self.template.healthcheck else SETTLE
        since: dict[str, tuple[float, int]] = {}
        while True:
            found = {c.name: c for c in await self._call(self._list, f"waiting for {version}")}
            pending = []
            now = time.monotonic()
            for name in names:
                c = found.get(name)
                if c is None:
                    raise DockerPlatformError(f"scale {version}: container {name} disappeared")
                inst = self._instance(c, version)
                if c.status == "exited" and self.template.restart in ("no", ""):
                    raise DockerPlatformError(f"scale {version}: {name} {inst.state}: "
                                              f"{await self._last_log(c)}")
                first = since.get(name)
                if not inst.ready or (first is not None and first[1] != inst.restarts):
                    since.pop(name, None)
                    pending.append((c, inst))
                    continue
                if first is None:
                    since[name] = first = (now, inst.restarts)
                if now - first[0] < settle:
                    pending.append((c, inst))
            if not pending:
                return
            if time.monotonic() > deadline:
                c, inst = pending[0]
                raise DockerPlatformError(
                    f"scale {version}: {len(names) - len(pending)}/{len(names)} new instance(s) "
                    f"ready after {self.ready_timeout:g}s; {c.name} is {inst.state}: "
                    f"{await self._last_log(c)}")
            await asyncio.sleep(0.1)

    async def _last_log(self, c: Container) -> str:
        try:
            raw = await asyncio.wait_for(asyncio.to_thread(c.logs, tail=3), self.api_timeout)
        except Exception:  # the log is a courtesy in an error message
            return "(no log)"
        lines = [line for line in raw.decode(errors="replace").splitlines() if line.strip()]
        return lines[-1].strip() if lines else "(empty log)"


def _image_name(c: Container) -> str:
    return str((c.attrs.get("Config") or {}).get("Image") or "")


def _fmt(text: str, values: Mapping[str, Any]) -> str:
    try:
        return text.format_map(values)
    except (KeyError, IndexError, ValueError) as exc:
        raise DockerPlatformError(f"[platform]: bad placeholder {exc} in {text!r} "
                                  f"(known: {', '.join(sorted(values))})") from exc


def _fmt_map(data: Mapping[str, str], values: Mapping[str, Any]) -> dict[str, str]:
    return {k: _fmt(str(v), values) for k, v in data.items()}


def _bindable(port: int) -> bool:
    """Free for a server to listen on: SO_REUSEADDR like servers use, so connections of a
    stopped instance lingering in TIME_WAIT do not count as busy."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _healthcheck(raw: Mapping[str, Any]) -> dict[str, Any]:
    """`{test = [...], interval = "2s", timeout = "1s", retries = 3, start_period = "1s"}` to the
    SDK's form (durations in nanoseconds)."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "test":
            if not isinstance(value, list) or not value:
                raise ValueError("healthcheck.test must be a list like [\"CMD\", \"wget\", ...]")
            out["test"] = [str(x) for x in value]
        elif key in ("interval", "timeout", "start_period"):
            out[key] = int(parse_duration(value) * 1e9)
        elif key == "retries":
            out["retries"] = int(value)
        else:
            raise ValueError(f"healthcheck.{key}: unknown key (test, interval, timeout, retries, "
                             "start_period)")
    return out


def _volumes(raw: Mapping[str, Any] | Sequence[str], base: Path) -> Mapping[str, Any] | list[str]:
    """Relative host paths ("./app") are relative to the spec file, like everything else in it."""
    def host(path: str) -> str:
        return str((base / path).resolve()) if path.startswith(".") else path
    if isinstance(raw, Mapping):
        return {host(str(k)): v for k, v in raw.items()}
    out = []
    for item in raw:
        src, sep, rest = str(item).partition(":")
        out.append(host(src) + sep + rest)
    return out
