"""`releasedeck attach SPEC|URL`: the driving session's screen, read-only, from its state server.

Nothing here can change the rollout: there is no engine, no adapter, no journal and no command
path; the app is given a follower instead of a driver. `--headless` prints the driver's events
(the same JSON lines its own headless run prints) plus one `state` line whenever phase, step or
weights change, and exits with the driver's exit code once it says how the release ended.
`--web ADDR` serves the same screen to browsers (tui.web).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import replace
from typing import TextIO

from strategies.model import Phase, RolloutState, State, Viewing, ViewMode, rfc3339
from strategies.spec import SpecError, load_spec
from tui import exitcodes
from tui.flags import RunFlags
from tui.follow import Follower, LeaseLocator, Locator, UrlLocator

TERMINAL_CODES = {Phase.SUCCEEDED: exitcodes.PROMOTED, Phase.ROLLED_BACK: exitcodes.ROLLED_BACK,
                  Phase.ABORTED: exitcodes.ROLLED_BACK}


def locator_for(target: str) -> Locator:
    """A URL as it is; anything else is a spec whose lease names the driver. SpecError if bad."""
    if target.startswith(("http://", "https://")):
        return UrlLocator(target)
    from tui.seat import lease_for

    spec = load_spec(target)
    return LeaseLocator(lease_for(spec), target)


def viewed(follower: Follower, release: str) -> State:
    """What a follower's screen shows: the driver's last State, marked as followed, or a
    placeholder saying nobody answers yet."""
    holder = follower.holder
    viewing = Viewing(ViewMode.FOLLOW, driver=holder.identity if holder else "",
                      url=holder.attach if holder else follower.locator.describe(),
                      gone_since=None if follower.connected else follower.gone_since,
                      note=follower.problem)
    if follower.state is None:
        return State(at=time.time(), release=release, strategy="", platform_kind="", metrics_source="",
                     rollout=RolloutState(), steps=(), hold=0.0, read_only=True, viewing=viewing)
    return replace(follower.state, read_only=True, viewing=viewing)


def state_line(state: State) -> str:
    """The `state` JSON line: phase, step and desired/actual weights per version."""
    body = {"ts": rfc3339(state.at), "release": state.release, "event": "state",
            "phase": state.rollout.phase.value, "step": state.rollout.step, "steps": len(state.steps),
            "weight": state.rollout.weight,
            "weights": {v.version: v.desired_weight for v in state.versions},
            "actual": {v.version: v.actual_weight for v in state.versions}}
    return json.dumps(body, separators=(",", ":"))


def _fingerprint(state: State) -> tuple[object, ...]:
    return (state.rollout.phase, state.rollout.step, state.rollout.weight,
            tuple((v.version, v.desired_weight, v.actual_weight) for v in state.versions))


async def follow_headless(locator: Locator, *, token: str | None, timeout: float | None,
                          out: TextIO, err: TextIO) -> int:
    printed: list[tuple[object, ...]] = []

    def on_state(state: State) -> None:
        mark = _fingerprint(state)
        if not printed or printed[-1] != mark:
            printed[:] = [mark]
            out.write(state_line(state) + "\n")
            out.flush()

    def on_event(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    follower = Follower(locator, token=token, on_state=on_state, on_event=on_event)
    started = time.monotonic()
    reported: list[str] = []

    def done() -> bool:
        if follower.problem and follower.problem not in reported and follower.ended is None:
            reported.append(follower.problem)
            print(f"releasedeck: {follower.problem}", file=err)
        return follower.ended is not None or (timeout is not None and time.monotonic() - started >= timeout)

    task = asyncio.create_task(follower.run(until=done))
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout=timeout) if timeout else await task
    except TimeoutError:
        task.cancel()
    if follower.ended is not None:
        print(f"releasedeck: the driver ended with exit code {follower.ended}", file=err)
        return follower.ended
    state = follower.state
    if state is not None and state.rollout.phase in TERMINAL_CODES:
        return TERMINAL_CODES[state.rollout.phase]
    if follower.states == 0:
        print(f"releasedeck: no driver answered for {locator.describe()}", file=err)
        return exitcodes.UNREACHABLE
    print("releasedeck: stopped following before the release ended", file=err)
    return exitcodes.ROLLED_BACK


async def follow_app(locator: Locator, *, token: str | None, wallboard: bool, refresh: float,
                     release: str) -> int:
    from tui.app import ReleaseApp

    follower = Follower(locator, token=token)
    app = ReleaseApp(None, follower=follower, release=release, read_only=True, wallboard=wallboard,
                     refresh=refresh)
    await app.run_async()
    return exitcodes.PROMOTED


async def follow(locator: Locator, flags: RunFlags, *, out: TextIO, err: TextIO,
                 release: str) -> int:
    """Follow whoever drives: headless lines, the web wallboard, or the app."""
    from tui.seat import token_option

    try:
        token = token_option(flags.token_file)
    except ValueError as exc:
        print(f"releasedeck: {exc}", file=err)
        return exitcodes.USAGE
    if flags.headless:
        return await follow_headless(locator, token=token, timeout=flags.timeout, out=out, err=err)
    return await follow_app(locator, token=token, wallboard=flags.wallboard,
                            refresh=flags.refresh, release=release)


def attach_command(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        locator = locator_for(args.target)
    except SpecError as exc:
        for line in exc.lines():
            print(line, file=err)
        return exitcodes.USAGE
    except Exception as exc:  # e.g. a kubeconfig that cannot be loaded for the Lease
        print(f"releasedeck: {str(exc).removeprefix('releasedeck: ')}", file=err)
        return exitcodes.UNREACHABLE
    release = locator.describe()
    flags = RunFlags.of(args)
    if flags.web:
        from tui.web import serve_web

        return serve_web(flags, err=err)
    try:
        return asyncio.run(follow(locator, flags, out=out, err=err, release=release))
    except KeyboardInterrupt:
        return exitcodes.ROLLED_BACK
