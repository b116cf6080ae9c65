"""Build the adapters a spec asks for: (platform, router, source).

Imports are lazy, so a machine without the docker or kubernetes libraries can still run a local
release, and a missing adapter is one clear line ("... is not available: ...") instead of an
ImportError at start-up. Each adapter class is built with `from_spec(spec)` or
`for_release(spec)` when it has one, else `Class(spec)`.
"""

from __future__ import annotations

import contextlib
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strategies.ports import MetricSource, Platform, TrafficRouter
from strategies.spec import ReleaseSpec
from tui.driver import close_parts

if TYPE_CHECKING:
    from collectors.local.stack import LocalStack

# kind -> (module, class)
PLATFORMS: dict[str, tuple[str, str]] = {
    "local": ("collectors.local.platform", "LocalPlatform"),
    "docker": ("collectors.docker_platform", "DockerPlatform"),
    "kubernetes": ("collectors.kubernetes.platform", "KubernetesPlatform"),
}
ROUTERS: dict[str, tuple[str, str] | None] = {
    "local": ("collectors.local.router", "LocalRouter"),
    "haproxy": ("collectors.haproxy", "HAProxyRouter"),
    "platform": None,  # the platform pulls the traffic lever itself (set_weights)
    "none": None,
    "flagd": ("collectors.flags.flagd", "FlagdLever"),  # a feature flag's share of users
    "unleash": ("collectors.flags.unleash", "UnleashLever"),
}
SOURCES: dict[str, tuple[str, str]] = {
    "scrape": ("collectors.scrape_source", "ScrapeSource"),
    "prometheus": ("collectors.prometheus_source", "PrometheusSource"),
    "haproxy": ("collectors.haproxy_stats", "HAProxyMetricSource"),
}


@dataclass(frozen=True)
class Adapters:
    """The three adapters a run talks to. `router` is whatever moves traffic (a router or a
    flag lever); None when the platform moves it itself or nothing does."""

    platform: Platform | None
    router: TrafficRouter | None
    source: MetricSource

    async def close(self) -> None:
        """Close what was built when no run took them over (a run closes them itself)."""
        await close_parts((self.source, self.router, self.platform))


class AdapterUnavailable(Exception):
    """An adapter the spec asks for cannot be built here (not installed, or failed to start)."""


def _build(what: str, kind: str, where: tuple[str, str] | None, spec: ReleaseSpec) -> Any:
    if where is None:
        raise AdapterUnavailable(f"{what} {kind!r} is not supported")
    module_name, class_name = where
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, class_name)
    except (ImportError, AttributeError) as exc:
        raise AdapterUnavailable(f"{what} {kind!r} is not available: {module_name}.{class_name} "
                                 f"cannot be loaded ({type(exc).__name__}: {exc})") from exc
    try:
        factory = getattr(cls, "from_spec", None) or getattr(cls, "for_release", None)
        return factory(spec) if factory is not None else cls(spec)
    except Exception as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AdapterUnavailable(f"{what} {kind!r} could not be set up: {text}") from exc


def build_adapters(spec: ReleaseSpec) -> tuple[Platform, TrafficRouter | None, MetricSource]:
    """The three adapters for a spec. Raises AdapterUnavailable with a one-line reason."""
    platform = _build("platform", spec.platform.kind, PLATFORMS.get(spec.platform.kind), spec)
    router_where = ROUTERS.get(spec.router.kind)
    router = None if router_where is None and spec.router.kind in ("platform", "none") \
        else _build("router", spec.router.kind, router_where, spec)
    return platform, router, build_source(spec)


def build_source(spec: ReleaseSpec) -> MetricSource:
    """The metric source alone (the demo brings its own platform and router)."""
    return _build("metric source", spec.metrics.source, SOURCES.get(spec.metrics.source), spec)


async def open_adapters(spec: ReleaseSpec, resources: contextlib.AsyncExitStack, *,
                        rate: float = 50.0) -> tuple[Adapters, LocalStack | None]:
    """The adapters a spec asks for, started where they are ours to run: a local platform is
    the local stack (service processes, the built-in router, load at `rate`), entered on
    `resources` so it stops with them. Raises AdapterUnavailable or LocalStackError (one line).

    The driver syncs the built-in router's backends each tick; the stack keeps its own sync
    only when the driver moves a flag instead of that router."""
    if spec.platform.kind != "local":
        platform, router, source = build_adapters(spec)
        return Adapters(platform, router, source), None
    from collectors.local.stack import LocalStack

    source = build_source(spec)
    stack = LocalStack(spec, rate=rate, sync_interval=None if spec.router.kind == "local" else 0.5)
    await resources.enter_async_context(stack)
    return Adapters(stack.platform, stack.lever, source), stack
