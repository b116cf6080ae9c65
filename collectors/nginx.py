"""Dark launch on Docker (or local instances) through nginx's `mirror` (router kind "nginx").

releasedeck runs its own nginx: a private prefix directory (config, pid file, logs, temp files),
listening on 127.0.0.1 only, in the foreground as a child in its own process group, never a
system service. Users are split between versions by `split_clients` on `$request_id`; a dark
step adds `mirror` to the user location, and a second `split_clients` decides which requests
the mirror location really copies to the candidate (nginx's `mirror` copies every request, so
the unmirrored share returns 204 inside nginx and never leaves it). The candidate's answers to
the copies are discarded by nginx; users are only ever answered by the upstream they were
split to.

Every change writes the whole config, tests it with `nginx -t` (a bad one is one error line and
the running config stays), reloads with SIGHUP, and returns only once the old generation's
workers have exited: readings taken after a change are the new config's.

Counts reach the gates through the instances themselves: the candidate's own counters are its
shadow traffic (nothing else reaches it in the dark), so the `scrape` and `prometheus` sources
need nothing new.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from collectors.local.reaper import exit_words
from strategies.cohorts import Route
from strategies.model import PlatformSnapshot
from strategies.spec import ReleaseSpec

MIRROR_PATH = "/_releasedeck_mirror"
CHANGE_TIMEOUT = 20.0  # seconds for a reload's old workers to finish their requests and exit
RESPAWN_GRACE = 1.0  # seconds a live master has to replace a killed worker before it is "down"


class NginxError(RuntimeError):
    """An nginx router call failed; the message is one line meant for people."""


def upstream_name(version: str) -> str:
    """nginx names an upstream with letters, digits and underscores only."""
    return "rd_" + re.sub(r"[^A-Za-z0-9_]", "_", version)


def _split(variable: str, key: str, shares: Sequence[tuple[float, str]], rest: str) -> list[str]:
    """A `split_clients` block: each (percent, value) in order, then `* rest`."""
    lines = [f'    split_clients "{key}" {variable} {{']
    lines += [f"        {percent:g}% {value};" for percent, value in shares if percent > 0]
    return [*lines, f"        * {rest};", "    }"]


def nginx_config(port: int, backends: Mapping[str, Sequence[str]], weights: Mapping[str, int],
                 mirror: tuple[str, float] | None, *, user: str = "") -> str:
    """The whole nginx.conf for a prefix directory: paths are relative to `nginx -p PREFIX`.

    Weights are split in name order (the last version with weight takes the remainder, so the
    shares always add up to 100 %); `mirror` is (version, percent) or None (no mirror at all).
    """
    live = sorted((v, w) for v, w in weights.items() if w > 0)
    if not live:
        raise NginxError("nginx: no version has a weight above 0")
    lines = ([f"user {user};"] if user else []) + [
        "worker_processes 1;", "worker_shutdown_timeout 10s;", "pid nginx.pid;", "error_log logs/error.log warn;",
        "events { worker_connections 512; }", "http {",
        "    log_format rd '$msec $upstream_addr $status $request_time';",
        "    access_log logs/access.log rd;",
        "    client_body_temp_path temp/body; proxy_temp_path temp/proxy;",
        "    fastcgi_temp_path temp/fastcgi; uwsgi_temp_path temp/uwsgi; scgi_temp_path temp/scgi;",
        "    proxy_connect_timeout 2s; proxy_read_timeout 10s;"]
    for version in sorted(set(backends) | set(weights) | ({mirror[0]} if mirror else set())):
        servers = [f"        server {address};" for address in backends.get(version, ())]
        lines += [f"    upstream {upstream_name(version)} {{",
                  *(servers or ["        server 127.0.0.1:9 down;"]), "    }"]
    lines += _split("$rd_upstream", "${request_id}",
                    [(w, upstream_name(v)) for v, w in live[:-1]], upstream_name(live[-1][0]))
    if mirror:
        lines += _split("$rd_mirror", "${request_id}mirror", [(mirror[1], "1")], '""')
    lines += [f"    server {{ listen 127.0.0.1:{port}; server_tokens off;", "        location / {"]
    if mirror:
        lines += [f"            mirror {MIRROR_PATH};"]
    lines += ["            proxy_pass http://$rd_upstream;", "        }"]
    if mirror:
        lines += [f"        location = {MIRROR_PATH} {{", "            internal;",
                  '            if ($rd_mirror = "") { return 204; }',
                  "            proxy_set_header X-Releasedeck-Mirror 1;",
                  f"            proxy_pass http://{upstream_name(mirror[0])}$request_uri;", "        }"]
    return "\n".join(line for line in [*lines, "    }", "}"] if line) + "\n"


def mirror_in_config(text: str) -> tuple[str, float] | None:
    """(upstream, percent) the config mirrors to, as `nginx_config` writes it; None: no mirror.

    The reading of reconcile: nginx cannot be asked what it mirrors, but the config it was last
    told to load (tested, then reloaded) is ours to read back."""
    if f"mirror {MIRROR_PATH};" not in text:
        return None
    share = re.search(r'split_clients "\$\{request_id\}mirror" \$rd_mirror \{\s*([0-9.]+)% 1;', text)
    target = re.search(r"proxy_pass http://(\w+)\$request_uri;", text)
    return (target.group(1) if target else "", float(share.group(1)) if share else 0.0)


def mirror_differences(text: str | None, wanted: tuple[str, float] | None) -> tuple[str, ...]:
    """What the config's mirror lacks against `wanted` (version, percent); one line, or none."""
    if text is None:
        return ("nginx: no config written (not started)",)
    have = mirror_in_config(text)
    want = (upstream_name(wanted[0]), float(wanted[1])) if wanted is not None else None
    if have == want:
        return ()
    if want is None:
        return (f"nginx: the config mirrors {have[1]:g}% to {have[0]}, none is wanted",) \
            if have is not None else ()
    if have is None:
        return (f"nginx: the config mirrors nothing, {want[1]:g}% to {want[0]} is wanted",)
    return (f"nginx: the config mirrors {have[1]:g}% to {have[0]}, "
            f"{want[1]:g}% to {want[0]} is wanted",)


