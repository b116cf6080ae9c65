"""The issue's check: a two-version release on a real Docker engine, traffic through HAProxy.

The demo service runs in containers (host Python bind-mounted read-only, host network on
127.0.0.1), HAProxy splits traffic between v1a and v2a, HAProxy's own exporter is the metric
source, and the lead's Driver runs the engine: collect -> tick -> act, as in production.

Faults an operator injects by hand, at the end: HAProxy restarted mid-release comes back with
its config file's weights (v2 at 0 %), and the candidate's container is killed. Both are seen
in the next ticks' read-back and put back (a `reconcile` record, never a new decision): the
weights as the journal's step has them, the container started again (Docker keeps no wanted
count, so what it keeps alive is compared with the journal's replicas). The release promotes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from collectors.docker_platform import DockerPlatform
from collectors.haproxy import HAProxyRouter
from collectors.haproxy_stats import HAProxyMetricSource
from strategies.engine import Engine
from strategies.journal import MemoryJournal
from strategies.model import Event, Phase, State
from strategies.spec import ReleaseSpec, parse_spec
from tests.collectors.docker.conftest import DEMO_ENV, demo_command, python_volumes
from tests.collectors.docker.helpers import HAProxy, Load
from tests.support.ports import free_run
from tests.support.reconciles import reapplied
from tui.driver import Driver

pytestmark = [pytest.mark.docker, pytest.mark.haproxy]


class Recorder:
    """Listener: keeps every state and event, and can run a hook on each state."""

    def __init__(self, hook: Any = None):
        self.states: list[State] = []
        self.events: list[Event] = []
        self.hook = hook

    def on_event(self, event: Event) -> None:
        self.events.append(event)

    def on_state(self, state: State) -> None:
        self.states.append(state)
        if self.hook is not None:
            self.hook(state)

    def names(self) -> list[str]:
        return [e.event for e in self.events]

    def candidate_weights(self) -> list[int]:
        """Actual v2 weights as HAProxy reported them, rounded, consecutive repeats dropped."""
        out: list[int] = []
        for state in self.states:
            view = next((v for v in state.versions if v.version == "v2"), None)
            if view is None or view.actual_weight is None:
                continue
            value = round(view.actual_weight)
            if not out or out[-1] != value:
                out.append(value)
        return out


def _spec(dockerd: str, image: str, proxy: HAProxy, ports: dict[str, int],
          servers: dict[str, list[str]], *, app: str, replicas: int, strategy: dict[str, Any],
          tmp: Path) -> ReleaseSpec:
    return parse_spec({
        "release": {"service": "checkout", "baseline": "v1", "candidate": "v2"},
        "platform": {
            "kind": "docker", "selector": f"app={app}", "replicas": replicas, "host": dockerd,
            "image": image, "command": demo_command(), "env": DEMO_ENV, "init": True,
            "volumes": python_volumes(), "base_port": ports, "ready_timeout": "20s",
            "healthcheck": {"test": ["CMD", "wget", "-q", "-O", "/dev/null",
                                     "http://127.0.0.1:{port}/healthz"],
                            "interval": "200ms", "timeout": "1s", "retries": 1},
        },
        "router": {"kind": "haproxy", "socket": proxy.socket, "backend": "checkout",
                   "servers": servers, "stats_url": proxy.stats_url},
        "metrics": {"source": "haproxy", "interval": "200ms", "window": "2s",
                    "stale_after": "3s", "timeout": "2s"},
        "strategy": {"scale_down_delay": "1s", **strategy},
        "gate": [{"name": "errors", "metric": "error_rate", "max": 0.05, "min_requests": 5,
                  "severity": "critical"}],
    }, str(tmp / "release.toml"))


@pytest.fixture
def release(dockerd, busybox_image, haproxy_factory, tmp_path: Path) -> Iterator:
    """build(app, strategy, replicas): HAProxy with `replicas` server slots per version in
    front of per-version port ranges, and v1 running in Docker as 'what runs today'."""
    platforms: list[DockerPlatform] = []

    def build(app: str, strategy: dict[str, Any], replicas: int = 1) -> tuple[
            HAProxy, ReleaseSpec, DockerPlatform, HAProxyRouter, HAProxyMetricSource]:
        ports = {"v1": free_run(replicas), "v2": free_run(replicas)}
        servers = {v: [f"{v}{chr(ord('a') + i)}" for i in range(replicas)] for v in ports}
        proxy = haproxy_factory({name: ("127.0.0.1", ports[v] + i, 256 if v == "v1" else 0)
                                 for v, names in servers.items()
                                 for i, name in enumerate(names)})
        spec = _spec(dockerd, busybox_image, proxy, ports, servers, app=app, replicas=replicas,
                     strategy=strategy, tmp=tmp_path)
        platform = DockerPlatform.from_spec(spec)
        platforms.append(platform)
        source = HAProxyMetricSource.from_spec(spec)
        asyncio.run(platform.scale("v1", replicas))
        return proxy, spec, platform, HAProxyRouter.from_spec(spec), source

    yield build
    for platform in platforms:
        asyncio.run(platform.cleanup())
        asyncio.run(platform.close())


CANARY = {"kind": "canary", "steps": [10, 50, 100]}


def test_canary_shifts_10_50_100_through_haproxy_and_promotes(release) -> None:
    proxy, spec, platform, router, source = release("shop-promote", {**CANARY, "hold": "1s"})
    recorder = Recorder()
    driver = Driver(spec, Engine(spec), platform, router, source, listeners=[recorder])
    with Load(proxy.url) as load:
        final = asyncio.run(driver.run(timeout=40))
    assert final.rollout.phase is Phase.SUCCEEDED, recorder.names()
    assert driver.engine.finished
    # What HAProxy actually routed to the candidate, step by step, in order
    weights = recorder.candidate_weights()
    assert [w for w in weights if w in (10, 50, 100)] == [10, 50, 100], weights
    assert weights[-1] == 100
    # both versions really served traffic, and nothing failed
    assert load.versions.get("v1", 0) > 0 and load.versions.get("v2", 0) > 0, load.versions
    assert set(load.codes) == {200}, load.codes
    # promoted: v1 scaled away after the delay, v2 takes everything
    snap = asyncio.run(platform.snapshot(["v1", "v2"], 0.0))
    assert (snap.versions["v1"].total, snap.versions["v2"].ready) == (0, 1)
    assert asyncio.run(router.weights()) == {"v1": 0.0, "v2": 100.0}
    with httpx.Client(timeout=2) as client:
        assert {client.get(proxy.url).headers["x-releasedeck-version"] for _ in range(10)} == {"v2"}
    asyncio.run(driver.close())


def test_faulted_candidate_is_rolled_back_and_stopped_after_the_delay(release) -> None:
    # The hold outlasts the gate's decision even on a loaded machine (the gate fails within a
    # few faulted requests; a short hold could end the step first and move on to 50 %).
    proxy, spec, platform, router, source = release("shop-fault", {**CANARY, "hold": "15s"})
    faulted: list[str] = []

    def inject(state: State) -> None:
        """Once the candidate takes its first 10 %, make every one of its requests fail."""
        view = next((v for v in state.versions if v.version == "v2"), None)
        if faulted or state.rollout.phase is not Phase.PROGRESSING or state.rollout.weight != 10 \
                or view is None or not view.actual_weight:
            return
        port = platform.template.base_port["v2"]  # type: ignore[index]
        httpx.post(f"http://127.0.0.1:{port}/control", json={"error_ratio": 1.0}, timeout=2)
        faulted.append(f"v2 on {port}")

    recorder = Recorder(inject)
    driver = Driver(spec, Engine(spec), platform, router, source, listeners=[recorder])
    with Load(proxy.url):
        final = asyncio.run(driver.run(timeout=40))
    assert faulted, "the candidate never reached 10 %"
    assert final.rollout.phase is Phase.ROLLED_BACK, recorder.names()
    assert driver.engine.finished
    names = recorder.names()
    assert names.index("rolling_back") < names.index("rolled_back") < names.index("scaled_down")
    rolling = recorder.events[names.index("rolling_back")]
    assert rolling.details["actor"] == "gate:errors" and rolling.details["weight"] == 0
    # never went past the first step, and the router took the candidate's weight to 0
    assert max(s.rollout.weight for s in recorder.states) == 10
    assert recorder.candidate_weights()[-1] == 0
    assert asyncio.run(router.weights()) == {"v1": 100.0, "v2": 0.0}
    rows = {r.server: r.status for r in asyncio.run(router.stats())}
    assert rows["v2a"] in ("DRAIN", "DOWN", "MAINT")
    # the candidate's container outlived the rollback by the delay (1s), then was stopped
    def v2_total(state: State) -> int:
        return next(v.total for v in state.versions if v.version == "v2")

    after = [v2_total(s) for s in recorder.states if s.rollout.phase is Phase.ROLLED_BACK]
    assert after and set(after) == {1}, after
    at = {e.event: e.at for e in recorder.events}
    assert at["scaled_down"] - at["rolled_back"] >= 1.0
    snap = asyncio.run(platform.snapshot(["v1", "v2"], 0.0))
    assert (snap.versions["v1"].ready, snap.versions["v2"].total) == (1, 0)
    asyncio.run(driver.close())


def test_rolling_replaces_batch_by_batch_without_losing_capacity(release) -> None:
    proxy, spec, platform, router, source = release(
        "shop-rolling", {"kind": "rolling", "max_surge": 1, "max_unavailable": 0, "hold": "1s"},
        replicas=2)
    recorder = Recorder()
    driver = Driver(spec, Engine(spec), platform, router, source, listeners=[recorder])
    with Load(proxy.url) as load:
        final = asyncio.run(driver.run(timeout=40))
    assert final.rollout.phase is Phase.SUCCEEDED, recorder.names()
    # new up before old down: ready instances never fell below the 2 wanted
    ready = [sum(v.ready for v in s.versions) for s in recorder.states]
    assert min(ready) >= 2, ready
    batches = [s.rollout.weight for s in recorder.states]
    assert [w for i, w in enumerate(batches) if i == 0 or batches[i - 1] != w] == [50, 100]
    assert recorder.candidate_weights()[-1] == 100
    snap = asyncio.run(platform.snapshot(["v1", "v2"], 0.0))
    assert (snap.versions["v1"].total, snap.versions["v2"].ready) == (0, 2)
    failed = sum(n for code, n in load.codes.items() if code != 200)
    assert failed <= sum(load.codes.values()) // 100, load.codes  # HAProxy retries refused conns
    asyncio.run(driver.close())


def test_blue_green_switches_all_traffic_at_once(release) -> None:
    proxy, spec, platform, router, source = release(
        "shop-bluegreen", {"kind": "blue-green", "preview_hold": "1s", "hold": "1s",
                           # no preview traffic through HAProxy here: the preview is timed
                           "preview_analysis": False})
    recorder = Recorder()
    driver = Driver(spec, Engine(spec), platform, router, source, listeners=[recorder])
    with Load(proxy.url) as load:
        final = asyncio.run(driver.run(timeout=40))
    assert final.rollout.phase is Phase.SUCCEEDED, recorder.names()
    assert recorder.candidate_weights() == [0, 100]  # nothing in between: a switch
    # preview: the green side was up and ready with no traffic before the switch
    green = [next(v for v in s.versions if v.version == "v2") for s in recorder.states]
    assert any(v.ready == 1 and v.actual_weight == 0 for v in green), green
    assert load.versions.get("v2", 0) > 0
    snap = asyncio.run(platform.snapshot(["v1", "v2"], 0.0))
    assert (snap.versions["v1"].total, snap.versions["v2"].ready) == (0, 1)
    asyncio.run(driver.close())

# Long enough at 50 % that the fault, the read-back and the fix all happen inside the step.
HELD_CANARY = {**CANARY, "hold": "6s"}


class OnceAt50:
    """Runs `fault` once, off the event loop, the first time HAProxy routes 50 % to v2."""

    def __init__(self, fault: Callable[[], object]) -> None:
        self.fault = fault
        self.thread: threading.Thread | None = None

    def __call__(self, state: State) -> None:
        view = next((v for v in state.versions if v.version == "v2"), None)
        if self.thread is None and view is not None and view.actual_weight == 50:
            self.thread = threading.Thread(target=self.fault, daemon=True)
            self.thread.start()


def run_faulted(built: tuple[Any, ...], fault: Callable[[], object]
                ) -> tuple[State, Recorder, MemoryJournal]:
    """Drive the release `release(...)` built under load, with `fault` once at 50 %; returns
    the final state, what was seen and the journal, once the fault has run to its end."""
    proxy, spec, platform, router, source = built
    once = OnceAt50(fault)
    recorder = Recorder(once)
    journal = MemoryJournal()
    driver = Driver(spec, Engine(spec, journal=journal), platform, router, source,
                    listeners=[recorder])
    with Load(proxy.url):
        final = asyncio.run(driver.run(timeout=60))
    asyncio.run(driver.close())
    assert once.thread is not None, "HAProxy never routed 50 % to the candidate"
    once.thread.join(timeout=30)
    return final, recorder, journal


def test_a_restarted_haproxy_gets_its_weights_back_and_the_release_promotes(release) -> None:
    built = release("shop-haproxy-restart", HELD_CANARY)
    proxy = built[0]
    final, recorder, journal = run_faulted(built, lambda: (proxy.stop(), proxy.start()))
    assert final.rollout.phase is Phase.SUCCEEDED, recorder.names()
    # what HAProxy routed, in order: 50 %, the restart's 0 %, 50 % again, then 100 %
    weights = recorder.candidate_weights()
    at_50 = weights.index(50)
    assert 0 in weights[at_50:] and weights[-1] == 100, weights
    assert weights[weights.index(0, at_50):].count(50) >= 1, weights
    # put back as a correction of the weight lever to the step's 50 %, never as a decision;
    # no step was decided twice
    assert reapplied(journal.records) == {("set_weight", "", 50)}, journal.records
    steps = [r.get("step") for r in journal.records if r.get("kind") == "step"]
    assert len(steps) == len(set(steps)), steps


def test_a_killed_candidate_container_is_started_again_and_the_release_promotes(
        release, dockerd) -> None:
    built = release("shop-kill-v2", HELD_CANARY)
    client = docker.DockerClient(base_url=dockerd)

    def kill_v2() -> None:
        for container in client.containers.list(filters={"label": "app=shop-kill-v2"}):
            if container.labels.get("releasedeck.version") == "v2":
                container.kill()

    final, recorder, journal = run_faulted(built, kill_v2)
    ready = [next(v.ready for v in s.versions if v.version == "v2") for s in recorder.states]
    # it was seen down after the kill, then up again, and the release went on to promote
    first_down = ready.index(0, ready.index(1))
    assert 1 in ready[first_down:], ready
    assert final.rollout.phase is Phase.SUCCEEDED, recorder.names()
    # started again by a correction of the replicas lever (Docker itself leaves it down)
    assert ("scale", "v2", 1) in reapplied(journal.records), journal.records
    assert "rolling_back" not in recorder.names()
    client.close()
