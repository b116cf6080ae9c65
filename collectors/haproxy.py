"""HAProxy as the traffic router: version percents become server weights, changed live.

Docker has no traffic weights of its own, so a release on Docker names an HAProxy backend whose
servers belong to versions (`[router] servers = {v1 = ["v1a"], v2 = ["v2a"]}`). The runtime API
(admin socket, unix or TCP) sets weights (`set weight`), drains servers of a version at 0 %
(`set server ... state drain`) and reads back what HAProxy actually does (`show stat`), so the
screen shows the routed split, not the wished one. `HAProxyStats` reads HAProxy's built-in
Prometheus exporter for per-version request and error counts when nothing else measures them.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from collectors.haproxy_cohorts import CohortMaps, maps_for, parse_show_map, update_commands
from strategies.cohorts import Route
from strategies.model import PlatformSnapshot
from strategies.reconcile import table_differences
from strategies.spec import ReleaseSpec

MAX_WEIGHT = 256
"""HAProxy server weights run 0..256; a version at 100 % gets this much in total."""

ROUTING_STATES = ("UP", "no check")
"""Server statuses that receive new traffic (status text starts with one of these)."""


class HAProxyError(RuntimeError):
    """A runtime-API or exporter call failed; the message is one line for people."""


@dataclass(frozen=True)
class ServerStat:
    """One server row of `show stat`: its state, weight and cumulative counts."""

    backend: str
    server: str
    status: str
    weight: int
    requests: int  # HTTP responses, all codes
    errors: int  # 5xx responses
    sessions: int
    addr: str = ""  # "ip:port" the server points at

    @property
    def routing(self) -> bool:
        return self.status.startswith(ROUTING_STATES)


def server_weights(percents: Mapping[str, int], servers: Mapping[str, Sequence[str]]
                   ) -> dict[str, int]:
    """Spread each version's percent over its servers as HAProxy weights (0..256).

    A version with a share above zero always keeps at least weight 1 per server, so 1 % still
    routes something; versions not named in `percents` get 0.
    """
    out: dict[str, int] = {}
    for version, names in servers.items():
        share = max(0, min(100, int(percents.get(version, 0))))
        if not names:
            continue
        each = round(share * MAX_WEIGHT / 100 / len(names))
        if share > 0:
            each = max(1, each)
        for name in names:
            out[name] = min(MAX_WEIGHT, each)
    return out


def parse_stat(text: str) -> list[ServerStat]:
    """`show stat` CSV (header line starts with '# ') to server rows; FRONTEND/BACKEND skipped."""
    lines = [line for line in text.splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if line.startswith("# pxname")), None)
    if start is None:
        raise HAProxyError(f"unexpected answer to 'show stat': {text.strip()[:120]!r}")
    body = "\n".join([lines[start][2:], *lines[start + 1:]])
    out = []
    for row in csv.DictReader(io.StringIO(body)):
        if row.get("svname") in ("FRONTEND", "BACKEND"):
            continue
        codes = ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other")
        out.append(ServerStat(
            backend=row.get("pxname", ""), server=row.get("svname", ""),
            status=row.get("status", ""), weight=_int(row.get("weight")),
            requests=sum(_int(row.get(c)) for c in codes), errors=_int(row.get("hrsp_5xx")),
            sessions=_int(row.get("stot")), addr=row.get("addr", "")))
    return out


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


class RuntimeAPI:
    """One command per connection on HAProxy's runtime API (non-interactive mode)."""

    def __init__(self, address: str, timeout: float = 2.0):
        self.address = address
        self.timeout = timeout

    def _target(self) -> tuple[str, str | int]:
        addr = self.address
        if addr.startswith("unix:"):
            return "unix", addr[5:].removeprefix("//")
        if addr.startswith(("/", ".")) or ("://" not in addr and ":" not in addr):
            return "unix", addr
        host, _, port = addr.removeprefix("tcp://").rpartition(":")
        if not port.isdigit():
            raise HAProxyError(f"haproxy runtime API address {addr!r}: use a socket path or host:port")
        return host or "127.0.0.1", int(port)

    async def run(self, command: str) -> str:
        """Send one command line (several may be joined with ';') and return the answer."""
        host, port = self._target()

        async def talk() -> str:
            if host == "unix":
                reader, writer = await asyncio.open_unix_connection(str(port))
            else:
                reader, writer = await asyncio.open_connection(host, int(port))
            try:
                writer.write(command.encode() + b"\n")
                await writer.drain()
                return (await reader.read()).decode(errors="replace")
            finally:
                writer.close()
                await writer.wait_closed()

        try:
            return await asyncio.wait_for(talk(), self.timeout)
        except TimeoutError as exc:
            raise HAProxyError(f"haproxy runtime API at {self.address}: no answer within "
                               f"{self.timeout:g}s") from exc
        except PermissionError as exc:
            raise HAProxyError(f"haproxy runtime API at {self.address}: permission denied "
                               "(check the stats socket's mode/user)") from exc
        except FileNotFoundError as exc:
            raise HAProxyError(f"haproxy runtime API at {self.address}: no socket there "
                               "(is haproxy running with 'stats socket ... level admin'?)") from exc
        except OSError as exc:
            raise HAProxyError(f"haproxy runtime API at {self.address}: "
                               f"{exc.strerror or exc}") from exc


