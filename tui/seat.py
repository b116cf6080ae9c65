"""The driver's seat: the lease a driving session holds, and the state server it runs meanwhile.

Taken before anything is started (before local instances, before the journal is read), so a
second driver refuses in one line, naming the holder and the exact attach command, and touches
nothing. The lease records where the state server answers, so `attach SPEC` and `watch
--read-only` find it. Released on the way out; a killed driver's flock goes with its process and a
Kubernetes Lease expires (collectors.lease.kube_lease.DURATION, or `[platform] lease_duration`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from collectors.lease import Holder, Lease, LeaseError, LeaseHeld
from collectors.lease.file_lease import FileLease, lock_path_for
from strategies.spec import ReleaseSpec
from tui import exitcodes
from tui.serve.server import StateServer, is_loopback, parse_address

DEFAULT_SERVE = "127.0.0.1:0"


@dataclass(frozen=True)
class ServeOptions:
    """Where the state server listens and the token it asks for (None on loopback without one)."""

    host: str = "127.0.0.1"
    port: int = 0
    token: str | None = None

    @classmethod
    def from_args(cls, serve: str | None, token_file: str | None) -> ServeOptions:
        """--serve and --token-file, checked: ValueError with one line says what is wrong."""
        host, port = parse_address(serve or DEFAULT_SERVE)
        token = read_token(token_file) if token_file else None
        if token is None and not is_loopback(host):
            raise ValueError(f"--serve {serve}: a non-loopback address needs --token-file "
                             "(anyone who can reach it could read the release)")
        return cls(host, port, token)


def read_token(path: str) -> str:
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        raise ValueError(f"--token-file {path}: cannot read ({exc.strerror or exc})") from None
    if not token or any(c.isspace() for c in token):
        raise ValueError(f"--token-file {path}: expected one token on one line")
    return token


def token_option(path: str | None) -> str | None:
    """The token of `--token-file`, or None when the option was not given (ValueError: one line
    naming the file and what is wrong with it)."""
    return read_token(path) if path else None


def lease_for(spec: ReleaseSpec, journal_path: str | Path | None = None) -> Lease:
    """A Kubernetes Lease for kind = "kubernetes", else a lock file beside the journal."""
    if spec.platform.kind == "kubernetes":
        from collectors.lease.kube_lease import KubeLease

        return KubeLease.for_spec(spec)
    return FileLease(lock_path_for(journal_path or spec.journal_path()), spec.release.service)


@dataclass
class Seat:
    lease: Lease
    server: StateServer
    holder: Holder
    code: int | None = None  # the driver's exit code, told to followers when it leaves


@contextlib.asynccontextmanager
async def driver_seat(spec: ReleaseSpec, lease: Lease, serve: ServeOptions) -> AsyncIterator[Seat]:
    """Take the lease (LeaseHeld / LeaseError propagate), start the server, record its address."""
    holder = Holder.me(spec.release.service, time.time())
    await lease.acquire(holder)
    server = StateServer(spec.release.service, token=serve.token)
    seat = Seat(lease, server, holder)
    try:
        url = await server.start(serve.host, serve.port)
        seat.holder = holder.with_attach(url, serve.token is not None)
        server.holder = seat.holder
        await lease.update(seat.holder)
        yield seat
    finally:
        await server.close(seat.code)
        await lease.release()


class SeatRefused(Exception):
    """The seat cannot be taken: one line for stderr and the exit code (4: someone else drives;
    3: the lease or the server could not be reached or opened)."""

    def __init__(self, line: str, code: int):
        super().__init__(line)
        self.line = line
        self.code = code


async def take_seat(resources: contextlib.AsyncExitStack, spec: ReleaseSpec, lease: Lease,
                    serve: ServeOptions) -> Seat:
    """Enter `driver_seat` on `resources` (released with them), turning a refusal into
    SeatRefused. Called before anything of the run starts, by `watch` and `demo` alike; the Seat
    then goes into the run as `RunOptions.seat` (tui.session)."""
    try:
        return await resources.enter_async_context(driver_seat(spec, lease, serve))
    except LeaseHeld as exc:
        raise SeatRefused(exc.line(), exitcodes.LEASE_HELD) from None
    except (LeaseError, OSError) as exc:
        raise SeatRefused(f"releasedeck: {str(exc).removeprefix('releasedeck: ')}",
                          exitcodes.UNREACHABLE) from None
