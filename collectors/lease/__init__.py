"""One driver per release: the lease a session must hold before it decides or acts.

Two kinds, one shape. Locally an OS lock (flock) on a file beside the journal: the kernel drops
it when the process dies, however it dies, so a crashed driver never blocks the next one. On
Kubernetes a `coordination.k8s.io/v1` Lease in the release's namespace, renewed while driving and
taken over only once it has expired, as controllers elect their leader. Either way the lease
names its holder (`Holder`): who drives, since when, and where their state server answers, so a
second session can say exactly how to attach instead of driving too.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol, runtime_checkable

from strategies.model import rfc3339


@dataclass(frozen=True)
class Holder:
    """Who drives a release, as written into the lease."""

    release: str
    host: str
    pid: int
    user: str
    since: float  # epoch seconds the lease was taken
    attach: str = ""  # URL of the driver's state server ("" until it listens)
    token: bool = False  # the state server asks for a token (--token-file)

    @classmethod
    def me(cls, release: str, since: float) -> Holder:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = str(os.getuid())
        return cls(release=release, host=socket.gethostname(), pid=os.getpid(), user=user,
                   since=since)

    @classmethod
    def unknown(cls, release: str) -> Holder:
        """Somebody holds the lease, but what it says about them cannot be read (their disk
        refused to write it, or they are writing it this instant)."""
        return cls(release=release, host="", pid=0, user="", since=0.0)

    @property
    def known(self) -> bool:
        return self.pid > 0

    @property
    def identity(self) -> str:
        """The Lease's holderIdentity: unique per process, readable by a person."""
        if not self.known:
            return "an unknown session"
        return f"{self.user}@{self.host}/{self.pid}"

    def describe(self) -> str:
        if not self.known:
            return self.identity
        return f"{self.identity} since {rfc3339(self.since)}"

    def attach_command(self) -> str:
        """The exact command that follows this driver (or why there is none yet)."""
        if not self.known:
            return "releasedeck attach URL, with the address that session printed"
        if not self.attach:
            return "(its state server is not listening yet; retry in a moment)"
        token = " --token-file FILE" if self.token else ""
        return f"releasedeck attach {self.attach}{token}"

    def with_attach(self, url: str, token: bool) -> Holder:
        return replace(self, attach=url, token=token)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Holder:
        return cls(release=str(data.get("release", "")), host=str(data.get("host", "?")),
                   pid=int(data.get("pid", 0)), user=str(data.get("user", "?")),
                   since=float(data.get("since", 0.0)), attach=str(data.get("attach", "")),
                   token=bool(data.get("token", False)))

    @classmethod
    def from_json(cls, text: str) -> Holder | None:
        try:
            data = json.loads(text)
            return cls.from_dict(data) if isinstance(data, dict) else None
        except (ValueError, TypeError):
            return None


class LeaseHeld(Exception):
    """Another session drives this release; `holder` says who (None if it has not said yet)."""

    def __init__(self, release: str, holder: Holder | None, where: str):
        self.release = release
        self.holder = holder
        self.where = where
        super().__init__(self.line())

    def line(self) -> str:
        if self.holder is not None and not self.holder.known:
            return (f"releasedeck: {self.release} is already driven by another session, but "
                    f"its lease {self.where} does not say who or where (its details could not "
                    "be written); attach with the address that session printed: "
                    "releasedeck attach URL")
        if self.holder is None:
            return (f"releasedeck: {self.release} is already driven by another session "
                    f"(lease {self.where}); attach with: releasedeck attach SPEC")
        return (f"releasedeck: {self.release} is already driven by {self.holder.describe()} "
                f"(lease {self.where}); attach with: {self.holder.attach_command()}")


class LeaseError(Exception):
    """The lease could not be read or taken at all (no permission, API unreachable): one line."""


@runtime_checkable
class Lease(Protocol):
    """The lease a driver holds for its whole run."""

    where: str  # a person's description: the lock file, or namespace/name of the Lease

    async def acquire(self, holder: Holder) -> None:
        """Take the lease for `holder`, or raise LeaseHeld / LeaseError."""

    async def update(self, holder: Holder) -> None:
        """Rewrite what the lease says about its holder (e.g. once the server listens)."""

    async def holder(self) -> Holder | None:
        """Who drives now (None when nobody does); reading never takes the lease."""

    def lost(self) -> str:
        """"" while the lease is ours; otherwise one line saying why it is not any more."""

    def unsaid(self) -> str:
        """"" while the lease names its holder for others to read; otherwise one line saying
        why it does not (the lease is still held: only who and where cannot be read)."""

    async def release(self) -> None: ...
