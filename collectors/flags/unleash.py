"""The `unleash` lever: an Unleash server's flag, driven through its Admin API.

The share is the `rollout` percentage of the flag's gradual-rollout strategy (`flexibleRollout`,
sticky on `default` stickiness: userId, then sessionId, then random) in one environment; the
kill switch is the flag's enabled state in that environment. The lever creates the flag and the
strategy when they are missing, and refuses (one line) a flag whose environment has strategies
it does not drive, since it could not say what share they give. The admin token comes from an
environment variable named in the spec, never from the spec itself.

    [router]
    kind = "unleash"
    url = "http://127.0.0.1:4242"
    environment = "production"     # default "development"
    project = "default"
    token_env = "UNLEASH_ADMIN_TOKEN"
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any

import httpx

from strategies.ports import PlatformError
from strategies.spec import ReleaseSpec

STRATEGY = "flexibleRollout"


class UnleashError(PlatformError):
    """An Admin API call failed or answered something unexpected; one line for people."""


class UnleashLever:
    """TrafficRouter (kind "unleash") over one flag in one Unleash environment."""

    kind = "unleash"

    def __init__(self, url: str, token: str, flag: str, baseline: str, candidate: str, *,
                 project: str = "default", environment: str = "development",
                 kill_switch: bool = False, timeout: float = 5.0):
        self.url = url.rstrip("/")
        self.flag = flag
        self.baseline = baseline
        self.candidate = candidate
        self.project = project
        self.environment = environment
        self.kill_switch = kill_switch
        self._client = httpx.AsyncClient(base_url=self.url, timeout=timeout, trust_env=False,
                                         headers={"Authorization": token})
        self._lock = asyncio.Lock()

    @classmethod
    def from_spec(cls, spec: ReleaseSpec) -> UnleashLever:
        options = spec.router.options
        token_env = str(options.get("token_env", "UNLEASH_ADMIN_TOKEN"))
        token = os.environ.get(token_env, "")
        if not token:
            raise UnleashError(f"router.token_env: environment variable {token_env} is not set "
                               "(it must hold an Unleash admin API token)")
        return cls(str(options["url"]), token, spec.strategy.flag, spec.release.baseline,
                   spec.release.candidate, project=str(options.get("project", "default")),
                   environment=str(options.get("environment", "development")),
                   kill_switch=spec.strategy.kill_switch,
                   timeout=float(options.get("timeout", spec.metrics.timeout)))

    # ----------------------------------------------------------------- the port

    async def set_weights(self, weights: Mapping[str, int]) -> None:
        """Set the rollout percentage; at 0 with the kill switch, switch the flag off."""
        share = weights.get(self.candidate)
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 100:
            raise UnleashError(f"share of {self.candidate} must be 0..100, got {share!r}")
        share = round(share)
        async with self._lock:
            feature = await self._feature(create=True)
            strategy = self._rollout_strategy(feature)
            base = f"{self._feature_path()}/environments/{self.environment}"
            if strategy is None:
                await self._call("POST", f"{base}/strategies", {
                    "name": STRATEGY,
                    "parameters": {"rollout": str(share), "stickiness": "default", "groupId": self.flag}})
            elif str(strategy.get("parameters", {}).get("rollout")) != str(share):
                parameters = {**strategy.get("parameters", {}), "rollout": str(share)}
                await self._call("PUT", f"{base}/strategies/{strategy['id']}",
                                 {"name": STRATEGY, "constraints": strategy.get("constraints", []),
                                  "parameters": parameters})
            enabled = self._environment(feature).get("enabled", False)
            want = not (self.kill_switch and share <= 0)
            if enabled != want:
                await self._call("POST", f"{base}/{'on' if want else 'off'}")

    async def weights(self) -> Mapping[str, float]:
        """The share Unleash gives now: 0 while the flag is off or missing."""
        feature = await self._feature(create=False)
        share = 0.0
        if feature is not None and self._environment(feature).get("enabled"):
            strategy = self._rollout_strategy(feature)
            if strategy is not None:
                share = _percent(strategy.get("parameters", {}).get("rollout"), self.flag)
        return {self.baseline: 100.0 - share, self.candidate: share}

    async def enabled(self) -> bool:
        feature = await self._feature(create=False)
        return feature is not None and bool(self._environment(feature).get("enabled"))

    async def close(self) -> None:
        await self._client.aclose()

    # ----------------------------------------------------------------- inside

    def _feature_path(self) -> str:
        return f"/api/admin/projects/{self.project}/features/{self.flag}"

    async def _feature(self, *, create: bool) -> Mapping[str, Any] | None:
        answer = await self._call("GET", self._feature_path(), missing_ok=True)
        if answer is None and create:
            await self._call("POST", f"/api/admin/projects/{self.project}/features",
                             {"name": self.flag, "type": "release",
                              "description": "gradual release driven by releasedeck"})
            answer = await self._call("GET", self._feature_path())
        return answer

    def _environment(self, feature: Mapping[str, Any]) -> Mapping[str, Any]:
        for env in feature.get("environments", []):
            if env.get("name") == self.environment:
                return env
        raise UnleashError(f"unleash: flag {self.flag!r} has no environment {self.environment!r} "
                           f"in project {self.project!r}")

    def _rollout_strategy(self, feature: Mapping[str, Any]) -> Mapping[str, Any] | None:
        strategies = [s for s in self._environment(feature).get("strategies", [])
                      if not s.get("disabled")]
        others = sorted({s.get("name", "?") for s in strategies if s.get("name") != STRATEGY})
        if others or len(strategies) > 1:
            what = ", ".join(others) if others else f"{len(strategies)} {STRATEGY} strategies"
            raise UnleashError(f"unleash: flag {self.flag!r} in {self.environment!r} has strategies "
                               f"releasedeck does not drive ({what}); leave one {STRATEGY} strategy")
        return strategies[0] if strategies else None

    async def _call(self, method: str, path: str, body: Any = None, *,
                    missing_ok: bool = False) -> Any:
        try:
            answer = await self._client.request(method, path, json=body)
        except httpx.TimeoutException as exc:
            raise UnleashError(f"unleash {self.url}: no answer within the timeout") from exc
        except httpx.HTTPError as exc:
            raise UnleashError(f"unleash {self.url}: cannot connect ({type(exc).__name__})") from exc
        if answer.status_code == 404 and missing_ok:
            return None
        if answer.status_code in (401, 403):
            raise UnleashError(f"unleash {self.url}: the admin token was refused "
                               f"(HTTP {answer.status_code} on {method} {path})")
        if answer.status_code >= 300:
            raise UnleashError(f"unleash {self.url}: {method} {path} answered HTTP "
                               f"{answer.status_code}: {_message(answer)}")
        if not answer.content:
            return None
        try:
            return answer.json()
        except ValueError as exc:
            raise UnleashError(f"unleash {self.url}: {method} {path} answered something that "
                               "is not JSON") from exc


def _percent(value: Any, flag: str) -> float:
    try:
        share = float(value)
    except (TypeError, ValueError) as exc:
        raise UnleashError(f"unleash: flag {flag!r} rollout is not a number: {value!r}") from exc
    if not 0 <= share <= 100:
        raise UnleashError(f"unleash: flag {flag!r} rollout is outside 0..100: {share:g}")
    return share


def _message(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text.strip().splitlines()[0][:160] if answer.text.strip() else "(no body)"
    if isinstance(body, dict):
        details = body.get("details")
        if isinstance(details, list) and details and isinstance(details[0], dict):
            return str(details[0].get("message") or details[0].get("description") or body)[:160]
        return str(body.get("message") or body.get("error") or body)[:160]
    return str(body)[:160]
