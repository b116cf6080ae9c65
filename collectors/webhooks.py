"""Webhook gates, as Flagger users know them: pre-rollout, confirm-promotion and rollout hooks.

Each hook gets a POST with a JSON body {name, service, baseline, candidate, phase, step,
metadata}; a 2xx answer means "go", anything else (another status, a timeout, a refused
connection) means "hold", and the engine holds the step on it. Which hooks run depends on where
the rollout is: pre-rollout before the first step, rollout during every step, confirm-promotion
on the last step before promotion.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from collectors.alerts.common import encode
from strategies.engine import CheckResult, Engine
from strategies.model import Phase
from strategies.spec import ReleaseSpec, WebhookSpec

Emit = Callable[..., Any]


class WebhookChecks:
    """`await checks(now)` → the CheckResults of the hooks due at the engine's current phase.

    Plug into `Driver(checks=WebhookChecks(spec, engine))`. A change of a hook's answer is
    emitted as a `webhook` event when `emit` is set (e.g. `driver.emit`).
    """

    def __init__(self, spec: ReleaseSpec, engine: Engine, *, emit: Emit | None = None):
        self.spec = spec
        self.engine = engine
        self.emit = emit
        self.calls = 0
        self.failed = 0  # failed checks so far (non-2xx, timeout, unreachable)
        self._last: dict[str, bool] = {}
        self._client: httpx.AsyncClient | None = None

    def due(self) -> list[WebhookSpec]:
        """The hooks to run now, from the engine's state."""
        state = self.engine.state
        last_step = state.step + 1 >= len(self.engine.plan.steps)
        wanted = {"pre-rollout": state.phase is Phase.PENDING,
                  "rollout": state.phase is Phase.PROGRESSING,
                  "confirm-promotion": state.phase is Phase.PROGRESSING and last_step}
        due = [hook for hook in self.spec.webhooks if wanted.get(hook.type, False)]
        return due

    async def __call__(self, now: float) -> list[CheckResult]:
        hooks = self.due()
        if not hooks:
            return []
        if self._client is None:
            self._client = httpx.AsyncClient(trust_env=False)
        return list(await asyncio.gather(*(self._run(hook) for hook in hooks)))

    async def _run(self, hook: WebhookSpec) -> CheckResult:
        state = self.engine.state
        release = self.spec.release
        body = {"name": hook.name, "service": release.service, "baseline": release.baseline,
                "candidate": release.candidate, "phase": hook.type, "step": state.step,
                "weight": state.weight, "metadata": dict(hook.metadata)}
        self.calls += 1
        assert self._client is not None
        try:
            response = await self._client.post(
                hook.url, content=encode(body), timeout=hook.timeout,
                headers={"Content-Type": "application/json"})
            ok = 200 <= response.status_code < 300
            detail = f"HTTP {response.status_code}"
        except httpx.TimeoutException:
            ok, detail = False, f"timed out after {hook.timeout:g}s"
        except httpx.HTTPError as exc:
            ok, detail = False, f"unreachable ({type(exc).__name__})"
        if not ok:
            self.failed += 1
        if self._last.get(hook.name) is not ok and self.emit is not None:
            self.emit("webhook", {"webhook": hook.name, "type": hook.type, "ok": ok,
                                  "detail": detail, "url": hook.url},
                      "info" if ok else "warning")
        self._last[hook.name] = ok
        return CheckResult(hook.name, hook.type, ok, detail if not ok else "")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