_PPID, _PGRP = 1, 2  # fields of /proc/PID/stat after the command name: state, ppid, pgrp


def _stat(pid: int | str) -> list[str]:
    """/proc/PID/stat after the command name (state first); [] for a process that is gone."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()
    except OSError:
        return []


def _processes(field: int, value: int) -> set[int]:
    """Live (not zombie) processes whose stat `field` is `value`, from /proc."""
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(entry.name)
            if len(fields) > field and fields[field] == str(value) and fields[0] != "Z":
                out.add(int(entry.name))
    return out


def _children(pid: int) -> set[int]:
    """The worker pids of master `pid` (its children, from /proc)."""
    return _processes(_PPID, pid)


def _serving(worker: int, master: int) -> bool:
    """Whether `worker` is still a live worker of `master`."""
    fields = _stat(worker)
    return len(fields) > _PPID and fields[0] != "Z" and fields[_PPID] == str(master)


class NginxRouter:
    """`TrafficRouter`, `CohortRouter` (mirror only) and `BackendSync` over releasedeck's own nginx."""

    kind = "nginx"

    def __init__(self, *, port: int, weights: Mapping[str, int],
                 backends: Mapping[str, Sequence[str]] | None = None, binary: str = "",
                 workdir: str | None = None):
        self.port = port
        self._weights = dict(weights)
        self._backends = {v: list(a) for v, a in (backends or {}).items()}
        self._static = bool(backends)  # servers given in the spec: snapshots do not replace them
        self._mirror: tuple[str, float] | None = None
        self.binary = binary or shutil.which("nginx") or ("/usr/sbin/nginx" if os.access(
            "/usr/sbin/nginx", os.X_OK) else "")
        self._workdir = workdir
        self.prefix: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = asyncio.Lock()
        self._workers: set[int] = set()  # worker pids last seen serving (checked first)
        self._workerless = False  # the last look found the master without a worker
        self._said = 0  # pid of the last dead master `down` reported
        self._found = ""  # a death a change found first (and restarted), for `down` to report
        self._start_failed = ""  # why the last start failed ("" once one succeeded)

    @classmethod
    def from_spec(cls, spec: ReleaseSpec) -> NginxRouter:
        """`[router] kind = "nginx"`, `port = 8080` (127.0.0.1), optional `servers = {v1 =
        ["127.0.0.1:8101"]}` (otherwise the platform's ready instances), `binary`."""
        o = spec.router.options
        port = o.get("port")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise NginxError(f"{spec.path}: router.port: nginx listens on 127.0.0.1:PORT; "
                             f"give a port number, got {port!r}")
        servers = {str(v): [a] if isinstance(a, str) else [str(x) for x in a]
                   for v, a in dict(o.get("servers") or {}).items()}
        return cls(port=port, weights={spec.release.baseline: 100, spec.release.candidate: 0},
                   backends=servers, binary=str(o.get("binary") or ""))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _command(self, *extra: str) -> list[str]:
        assert self.prefix is not None
        return [self.binary, "-p", f"{self.prefix}/", "-c", "nginx.conf", "-e", "logs/error.log", *extra]

    def _prepare(self) -> None:
        if not self.binary or not os.access(self.binary, os.X_OK):
            raise NginxError("nginx not found: install the Debian package nginx "
                             "(apt-get install --no-install-recommends nginx) or set [router] binary")
        if self.prefix is not None and self.prefix.is_dir():
            return  # started again after it died: same prefix, its logs go on
        self.prefix = Path(tempfile.mkdtemp(prefix="releasedeck-nginx-", dir=self._workdir))
        for sub in ("logs", "temp"):
            (self.prefix / sub).mkdir()
        if os.geteuid() == 0:  # workers run as nobody: they write only temp/
            self.prefix.chmod(0o755)
            shutil.chown(self.prefix / "temp", "nobody")

    def _write_and_test(self, config: str) -> None:
        """Write `config` and let nginx judge it; a bad one leaves the running config in place."""
        assert self.prefix is not None
        path, old = self.prefix / "nginx.conf", None
        if path.exists():
            old = path.read_text()
        path.write_text(config)
        done = subprocess.run(self._command("-t", "-q"), capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            if old is not None:
                path.write_text(old)
            said = [ln for ln in done.stderr.splitlines() if "[emerg]" in ln or "[alert]" in ln]
            raise NginxError("nginx refused the config: " + (said or done.stderr.splitlines()
                             or ["no reason given"])[0].partition("] ")[2].strip())

    def _config(self) -> str:
        return nginx_config(self.port, self._backends, self._weights, self._mirror,
                            user="nobody nogroup" if os.geteuid() == 0 else "")

    async def start(self) -> NginxRouter:
        """Start nginx (idempotent) and wait, bounded, until it answers on 127.0.0.1:PORT with a
        worker (the master's socket accepts before any worker could answer)."""
        async with self._lock:
            if self._proc is not None:
                return self
            self._prepare()
            try:
                await asyncio.to_thread(self._write_and_test, self._config())
            except BaseException as exc:
                self._start_failed = str(exc) or type(exc).__name__
                await self.close()  # nothing of a start that failed stays behind
                raise
            self._proc = subprocess.Popen(self._command("-g", "daemon off;"), start_new_session=True,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + CHANGE_TIMEOUT
            while not (await self._listening() and await asyncio.to_thread(_children, self._proc.pid)):
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    said = self._error_tail()
                    self._start_failed = f"nginx did not start on 127.0.0.1:{self.port}: {said}"
                    await self.close()
                    raise NginxError(self._start_failed)
                await asyncio.sleep(0.05)
            self._start_failed = ""
            return self

    async def down(self) -> str:
        """`strategies.ports.RouterProcess`: "" while nginx serves, else what was found: its
        master gone (its workers, if any, serve the old config and take no change), a master
        without a worker on two looks in a row, each RESPAWN_GRACE long (it replaces a killed
        one at once), or a restart that failed. Reading only; the next change (`set_weights`, `set_route`, a backend
        change) starts nginx again, which is what reconcile's re-applying does."""
        found, self._found = self._found, ""
        if found:  # a death a backend change found first and restarted: said on this look
            return found
        proc = self._proc
        if proc is None:
            return f"nginx: not running ({self._start_failed})" if self._start_failed else ""
        code = proc.poll()
        if code is not None:
            self._said = proc.pid
            return f"nginx: master pid {proc.pid} exited ({exit_words(code)})"
        if self._workers and any(_serving(w, proc.pid) for w in self._workers):
            return ""
        deadline = time.monotonic() + RESPAWN_GRACE
        while proc.poll() is None:
            workers = await asyncio.to_thread(_children, proc.pid)
            if workers:
                self._workers, self._workerless = workers, False
                return ""
            if time.monotonic() > deadline:
                # judged on the second look in a row only: a master on a loaded machine can be
                # slow to replace a worker, and nothing of its config is lost meanwhile
                seen, self._workerless = self._workerless, True
                return f"nginx: master pid {proc.pid} has no worker process" if seen else ""
            await asyncio.sleep(0.05)
        return f"nginx: master pid {proc.pid} exited ({exit_words(proc.returncode)})"

    async def _listening(self) -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        writer.close()
        return True

    def _error_tail(self) -> str:
        assert self.prefix is not None
        try:
            lines = (self.prefix / "logs" / "error.log").read_text().splitlines()
        except OSError:
            lines = []
        said = [ln for ln in lines if "[emerg]" in ln]
        return (said or lines or ["it exited without a word"])[-1].partition("] ")[2].strip()

    async def _apply(self) -> None:
        """Write, test, reload; return once the old workers have gone (the new config serves).
        An nginx whose master died is cleared away and started again with the config."""
        if self._proc is not None and self._proc.poll() is not None:
            await self._clear_dead()
        if self._proc is None:
            await self.start()
            return
        async with self._lock:
            proc = self._proc
            assert proc is not None
            await asyncio.to_thread(self._write_and_test, self._config())
            old = _children(proc.pid)
            proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + CHANGE_TIMEOUT
            while True:
                now = _children(proc.pid)
                if now and not (now & old):
                    return
                if proc.poll() is not None:
                    raise NginxError(f"nginx exited during a reload: {self._error_tail()}")
                if time.monotonic() > deadline:
                    raise NginxError(f"nginx reload did not finish in {CHANGE_TIMEOUT:g}s "
                                     "(old workers still serving)")
                await asyncio.sleep(0.05)

    async def set_weights(self, weights: Mapping[str, int]) -> None:
        """Users' shares per version (percent); the mirror, if any, stays."""
        self._weights = {v: int(w) for v, w in weights.items()}
        await self._apply()

    async def weights(self) -> Mapping[str, float]:
        return {v: float(w) for v, w in self._weights.items()}

    async def set_route(self, route: Route) -> None:
        """`CohortRouter`: nginx here only mirrors; cohorts and sticky users are refused."""
        if route.cohorts or route.sticky is not None:
            raise NginxError('nginx does no cohorts or sticky users: use [router] kind = "local" '
                             'or "haproxy" for rings and A/B')
        mirror = (route.mirror.version, route.mirror.percent) if route.mirror else None
        written = self._written()  # a config changed under us is written again, same mirror or not
        if mirror != self._mirror or (written is not None and mirror_differences(written, mirror)):
            self._mirror = mirror
            await self._apply()

    async def route_differences(self, route: Route, weights: Mapping[str, int] | None
                                ) -> tuple[str, ...]:
        """`strategies.ports.RouteReadback`: the mirror of the config nginx was last told to
        load (read back from its prefix, not from memory) against `route`'s. That is as far as
        nginx can be observed: what a worker really does is not asked."""
        if route.cohorts or route.sticky is not None:
            return ("nginx does no cohorts or sticky users",)
        mirror = (route.mirror.version, route.mirror.percent) if route.mirror else None
        return mirror_differences(await asyncio.to_thread(self._written), mirror)

    def _written(self) -> str | None:
        """The config in nginx's prefix (None before the first start)."""
        if self.prefix is None:
            return None
        try:
            return (self.prefix / "nginx.conf").read_text()
        except OSError:
            return None

    @property
    def mirror(self) -> tuple[str, float] | None:
        """(version, percent) being mirrored, or None."""
        return self._mirror

    async def sync_backends(self, snapshot: PlatformSnapshot) -> dict[str, list[str]]:
        """Point each version at its ready instances (unless the spec named servers)."""
        if self._static or snapshot.error:
            return dict(self._backends)
        table = {name: sorted(i.address for i in status.instances if i.ready and i.address)
                 for name, status in snapshot.versions.items()}
        if table != self._backends:
            self._backends = table
            await self._apply()
        return table

    async def _clear_dead(self) -> None:
        """What a dead master left: its workers, serving the old config on the port and taking
        no change, are killed with its process group (bounded wait), so a new nginx can bind."""
        async with self._lock:
            proc, self._proc = self._proc, None
            if proc is None:
                return
            if proc.pid != self._said and proc.returncode is not None:  # not looked at dead yet
                self._found = f"nginx: master pid {proc.pid} exited ({exit_words(proc.returncode)})"
            self._workers, self._workerless = set(), False
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            deadline = time.monotonic() + CHANGE_TIMEOUT
            while await asyncio.to_thread(_processes, _PGRP, proc.pid):
                if time.monotonic() > deadline:
                    raise NginxError(f"nginx: what master pid {proc.pid} left did not exit "
                                     f"in {CHANGE_TIMEOUT:g}s")
                await asyncio.sleep(0.05)

    async def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, 10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            await asyncio.to_thread(proc.wait, 10)

    async def close(self) -> None:
        """Stop nginx's whole process group and remove its prefix directory."""
        await self._stop()
        if self.prefix is not None:
            shutil.rmtree(self.prefix, ignore_errors=True)
