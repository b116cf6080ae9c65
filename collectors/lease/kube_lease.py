"""The Kubernetes lease: a `coordination.k8s.io/v1` Lease named `releasedeck-<service>`.

As controllers do for leader election: the holder renews `renewTime` every third of the
duration (at most every RENEW_EVERY seconds); another session may take the Lease over only when
it has not been renewed for `leaseDurationSeconds` (DURATION, 15 s unless the spec's
`[platform] lease_duration` says otherwise), so a driver that crashed is replaced after that and
a live one never is. Every write is a PUT of the whole Lease as just read, carrying its
`resourceVersion`, so two sessions racing for an expired Lease cannot both win: the API server
answers the loser 409 Conflict (RBAC: `get`, `create`, `update` on `leases`, as client-go's
leader election needs). A renewal that meets someone else's write (a `kubectl annotate`) reads
again and renews on top of it, keeping what they wrote; only a Lease that names another holder
means this session lost it. Who holds it is in `holderIdentity` (user@host/pid) and, in full,
in the `releasedeck.dev/holder` annotation (host, pid, user, since, attach address).

Bodies stay plain JSON dicts with times written here (RFC 3339 with microseconds, the API
server's MicroTime): the client's own model serialised them without microseconds and the API
server refused every Lease write (400).

Expiry is judged with this machine's clock against the holder's `renewTime`; clocks more than a
few seconds apart shorten or lengthen the wait by that much (the duration is kept well above
the renew period for this reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from collectors.kubernetes.api import Kube, connect
from collectors.kubernetes.errors import KubeError
from collectors.lease import Holder, LeaseError, LeaseHeld
from strategies.model import parse_rfc3339

log = logging.getLogger("releasedeck.lease")

DURATION = 15  # seconds without renewal after which the Lease may be taken over
RENEW_EVERY = 5.0  # at most; a shorter duration renews every third of it
ANNOTATION = "releasedeck.dev/holder"
RENEW_CONFLICTS = 3  # a renewal re-reads after a 409 this often before it gives up for this round


def lease_name(service: str) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", service.lower()).strip("-") or "release"
    return f"releasedeck-{name}"[:63].rstrip("-")


def _micro(ts: float) -> str:
    moment = datetime.fromtimestamp(ts, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}Z"


def _version(lease: dict[str, Any] | None) -> str:
    return str(((lease or {}).get("metadata") or {}).get("resourceVersion") or "")


class KubeLease:
    """A coordination.k8s.io/v1 Lease, renewed in the background while held."""

    def __init__(self, api: client.ApiClient, namespace: str, release: str, *,
                 duration: int = DURATION, renew_every: float | None = None,
                 clock: Callable[[], float] = time.time, timeout: float = 5.0):
        self.kube = Kube(api, namespace, timeout)
        self.namespace = namespace
        self.service = release
        self.name = lease_name(release)
        self.duration = int(duration)
        self.renew_every = renew_every if renew_every is not None else min(RENEW_EVERY, self.duration / 3)
        self.clock = clock
        self.where = f"Lease {namespace}/{self.name}"
        self._holder: Holder | None = None
        self._acquired = 0.0
        self._renewer: asyncio.Task[None] | None = None
        self._lost = ""

    @classmethod
    def for_spec(cls, spec: Any, **kwargs: Any) -> KubeLease:
        options = spec.platform.options
        try:
            api, namespace, _server = connect(options)
        except KubeError as exc:
            raise LeaseError(str(exc)) from None
        kwargs.setdefault("duration", int(options.get("lease_duration") or DURATION))
        kwargs.setdefault("timeout", float(options.get("request_timeout") or 5.0))
        return cls(api, namespace, spec.release.service, **kwargs)

    # ------------------------------------------------------------------ API calls

    async def _read(self) -> dict[str, Any] | None:
        try:
            return await self.kube.get_lease(self.name)
        except KubeError as exc:
            if exc.not_found:
                return None
            raise LeaseError(str(exc)) from None

    def _body(self, current: dict[str, Any] | None, holder: Holder, *, acquired: float,
              transitions: int) -> dict[str, Any]:
        """The Lease as read (others' labels, annotations and fields kept), naming `holder`; its
        resourceVersion stays, so the PUT is refused (409) if anyone wrote since the read."""
        lease = copy.deepcopy(current) if current else {}
        lease["apiVersion"] = "coordination.k8s.io/v1"
        lease["kind"] = "Lease"
        meta = lease.setdefault("metadata", {})
        meta["name"] = self.name
        meta["namespace"] = self.namespace
        meta.pop("managedFields", None)
        (meta.get("labels") or meta.setdefault("labels", {}))["app.kubernetes.io/managed-by"] = "releasedeck"
        (meta.get("annotations") or meta.setdefault("annotations", {}))[ANNOTATION] = holder.to_json()
        spec = lease.get("spec") or {}
        spec.update({"holderIdentity": holder.identity, "leaseDurationSeconds": self.duration,
                     "acquireTime": _micro(acquired), "renewTime": _micro(self.clock()),
                     "leaseTransitions": transitions})
        lease["spec"] = spec
        return lease

    # ------------------------------------------------------------------ reading

    def _live_holder(self, lease: dict[str, Any] | None) -> Holder | None:
        """The holder named by a Lease that has not expired, else None."""
        if not lease:
            return None
        spec = lease.get("spec") or {}
        identity = spec.get("holderIdentity") or ""
        if not identity:
            return None
        renewed = spec.get("renewTime") or spec.get("acquireTime")
        try:
            renewed_at = parse_rfc3339(renewed) if renewed else 0.0
        except ValueError:
            renewed_at = 0.0
        duration = float(spec.get("leaseDurationSeconds") or self.duration)
        if renewed_at + duration < self.clock():
            return None
        details = ((lease.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION, "")
        holder = Holder.from_json(details) if details else None
        if holder is None or holder.identity != identity:
            user, _, rest = identity.partition("@")
            host, _, pid = rest.partition("/")
            holder = Holder(self.service, host or "?", int(pid) if pid.isdigit() else 0, user or "?",
                            renewed_at)
        return holder

    async def holder(self) -> Holder | None:
        return self._live_holder(await self._read())

    # ------------------------------------------------------------------ driving

    async def acquire(self, holder: Holder) -> None:
        current = await self._read()
        live = self._live_holder(current)
        if live is not None and live.identity != holder.identity:
            raise LeaseHeld(self.service, live, self.where)
        now = self.clock()
        try:
            if current is None:
                await self.kube.create_lease(self._body(None, holder, acquired=now, transitions=0))
            else:
                spec = current.get("spec") or {}
                taken_over = bool(spec.get("holderIdentity")) and spec.get("holderIdentity") != holder.identity
                transitions = int(spec.get("leaseTransitions") or 0) + (1 if taken_over else 0)
                body = self._body(current, holder, acquired=now, transitions=transitions)
                await self.kube.replace_lease(self.name, body, "take")
        except KubeError as exc:
            if exc.code == 409 or exc.reason == "AlreadyExists":
                # Another session wrote first: it holds the lease now.
                raise LeaseHeld(self.service, self._live_holder(await self._read()), self.where) from None
            raise LeaseError(str(exc)) from None
        self._holder = holder
        self._acquired = now
        self._lost = ""
        self._renewer = asyncio.create_task(self._renew_loop(), name="lease-renew")

    async def _renew(self) -> None:
        """Read, and if the Lease still names us, write it back renewed. A 409 means someone
        wrote between the read and the write: read again (their change is kept)."""
        assert self._holder is not None
        for _ in range(RENEW_CONFLICTS):
            current = await self._read()
            spec = (current or {}).get("spec") or {}
            if current is None or spec.get("holderIdentity") != self._holder.identity:
                self._lost = (f"lease {self.where} was taken over by "
                              f"{spec.get('holderIdentity') or 'nobody (deleted)'}")
                return
            body = self._body(current, self._holder, acquired=self._acquired,
                              transitions=int(spec.get("leaseTransitions") or 0))
            try:
                await self.kube.replace_lease(self.name, body, "renew")
                return
            except KubeError as exc:
                if not exc.conflict:
                    raise
                log.info("lease renewal met a concurrent write (409); reading again")
        raise LeaseError(f"lease {self.where}: {RENEW_CONFLICTS} renewals in a row met a concurrent write")
    async def _renew_loop(self) -> None:
        last_ok = self.clock()
        while not self._lost:
            await asyncio.sleep(self.renew_every)
            try:
                await self._renew()
                last_ok = self.clock()
            except (KubeError, LeaseError) as exc:
                log.warning("lease renewal failed: %s", exc)
                if self.clock() - last_ok >= self.duration:
                    self._lost = f"lease {self.where} could not be renewed for {self.duration}s ({exc})"

    async def update(self, holder: Holder) -> None:
        self._holder = holder
        with contextlib.suppress(KubeError, LeaseError):
            await self._renew()

    def lost(self) -> str:
        if self._holder is None:
            return "the lease is not held"
        return self._lost

    def unsaid(self) -> str:
        """Always "": a Lease names its holder in the very write that takes it."""
        return ""

    async def release(self) -> None:
        """Give the Lease up at once (empty holder), so the next driver need not wait."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._renewer
            self._renewer = None
        if self._holder is None or self._lost:
            self._holder = None
            return
        with contextlib.suppress(KubeError, LeaseError):
            for _ in range(RENEW_CONFLICTS):
                current = await self._read()
                spec = (current or {}).get("spec") or {}
                if current is None or spec.get("holderIdentity") != self._holder.identity:
                    break
                body = copy.deepcopy(current)
                body["metadata"].pop("managedFields", None)
                for key in ("holderIdentity", "renewTime", "acquireTime"):
                    body["spec"].pop(key, None)
                try:
                    await self.kube.replace_lease(self.name, body, "release")
                    break
                except KubeError as exc:
                    if not exc.conflict:
                        raise
        self._holder = None

    def close(self) -> None:
        self.kube.close()