class HAProxyRouter:
    """`strategies.ports.TrafficRouter` over one HAProxy backend (kind "haproxy")."""

    kind = "haproxy"

    def __init__(self, socket: str, backend: str, servers: Mapping[str, Sequence[str]], *,
                 timeout: float = 2.0, sync: bool = False, cohorts: CohortMaps | None = None,
                 version_backends: Mapping[str, str] | None = None):
        if not servers:
            raise HAProxyError("[router] servers: name the HAProxy servers of each version, "
                               'e.g. servers = {v1 = ["v1a"], v2 = ["v2a"]}')
        self.api = RuntimeAPI(socket, timeout)
        self.backend = backend
        self.servers = {v: tuple(names) for v, names in servers.items()}
        self._owner = {s: v for v, names in self.servers.items() for s in names}
        self.sync = sync
        self.cohorts = cohorts  # map files for rings and sticky users (None: weights only)
        self.version_backends = dict(version_backends or {})
        self._route: Route | None = None
        self._weights: dict[str, int] | None = None

    @classmethod
    def from_spec(cls, spec: ReleaseSpec) -> HAProxyRouter:
        o = spec.router.options
        socket = o.get("socket")
        if not isinstance(socket, str) or not socket:
            raise HAProxyError(f"{spec.path}: router.socket: the HAProxy runtime API address is "
                               "required (a unix socket path or host:port)")
        if socket.startswith(".") or (not socket.startswith(("/", "unix:", "tcp://"))
                                      and ":" not in socket):
            socket = str((Path(spec.path).parent / socket).resolve())  # relative to the spec
        servers: dict[str, list[str]] = {}
        for version, names in dict(o.get("servers") or {}).items():
            servers[str(version)] = [names] if isinstance(names, str) else [str(n) for n in names]
        backend = str(o.get("backend") or spec.release.service)
        cohorts = None
        maps = o.get("maps")
        if isinstance(maps, str) and maps:
            directory = str((Path(spec.path).parent / maps).resolve())
            matches = [("header", s.match.header) if s.match.header else ("cookie", s.match.cookie)
                       for s in spec.strategy.steps if s.match is not None]
            cohorts = maps_for(directory, backend, matches, spec.strategy.sticky)
        return cls(socket, backend, servers, timeout=spec.metrics.timeout,
                   sync=bool(o.get("sync", False)), cohorts=cohorts,
                   version_backends={str(v): str(b)
                                     for v, b in dict(o.get("version_backends") or {}).items()})

    async def set_weights(self, weights: Mapping[str, int]) -> None:
        """Route `weights` (percent per version): receivers first, then the rest drained."""
        unknown = set(weights) - set(self.servers)
        if any(weights[v] > 0 for v in unknown):
            raise HAProxyError(f"haproxy backend {self.backend}: no servers for version(s) "
                               f"{', '.join(sorted(unknown))}; add them to [router] servers")
        target = server_weights(weights, self.servers)
        up = sorted((s for s, w in target.items() if w > 0), key=lambda s: -target[s])
        down = [s for s, w in target.items() if w == 0]
        commands = [f"set server {self.backend}/{s} state ready" for s in up]
        commands += [f"set weight {self.backend}/{s} {target[s]}" for s in up]
        commands += [f"set weight {self.backend}/{s} 0" for s in down]
        commands += [f"set server {self.backend}/{s} state drain" for s in down]
        answer = await self.api.run("; ".join(commands))
        problems = [line.strip() for line in answer.splitlines() if line.strip()]
        if problems:
            raise HAProxyError(f"haproxy backend {self.backend}: {problems[0]}")
        self._weights = {v: int(w) for v, w in weights.items()}
        if self._route is not None and self._route.sticky is not None and self.cohorts:
            await self._write_maps(sticky_only=True)  # sticky slots follow the shares

    async def set_route(self, route: Route) -> None:
        """`strategies.ports.CohortRouter`: put the cohort rules and sticky slots of `route`
        in place, each map replaced whole (prepare, add, commit)."""
        if route.mirror is not None:
            raise HAProxyError("haproxy does not mirror requests: a dark step needs "
                               '[router] kind = "local" or "nginx"')
        if self.cohorts is None or not self.version_backends:
            raise HAProxyError(f"haproxy backend {self.backend}: cohorts and sticky users need "
                               "[router] maps and version_backends (see README, Docker cohorts)")
        missing = {rule.version for rule in route.cohorts} - set(self.version_backends)
        if missing:
            raise HAProxyError(f"haproxy: no version_backends entry for {', '.join(sorted(missing))}")
        self._route = route
        await self._write_maps()

    async def maps(self) -> dict[str, dict[str, str]]:
        """What HAProxy routes by right now: each cohort map's entries (key → backend)."""
        if self.cohorts is None:
            return {}
        out = {}
        for path in self.cohorts.paths():
            answer = await self.api.run(f"show map {path}")
            self._map_answer(path, answer if not answer.startswith("0x") else "")
            out[path] = parse_show_map(answer)
        return out

    async def route_differences(self, route: Route, weights: Mapping[str, int] | None
                                ) -> tuple[str, ...]:
        """`strategies.ports.RouteReadback`: each cohort map HAProxy holds against the maps
        `route` needs (one `show map` per map, nothing written). The sticky map is compared only
        when `weights` are known; a map the route wants empty (a closed ring) must exist and be
        empty: one HAProxy lost (a restart onto a config without it) is named as missing."""
        if self.cohorts is None or not self.version_backends:
            wanted = route.cohorts or route.sticky is not None
            return ("haproxy has no [router] maps and version_backends for cohorts",) if wanted else ()
        missing = {rule.version for rule in route.cohorts} - set(self.version_backends)
        if missing:
            return (f"haproxy: no version_backends entry for {', '.join(sorted(missing))}",)
        known = {v: float(w) for v, w in weights.items()} if weights is not None else None
        desired = self.cohorts.contents(route, known, self.version_backends)
        observed = {}
        for path in desired:
            observed[PurePosixPath(path).name] = await self._read_map(path)
        return table_differences({PurePosixPath(p).name: e for p, e in desired.items()}, observed)

    async def _read_map(self, path: str) -> dict[str, str] | None:
        """One map's entries as HAProxy holds them; None when HAProxy has no such map."""
        answer = await self.api.run(f"show map {path}")
        if "Unknown map" in answer:
            return None
        self._map_answer(path, answer if not answer.startswith("0x") else "")
        return parse_show_map(answer)

    async def _write_maps(self, *, sticky_only: bool = False) -> None:
        assert self.cohorts is not None and self._route is not None
        weights: dict[str, float] | None = dict(self._weights) if self._weights else None
        if weights is None and self._route.sticky is not None:
            weights = {v: round(w) for v, w in (await self.weights()).items()}
        contents = self.cohorts.contents(self._route, weights, self.version_backends)
        for path, entries in contents.items():
            if sticky_only and path != self.cohorts.sticky_path:
                continue
            answer = await self.api.run(f"prepare map {path}")
            self._map_answer(path, answer if "version created" not in answer else "")
            version = answer.strip().rpartition(":")[2].strip()
            for line in update_commands(path, version, entries):
                self._map_answer(path, await self.api.run(line))

    def _map_answer(self, path: str, answer: str) -> None:
        problems = [line.strip() for line in answer.splitlines() if line.strip()]
        if not problems:
            return
        if "Unknown map" in problems[0]:
            raise HAProxyError(f"haproxy has no map {path}: add the frontend lines "
                               "`releasedeck check` prints to haproxy.cfg and create the file")
        raise HAProxyError(f"haproxy map {path}: {problems[0]}")

    async def weights(self) -> Mapping[str, float]:
        """Percent of new traffic each version gets right now, from live server states."""
        rows = await self.stats()
        live = {v: 0 for v in self.servers}
        for row in rows:
            version = self._owner.get(row.server)
            if version is not None and row.routing:
                live[version] += row.weight
        total = sum(live.values())
        return {v: (100.0 * w / total if total else 0.0) for v, w in live.items()}

    async def stats(self) -> list[ServerStat]:
        """Server rows of our backend (the servers named in the spec must all exist)."""
        rows = [r for r in parse_stat(await self.api.run("show stat")) if r.backend == self.backend]
        if not rows:
            raise HAProxyError(f"haproxy at {self.api.address}: no backend {self.backend!r}")
        missing = set(self._owner) - {r.server for r in rows}
        if missing:
            raise HAProxyError(f"haproxy backend {self.backend}: no server(s) "
                               f"{', '.join(sorted(missing))}")
        return rows

    async def sync_backends(self, snapshot: PlatformSnapshot) -> None:
        """With `[router] sync = true`: point each version's server slots at its instances
        (n-th instance by id → n-th server), so ports may be chosen at start-up. Slots without
        an instance are left alone (their health check marks them down)."""
        if not self.sync or snapshot.error:
            return
        await self.stats()  # our backend and its servers exist
        rows = parse_stat(await self.api.run("show stat"))
        current = {(r.backend, r.server): r.addr for r in rows}
        slots = {v: [(self.backend, name) for name in names] for v, names in self.servers.items()}
        for version, backend in self.version_backends.items():  # cohort backends, same order
            slots.setdefault(version, []).extend((r.backend, r.server) for r in rows
                                                 if r.backend == backend)
        commands = []
        for version, names in slots.items():
            instances = sorted((i for i in snapshot.version(version).instances if i.address),
                               key=lambda i: i.id)
            count = len(self.servers.get(version, ()))
            pairs = list(zip(names[:count], instances, strict=False))
            pairs += list(zip(names[count:], instances, strict=False))
            for (backend, name), inst in pairs:
                if current.get((backend, name)) != inst.address:
                    host, _, port = inst.address.rpartition(":")
                    commands.append(f"set server {backend}/{name} addr {host} port {port}")
        if commands:
            answer = await self.api.run("; ".join(commands))
            problems = [line.strip() for line in answer.splitlines()
                        if line.strip() and "changed from" not in line and "no need" not in line]
            if problems:
                raise HAProxyError(f"haproxy backend {self.backend}: {problems[0]}")

    async def set_state(self, version: str, state: str) -> None:
        """ready | drain | maint for every server of one version (e.g. drain before a stop)."""
        if state not in ("ready", "drain", "maint"):
            raise HAProxyError(f"server state must be ready, drain or maint, got {state!r}")
        names = self.servers.get(version, ())
        answer = await self.api.run("; ".join(
            f"set server {self.backend}/{s} state {state}" for s in names))
        if answer.strip():
            raise HAProxyError(f"haproxy backend {self.backend}: {answer.strip().splitlines()[0]}")

    async def close(self) -> None:
        """Nothing held open: each command uses its own short connection."""
