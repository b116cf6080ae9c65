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

from collectors.lease.file_lease import FileLease, lock_path_for
from collectors.local.tempdirs import owned_tempdir
from strategies.engine import Engine
from strategies.journal import JournalWriter
from strategies.spec import ReleaseSpec, SpecError, load_spec
from tui import exitcodes
from tui.demo_specs import FAULT, demo_spec, demo_spec_text
from tui.driver import Driver
from tui.headless import outcome_code
from tui.runinfo import RunInfo
from tui.seat import ServeOptions, driver_seat
from tui.signals import exit_on_signals


def _load(args: argparse.Namespace, prometheus_url: str | None, workdir: Path) -> ReleaseSpec:
    if args.spec:
        spec = load_spec(args.spec)
        if spec.platform.kind != "local":
            raise SpecError(args.spec, [("platform.kind", "the demo runs on the local platform "
                                         f"only, got {spec.platform.kind!r}; use "
                                         "`releasedeck watch` for other platforms")])
        if prometheus_url:
            spec = replace(spec, metrics=replace(spec.metrics, source="prometheus",
                                                 url=prometheus_url))
        return spec
    return demo_spec(args.strategy, prometheus_url, flag_file=str(workdir / "flags.json"))


@dataclass(frozen=True)
class DemoRun:
    """A demo's driver and the one lever only a demo has: breaking its own candidate."""

    driver: Driver
    inject_fault: Callable[[], Awaitable[None]]
    clear_fault: Callable[[], Awaitable[None]]  # F: the candidate healthy again, so R can pass
    info: RunInfo  # the built-in spec, router address, logs, journal (the app's `i`)
    offered: Mapping[str, Callable[[], bool]]  # f only while healthy, F only while broken


@contextlib.asynccontextmanager
async def demo_driver(args: argparse.Namespace, journal_dir: Path) -> AsyncIterator[DemoRun]:
    """Start the whole local stack and yield a Driver over it; tears everything down after."""
    from collectors.local.stack import LocalStack
    from tui.wiring import build_source

    prometheus = None
    if args.with_prometheus:
        from collectors.prometheus_server import LocalPrometheus

        prometheus = LocalPrometheus()
        await prometheus.start()
    url = prometheus.url if prometheus is not None else args.prometheus
    spec = _load(args, url, journal_dir)
    writer = JournalWriter(journal_dir / "demo.journal")
    try:
        async with LocalStack(spec, rate=args.rate) as stack:
            engine = Engine(spec, read_only=args.read_only, journal=writer)
            driver = Driver(spec, engine, stack.platform, stack.lever, build_source(spec),
                            demo=True, journal_path=str(writer.path))
            if prometheus is not None:
                driver.add_listener(prometheus)
            elif args.prometheus:
                from collectors.prometheus_server import FileSDTargets

                targets = FileSDTargets(Path(args.targets_file))
                driver.add_listener(targets)
                print(f"releasedeck demo: reading metrics from {args.prometheus}; add "
                      f"file_sd_configs: [{{files: ['{targets.path}']}}] to its scrape "
                      "configs so it scrapes the demo's instances", file=sys.stderr)
            if args.record:
                from tui.recorder import TraceRecorder

                driver.add_listener(TraceRecorder(args.record, spec.release.service))

            candidate = spec.release.candidate
            healthy = {k: v for k, v in stack.platform.behaviour(candidate).items() if k in FAULT}
            faulty: list[bool] = [False]  # which of the f / F keys the app offers

            async def inject_fault() -> None:
                await stack.inject_fault(candidate, **FAULT)
                faulty[0] = True
                emit_fault(driver, candidate, dict(FAULT), cleared=False)

            async def clear_fault() -> None:
                await stack.inject_fault(candidate, **healthy)
                faulty[0] = False
                emit_fault(driver, candidate, healthy, cleared=True)

            info = RunInfo(
                spec_text=Path(spec.path).read_text() if args.spec else demo_spec_text(
                    args.strategy, url, str(journal_dir / "flags.json")),
                spec_origin=args.spec or f"built-in demo spec ({args.strategy}); "
                "`releasedeck demo --spec FILE` runs your own",
                router=stack.url, logs=str(stack.platform.log_dir),
                journal=str(writer.path), journal_kept=False)
            try:
                yield DemoRun(driver, inject_fault, clear_fault, info,
                              {"f": lambda: not faulty[0], "F": lambda: faulty[0]})
            finally:
                for listener in driver.listeners:  # e.g. the trace recorder flushes and closes
                    close = getattr(listener, "close", None)
                    if close is not None:
                        with contextlib.suppress(Exception):
                            result = close()
                            if asyncio.iscoroutine(result):
                                await result
                await driver.close()
    finally:
        writer.close()
        if prometheus is not None:
            await prometheus.stop()


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
    await run.inject_fault()  # actor: operator (a --fault-at the operator asked for)


async def _run(args: argparse.Namespace, serve: ServeOptions) -> int:
    tmp = owned_tempdir("demo")  # swept by the next run if this one is killed
    try:
        async with demo_driver(args, tmp) as run, \
                driver_seat(run.driver.spec, FileLease(lock_path_for(tmp / "demo.journal"),
                                                       run.driver.spec.release.service), serve) as seat:
            run.driver.add_listener(seat.server)
            run.driver.lease = seat.lease
            print(f"releasedeck demo: follow it with: {seat.holder.attach_command()}", file=sys.stderr)
            seat.code = await _drive(args, run)
            return seat.code
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def _drive(args: argparse.Namespace, run: DemoRun) -> int:
    driver = run.driver
    fault = None
    if args.fault_at is not None:
        fault = asyncio.create_task(_fault_later(run, args.fault_at))
    try:
        if args.headless:
            from tui.headless import run_headless_async

            return await run_headless_async(
                driver, until=args.until, timeout=args.timeout,
                out=sys.stdout, err=sys.stderr)
        from tui.app import ReleaseApp

        app = ReleaseApp(driver, read_only=args.read_only, wallboard=args.wallboard,
                         refresh=args.refresh, info=run.info,
                         extra_actions={"f": ("Inject fault", run.inject_fault),
                                        "F": ("Clear fault", run.clear_fault)},
                         extra_available=run.offered)
        with exit_on_signals(app):
            await app.run_async()
        if app.summary:
            print(app.summary, file=sys.stderr)
        return outcome_code(driver)
    finally:
        if fault is not None:
            fault.cancel()


def demo_command(args: argparse.Namespace) -> int:
    try:
        serve = ServeOptions.from_args(getattr(args, "serve", None), getattr(args, "token_file", None))
    except ValueError as exc:
        print(f"releasedeck demo: {exc}", file=sys.stderr)
        return exitcodes.USAGE
    try:
        return asyncio.run(_run(args, serve))
    except SpecError as exc:
        print(exc.render(), file=sys.stderr)
        return exitcodes.USAGE
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"releasedeck demo: {exc}", file=sys.stderr)
        return exitcodes.UNREACHABLE
    except KeyboardInterrupt:
        return exitcodes.ROLLED_BACK
