"""The Kubernetes lease: a `coordination.k8s.io/v1` Lease named `releasedeck-<service>`.

As controllers do for leader election: the holder renews `renewTime` every RENEW_EVERY seconds;
another session may take the Lease over only when it has not been renewed for
`leaseDurationSeconds` (DURATION, 15 s), so a driver that crashed is replaced within 15 s and a
live one never is. Writes (merge patches) carry the `resourceVersion` read just before, so two sessions racing
for an expired Lease cannot both win: the API server answers the loser 409 Conflict. Who holds
it is in `holderIdentity` (user@host/pid) and, in full, in the `releasedeck.dev/holder`
annotation (host, pid, user, since, attach address).

Expiry is judged with this machine's clock against the holder's `renewTime`; clocks more than a
few seconds apart shorten or lengthen the wait by that much (the duration is kept well above
the renew period for this reason).
"""

from __future__ import annotations

import asyncio
import contextlib
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
RENEW_EVERY = 5.0
ANNOTATION = "releasedeck.dev/holder"


def lease_name(service: str) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", service.lower()).strip("-") or "release"
    return f"releasedeck-{name}"[:63].rstrip("-")


def _micro(ts: float) -> str:
    moment = datetime.fromtimestamp(ts, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}Z"


class KubeLease:
    """A coordination.k8s.io/v1 Lease, renewed in the background while held."""

    def __init__(self, api: client.ApiClient, namespace: str, release: str, *,
                 duration: int = DURATION, renew_every: float = RENEW_EVERY,
                 clock: Callable[[], float] = time.time, timeout: float = 5.0):
        self.kube = Kube(api, namespace, timeout)
        self.namespace = namespace
        self.service = release
        self.name = lease_name(release)
        self.duration = duration
        self.renew_every = renew_every
        self.clock = clock
        self.where = f"Lease {namespace}/{self.name}"
        self._holder: Holder | None = None
        self._resource_version = ""
        self._renewer: asyncio.Task[None] | None = None
        self._lost = ""

    @classmethod
    def for_spec(cls, spec: Any, **kwargs: Any) -> KubeLease:
        try:
            api, namespace, _server = connect(spec.platform.options)
        except KubeError as exc:
            raise LeaseError(str(exc)) from None
        return cls(api, namespace, spec.release.service, **kwargs)

    # ------------------------------------------------------------------ API calls

    async def _patch(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """A merge patch carrying the resourceVersion read before it: the API server applies it
        only if nobody wrote in between (409 Conflict otherwise)."""
        return await self.kube.patch_lease(self.name, body, action)

    async def _read(self) -> dict[str, Any] | None:
        try:
            return await self.kube.get_lease(self.name)
        except KubeError as exc:
            if exc.not_found:
                return None
            raise LeaseError(str(exc)) from None

    def _body(self, holder: Holder, *, acquired: float, transitions: int) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace,
                                "labels": {"app.kubernetes.io/managed-by": "releasedeck"},
                                "annotations": {ANNOTATION: holder.to_json()}}
        if self._resource_version:
            meta["resourceVersion"] = self._resource_version
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                "spec": {"holderIdentity": holder.identity, "leaseDurationSeconds": self.duration,
                         "acquireTime": _micro(acquired), "renewTime": _micro(self.clock()),
                         "leaseTransitions": transitions}}

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
                self._resource_version = ""
                body = self._body(holder, acquired=now, transitions=0)
                stored = await self.kube.create_lease(body)
            else:
                self._resource_version = str((current.get("metadata") or {}).get("resourceVersion") or "")
                spec = current.get("spec") or {}
                taken_over = bool(spec.get("holderIdentity")) and spec.get("holderIdentity") != holder.identity
                transitions = int(spec.get("leaseTransitions") or 0) + (1 if taken_over else 0)
                body = self._body(holder, acquired=now, transitions=transitions)
                stored = await self._patch("take", body)
        except KubeError as exc:
            if exc.code == 409 or exc.reason == "AlreadyExists":
                # Another session wrote first: it holds the lease now.
                raise LeaseHeld(self.service, self._live_holder(await self._read()), self.where) from None
            raise LeaseError(str(exc)) from None
        self._holder = holder
        self._acquired = now
        self._resource_version = str((stored.get("metadata") or {}).get("resourceVersion") or "")
        self._lost = ""
        self._renewer = asyncio.create_task(self._renew_loop(), name="lease-renew")

    async def _renew(self) -> None:
        assert self._holder is not None
        current = await self._read()
        spec = (current or {}).get("spec") or {}
        if current is None or spec.get("holderIdentity") != self._holder.identity:
            self._lost = (f"lease {self.where} was taken over by "
                          f"{spec.get('holderIdentity') or 'nobody (deleted)'}")
            return
        self._resource_version = str((current.get("metadata") or {}).get("resourceVersion") or "")
        body = self._body(self._holder, acquired=self._acquired,
                          transitions=int(spec.get("leaseTransitions") or 0))
        try:
            stored = await self._patch("renew", body)
        except KubeError as exc:
            if exc.conflict:
                self._lost = f"lease {self.where} was written by someone else (409 Conflict)"
                return
            raise
        self._resource_version = str((stored.get("metadata") or {}).get("resourceVersion") or "")

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
            current = await self._read()
            spec = (current or {}).get("spec") or {}
            if current is not None and spec.get("holderIdentity") == self._holder.identity:
                patch = {"spec": {"holderIdentity": None, "renewTime": None, "acquireTime": None}}
                await self._patch("release", patch)
        self._holder = None

    def close(self) -> None:
        self.kube.close()
