"""A real Unleash server for tests: its own PostgreSQL cluster in a temp dir, both on 127.0.0.1.

    with UnleashServer(tmp_path) as server:
        server.url, server.admin_token
        server.evaluate("new-checkout", users)   # Unleash's own per-user evaluation

PostgreSQL (Debian's `postgresql`) refuses to run as root, so as root both `initdb` and
`postgres` run as the `postgres` system user, in a directory that user owns. Unleash (npm
`unleash-server`, installed by scripts/test into ~/.cache/releasedeck/unleash) gets an admin
token at start-up through INIT_ADMIN_API_TOKENS. `find_unleash()` says in one line why a test
must skip when something is missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import httpx

from tests.support.ports import free_port

UNLEASH_DIR = Path(os.environ.get("RELEASEDECK_UNLEASH_DIR",
                                  Path.home() / ".cache" / "releasedeck" / "unleash"))
SERVER_JS = UNLEASH_DIR / "node_modules" / "unleash-server" / "dist" / "server.js"
ADMIN_TOKEN = "*:*.releasedeck-test-admin-token"
START_TIMEOUT = 240.0  # migrations on a fresh database take ~30 s on an idle machine


def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


def find_unleash() -> str | None:
    """None when node, unleash-server and PostgreSQL are all here; else why not (one line)."""
    if shutil.which("node") is None:
        return "node is not on PATH (Debian/NodeSource nodejs)"
    if not SERVER_JS.exists():
        return f"unleash-server is not installed in {UNLEASH_DIR} (scripts/test installs it)"
    if _pg_bin() is None:
        return "PostgreSQL's initdb was not found (Debian package postgresql)"
    return None


class UnleashServer:
    """PostgreSQL + Unleash, started together and always stopped together."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.pg_port = free_port()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_token = ADMIN_TOKEN
        self._procs: list[subprocess.Popen[bytes]] = []
        self._as_postgres: list[str] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> str:
        pg = _pg_bin()
        assert pg is not None, find_unleash()
        self.workdir.mkdir(parents=True, exist_ok=True)
        data = self.workdir / "pgdata"
        if self._as_postgres:
            os.chmod(self.workdir, 0o777)
            shutil.chown(self.workdir, "postgres")
        self._run([*self._as_postgres, str(pg / "initdb"), "-D", str(data), "-U", "unleash",
                   "--auth=trust", "-E", "UTF8"])
        self._spawn([*self._as_postgres, str(pg / "postgres"), "-D", str(data), "-p", str(self.pg_port),
                     "-k", str(self.workdir), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                    "postgres.log")
        self._wait(lambda: self._run([str(pg / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.pg_port)],
                                     check=False) == 0, "PostgreSQL", 60.0)
        self._run([*self._as_postgres, str(pg / "createdb"), "-h", "127.0.0.1", "-p", str(self.pg_port),
                   "-U", "unleash", "unleash"])
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.workdir), "TZ": "UTC",
            "DATABASE_URL": f"postgres://unleash@127.0.0.1:{self.pg_port}/unleash",
            "DATABASE_SSL": "false", "HTTP_HOST": "127.0.0.1", "HTTP_PORT": str(self.port),
            "INIT_ADMIN_API_TOKENS": ADMIN_TOKEN, "CHECK_VERSION": "false",
            "SEND_TELEMETRY": "false", "LOG_LEVEL": "warn",
        }
        self._spawn(["node", str(SERVER_JS)], "unleash.log", env=env)
        self._wait(self._healthy, "Unleash", START_TIMEOUT)
        return self.url

    def stop(self) -> None:
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        self._procs.clear()

    def __enter__(self) -> UnleashServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ----------------------------------------------------------------- asking it

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, trust_env=False, timeout=30.0,
                            headers={"Authorization": self.admin_token})

    def evaluate(self, flag: str, users: Sequence[str], environment: str = "development") -> set[str]:
        """The users for whom Unleash itself says the flag is on (its advanced playground)."""
        enabled: set[str] = set()
        with self.admin() as client:
            for start in range(0, len(users), 1000):
                chunk = users[start:start + 1000]
                answer = client.post("/api/admin/playground/advanced", json={
                    "projects": "*", "environments": [environment],
                    "context": {"appName": "releasedeck-test", "userId": ",".join(chunk)}})
                answer.raise_for_status()
                for feature in answer.json()["features"]:
                    if feature["name"] != flag:
                        continue
                    for result in feature["environments"][environment]:
                        if result["isEnabled"]:
                            enabled.add(result["context"]["userId"])
        return enabled

    # ----------------------------------------------------------------- inside

    def _healthy(self) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{self.url}/health", timeout=2.0, trust_env=False).status_code == 200
        return False

    def _run(self, argv: list[str], *, check: bool = True) -> int:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False,
                              cwd=self.workdir)
        if check and done.returncode != 0:
            raise RuntimeError(f"{Path(argv[len(self._as_postgres)]).name} failed: "
                               f"{(done.stderr or done.stdout).strip()[-400:]}")
        return done.returncode

    def _spawn(self, argv: list[str], log: str, env: dict[str, str] | None = None) -> None:
        with open(self.workdir / log, "ab") as sink:
            self._procs.append(subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT,
                                                cwd=self.workdir, env=env))

    def _wait(self, ready, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            for proc in self._procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{what} exited with {proc.returncode}: {self._tail()}")
            time.sleep(0.5)
        raise RuntimeError(f"{what} not ready after {timeout:g}s: {self._tail()}")

    def _tail(self) -> str:
        texts = []
        for name in ("postgres.log", "unleash.log"):
            path = self.workdir / name
            if path.exists():
                texts.append(f"{name}: " + " | ".join(path.read_text(errors="replace").splitlines()[-3:]))
        return "; ".join(texts)
