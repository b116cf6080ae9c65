"""`releasedeck demo`: a real release on this machine with nothing but the Python package.

Two versions of a small real HTTP service run as local processes, the built-in router splits
traffic by weight, a load generator sends requests, and the scrape source (or a Prometheus)
reads how each version behaves. `f` in the app, or `--fault-at`, breaks the candidate so a
newcomer sees the gates roll it back; `F` clears the fault again, so a retry (`R`) can pass.
The demo's journal lives in its temp dir and is deleted on exit: the app says so (quit dialog,
`i`, the line printed on quit), since such a rollout cannot be resumed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from collectors.lease.file_lease import FileLease, lock_path_for
from collectors.local.tempdirs import owned_tempdir
from strategies.spec import ReleaseSpec, SpecError, load_runnable_spec, load_spec
from tui import exitcodes
from tui.demo_specs import FAULT, demo_service, demo_spec, demo_spec_text
from tui.driver import Driver
from tui.flags import RunFlags
from tui.recorder import TraceRecorder
from tui.runinfo import RunInfo
from tui.seat import Seat, SeatRefused, ServeOptions, take_seat
from tui.session import Session, SessionError, assemble, open_recorder
from tui.watch import interactive, run_options

if TYPE_CHECKING:
    from tui.app.app import ExtraAction


def _load(args: argparse.Namespace, prometheus_url: str | None, workdir: Path) -> ReleaseSpec:
    if args.spec:
        spec = load_runnable_spec(args.spec)  # as `check` says it
        if spec.platform.kind != "local":
            raise SpecError(args.spec, [("platform.kind", "the demo runs on the local platform "
                                         f"only, got {spec.platform.kind!r}; use "
                                         "`releasedeck watch` for other platforms")])
        if prometheus_url:
            spec = replace(spec, metrics=replace(spec.metrics, source="prometheus",
                                                 url=prometheus_url))
        return spec
    return demo_spec(args.strategy, prometheus_url, flag_file=str(workdir / "flags.json"),
                     service=_service(args))


def _service(args: argparse.Namespace) -> str:
    """The built-in demo's release name: told apart by its targets file when its metrics go to
    a Prometheus others may share (`tui.demo_specs.demo_service`)."""
    shared = args.prometheus and not args.with_prometheus
    return demo_service(args.targets_file if shared else None)


@dataclass(frozen=True)
class DemoRun:
    """A demo's assembled run and the one lever only a demo has: breaking its own candidate."""

    session: Session
    inject_fault: Callable[[], Awaitable[None]]
    clear_fault: Callable[[], Awaitable[None]]  # F: the candidate healthy again, so R can pass
    info: RunInfo  # the built-in spec, router address, logs, journal (the app's `i`)
    offered: Mapping[str, Callable[[], bool]]  # f only while healthy, F only while broken


@contextlib.asynccontextmanager
async def demo_session(args: argparse.Namespace, workdir: Path, recorder: TraceRecorder | None,
                       *, headless: bool, seat: Seat | None = None) -> AsyncIterator[DemoRun]:
    """Start the whole local stack and assemble the run over it exactly as `watch` does
    (journal, webhooks, alerts, --record, the seat taken before); tears everything down after."""
    from tui.wiring import open_adapters

    async with contextlib.AsyncExitStack() as resources:
        prometheus = None
        if args.with_prometheus:
            from collectors.prometheus_server import LocalPrometheus

            prometheus = LocalPrometheus()
            await prometheus.start()
            resources.push_async_callback(prometheus.stop)
        url = prometheus.url if prometheus is not None else args.prometheus
        spec = _load(args, url, workdir)
        adapters, stack = await open_adapters(spec, resources, rate=args.rate)
        assert stack is not None  # the demo's platform is always local
        options = replace(run_options(RunFlags.of(args), headless=headless, out=sys.stdout),
                          journal_path=str(workdir / "demo.journal"), fresh=True, demo=True,
                          seat=seat)
        try:
            session = assemble(spec, adapters, options, recorder=recorder)
        except BaseException:
            await adapters.close()
            raise
        resources.push_async_callback(session.close)
        if prometheus is not None:
            session.add_listener(prometheus)
        elif args.prometheus:
            from collectors.prometheus_server import FileSDTargets

            targets = FileSDTargets(Path(args.targets_file))
            session.add_listener(targets)
            print(f"releasedeck demo: reading metrics from {args.prometheus} as service "
                  f"{spec.release.service}; add "
                  f"file_sd_configs: [{{files: ['{targets.path}']}}] to its scrape "
                  "configs so it scrapes the demo's instances", file=sys.stderr)

        candidate = spec.release.candidate
        healthy = {k: v for k, v in stack.platform.behaviour(candidate).items() if k in FAULT}
        faulty: list[bool] = [False]  # which of the f / F keys the app offers

        async def inject_fault() -> None:
            await stack.inject_fault(candidate, **FAULT)
            faulty[0] = True
            emit_fault(session.driver, candidate, dict(FAULT), cleared=False)

        async def clear_fault() -> None:
            await stack.inject_fault(candidate, **healthy)
            faulty[0] = False
            emit_fault(session.driver, candidate, healthy, cleared=True)

        info = RunInfo(
            spec_text=Path(spec.path).read_text() if args.spec else demo_spec_text(
                args.strategy, url, str(workdir / "flags.json"), spec.release.service),
            spec_origin=args.spec or f"built-in demo spec ({args.strategy}); "
            "`releasedeck demo --spec FILE` runs your own",
            router=stack.url, logs=str(stack.platform.log_dir),
            journal=str(workdir / "demo.journal"), journal_kept=False)
        yield DemoRun(session, inject_fault, clear_fault, info,
                      {"f": lambda: not faulty[0], "F": lambda: faulty[0]})


