"""Build the adapters a spec asks for: (platform, router, source).

Which callable builds each kind comes from the registry (`strategies.registry`). Imports are
lazy, so a machine without the docker or kubernetes libraries can still run a local release,
and a missing adapter is one clear line ("... is not available: ...") instead of an
ImportError at start-up.
"""

from __future__ import annotations

import contextlib
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strategies.ports import MetricSource, Platform, TrafficRouter
from strategies.registry import PLATFORM, ROUTER, SOURCE, find
from strategies.spec import ReleaseSpec
from tui.driver import close_parts

if TYPE_CHECKING:
    from collectors.local.stack import LocalStack

@dataclass(frozen=True)
class Adapters:
    """The three adapters a run talks to. `router` is whatever moves traffic (a router or a
    flag lever); None when the platform moves it itself or nothing does."""

    platform: Platform | None
    router: TrafficRouter | None
    source: MetricSource
    stack_owned: bool = False  # platform and router belong to the local stack, which stops them

    async def close(self) -> None:
        """Close the adapters this run owns: all of them, or only the source when the local
        stack owns platform and router (it stops load, sync, router and platform in order; closing
        the platform under its running sync would race it)."""
        parts = (self.source,) if self.stack_owned else (self.source, self.router, self.platform)
        await close_parts(parts)


class AdapterUnavailable(Exception):
    """An adapter the spec asks for cannot be built here (not installed, or failed to start)."""


def _build(layer: str, kind: str, spec: ReleaseSpec) -> Any:
    """Call the registry's factory for a kind; AdapterUnavailable (one line) if it cannot."""
    adapter = find(layer, kind)
    if adapter is None or not adapter.factory:
        raise AdapterUnavailable(f"{layer} {kind!r} is not supported")
    module_name, _, path = adapter.factory.partition(":")
    try:
        factory: Any = importlib.import_module(module_name)
        for name in path.split("."):
            factory = getattr(factory, name)  # a dotted name the registry declares, not a probe
    except (ImportError, AttributeError) as exc:
        raise AdapterUnavailable(f"{layer} {kind!r} is not available: {adapter.factory} "
                                 f"cannot be loaded ({type(exc).__name__}: {exc})") from exc
    try:
        return factory(spec)
    except Exception as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AdapterUnavailable(f"{layer} {kind!r} could not be set up: {text}") from exc


def build_adapters(spec: ReleaseSpec) -> tuple[Platform, TrafficRouter | None, MetricSource]:
    """The three adapters for a spec. Raises AdapterUnavailable with a one-line reason."""
    platform = _build(PLATFORM, spec.platform.kind, spec)
    router_kind = find(ROUTER, spec.router.kind)
    router = _build(ROUTER, spec.router.kind, spec) if router_kind is None or router_kind.factory \
        else None  # "platform" and "none": nothing to build
    return platform, router, build_source(spec)


def build_source(spec: ReleaseSpec) -> MetricSource:
    """The metric source alone (the demo brings its own platform and router)."""
    return _build(SOURCE, spec.metrics.source, spec)


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
    return Adapters(stack.platform, stack.lever, source, stack_owned=True), stack