def fault_keys(run: DemoRun) -> dict[str, ExtraAction]:
    """The demo's own keys: break the candidate, and mend it (so `R` can try again)."""
    from tui.app.app import ExtraAction  # the screen's module: not loaded by --headless

    return {"f": ExtraAction("Inject fault", "inject a fault into the candidate: half its "
                             f"requests fail, {FAULT['latency_ms']:g} ms slower", run.inject_fault),
            "F": ExtraAction("Clear fault", "clear the fault: the candidate healthy again",
                             run.clear_fault)}


def emit_fault(driver: Driver, version: str, change: dict[str, float], *, cleared: bool,
               actor: str = "operator") -> None:
    """`fault_injected` / `fault_cleared`, with where the rollout stood (phase, step counted
    from 1, weight) and who did it, like every decision line (tui/schemas/events.schema.json)."""
    rollout = driver.engine.state
    steps = len(driver.engine.plan.steps)
    what = ", ".join(f"{k}={v:g}" for k, v in change.items())
    details = {"version": version, **change, "phase": rollout.phase.value,
               "step": min(rollout.step + 1, steps), "steps": steps, "weight": rollout.weight,
               "actor": actor,
               "reason": f"fault cleared on {version} ({what})" if cleared
               else f"fault injected into {version} ({what})"}
    driver.emit("fault_cleared" if cleared else "fault_injected", details,
                severity="info" if cleared else "warning")


async def _fault_later(run: DemoRun, seconds: float) -> None:
    await asyncio.sleep(seconds)
    await run.inject_fault()


def _lease_path(args: argparse.Namespace, tmp: Path) -> Path:
    """Where the demo's lease lives. With `--prometheus URL` two demos would share one targets
    file and one service name on that Prometheus (their metrics would mix): the lease sits beside
    the targets file, so the second is refused with the usual one line (exit 4) naming the first."""
    if args.prometheus and not args.with_prometheus:
        return lock_path_for(Path(args.targets_file))
    return lock_path_for(tmp / "demo.journal")


async def _run(args: argparse.Namespace, serve: ServeOptions, recorder: TraceRecorder | None) -> int:
    tmp = owned_tempdir("demo")  # swept by the next run if this one is killed
    headless = bool(args.headless)
    try:
        named = _load(args, None, tmp)  # the seat needs only the release's name
        async with contextlib.AsyncExitStack() as resources:
            # the seat first, as `watch` takes it: no process starts for a demo that cannot drive
            try:
                lease = FileLease(_lease_path(args, tmp), named.release.service)
                seat = await take_seat(resources, named, lease, serve)
            except SeatRefused as exc:
                print(exc.line, file=sys.stderr)
                return exc.code
            print(f"releasedeck demo: follow it with: {seat.holder.attach_command()}", file=sys.stderr)
            async with demo_session(args, tmp, recorder, headless=headless, seat=seat) as run:
                return await _drive(args, run, headless=headless)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def _drive(args: argparse.Namespace, run: DemoRun, *, headless: bool) -> int:
    fault = None
    if args.fault_at is not None:
        fault = asyncio.create_task(_fault_later(run, args.fault_at))
    try:
        if headless:
            from tui.headless import run_headless_async

            return await run_headless_async(run.session, until=args.until, timeout=args.timeout,
                                            out=sys.stdout, err=sys.stderr)
        return await interactive(run.session, RunFlags.of(args), sys.stderr,
                                 extra_actions=fault_keys(run), info=run.info,
                                 extra_available=run.offered)
    finally:
        if fault is not None:
            fault.cancel()


def demo_command(args: argparse.Namespace) -> int:
    try:
        serve = ServeOptions.from_args(args.serve, args.token_file)
    except ValueError as exc:
        print(f"releasedeck demo: {exc}", file=sys.stderr)
        return exitcodes.USAGE
    try:
        recorder = None
        if args.record:  # opened before anything starts, with watch's one-line refusal
            service = load_spec(args.spec).release.service if args.spec else ""
            recorder = open_recorder(args.record, service)  # "" learns it from the first event
        return asyncio.run(_run(args, serve, recorder))
    except SpecError as exc:
        print(exc.render(), file=sys.stderr)
        return exitcodes.USAGE
    except SessionError as exc:
        print(f"releasedeck: {exc}", file=sys.stderr)
        return exc.code
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"releasedeck demo: {exc}", file=sys.stderr)
        return exitcodes.UNREACHABLE
    except KeyboardInterrupt:
        return exitcodes.ROLLED_BACK
