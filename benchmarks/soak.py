"""Soak: releases back to back on the real local stack for a long time, with a fault every few
minutes, and a count of everything that went wrong.

    .venv/bin/python benchmarks/soak.py                 # 30 minutes, a fault every 150 s
    .venv/bin/python benchmarks/soak.py --minutes 2 --fault-every 20 --json
    .venv/bin/python benchmarks/soak.py --minutes 30 --fault-every 120 --keep-journal soak.journal
    .venv/bin/python benchmarks/soak.py --each-fault-once --minutes 5 --fault-every 12 --json

What runs: `releasedeck watch SPEC --headless` (a subprocess) over the local stack — two demo
service processes, the built-in router, load — with metrics from a real Prometheus the soak
starts itself (file_sd targets kept in step with the instances' ports). Each release is a healthy canary: the only right
outcome is "promoted" (exit 0); the next release starts with --fresh.

Faults, in turn: kill -9 of a service instance, kill -9 of the router, a Prometheus outage
(SIGSTOP for 8 s, then SIGCONT), and kill -9 of releasedeck itself followed by a resume.

Reported: releases promoted and wrong outcomes (any other exit of a run the soak did not kill),
repeated actions (an action id confirmed twice, a decision journaled twice), and, every minute,
the processes and open file descriptors of the whole tree (the soak, releasedeck, its children,
Prometheus): growth is the peak of the last third of the samples over the peak of the first.
Needs Debian's `prometheus` on PATH. Bounded: every wait has a deadline.

`--each-fault-once` (the suite's short soak, tests/faults/test_soak.py): every fault once, then
no more; the soak ends when the release running after the last fault has ended (promoted is the
only right outcome), `--minutes` being only a cap (`finished` false if it was hit). Its samples
are taken where nothing is in flight, so they count what a leak adds to, not what a loaded
machine happens to be doing: once before the first release and after each release, when
releasedeck and all its children have exited. (Per-minute samples, as the long soak takes,
swung 25–79 fds with the traffic in flight and failed the short soak with no leak.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collectors.prometheus_server import LocalPrometheus  # noqa: E402

SPEC = """
[release]
service = "checkout"
baseline = "v1"
candidate = "v2"

[platform]
kind = "local"
replicas = 1
base_port = {base}
behaviour = {{ v1 = {{ latency_ms = 3 }}, v2 = {{ latency_ms = 3 }} }}

[router]
kind = "local"
port = {router}

[metrics]
source = "prometheus"
url = "{prometheus}"
interval = "1s"
window = "10s"
stale_after = "5s"
timeout = "2s"

[strategy]
kind = "canary"
steps = [10, 25, 50, 100]
hold = "{hold}"
scale_down_delay = "2s"

[[gate]]
name = "errors"
metric = "error_rate"
max = 0.05
for = "3s"
min_requests = 20
severity = "critical"
"""

FAULTS = ("instance", "router", "prometheus", "driver")
OUTAGE = 8.0  # seconds: below 3 × stale_after, so a run holds and carries on, never exit 3


@dataclass
class Sample:
    at: float  # seconds since the soak started
    processes: int
    fds: int


@dataclass
class Report:
    seconds: float = 0.0
    releases_promoted: int = 0
    wrong_outcomes: list[str] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    resumes: int = 0
    reconciles: int = 0
    finished: bool = True  # --each-fault-once: the last release ended before the cap
    repeated_actions: int = 0
    repeated_decisions: int = 0
    samples: list[Sample] = field(default_factory=list)

    def growth(self) -> dict[str, int]:
        third = max(1, len(self.samples) // 3)
        if len(self.samples) < 2:
            return {"processes": 0, "fds": 0}
        first, last = self.samples[:third], self.samples[-third:]
        return {"processes": max(s.processes for s in last) - max(s.processes for s in first),
                "fds": max(s.fds for s in last) - max(s.fds for s in first)}

    def ok(self, fd_slack: int = 16) -> bool:
        growth = self.growth()
        return (self.finished and not self.wrong_outcomes and not self.repeated_actions
                and not self.repeated_decisions and growth["processes"] <= 0
                and growth["fds"] <= fd_slack)

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["faults"] = dict(self.faults)
        body["growth"] = self.growth()
        body["ok"] = self.ok()
        return body


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_pair() -> int:
    """A base port with the next one free too (v1 on base, v2 on base + 1)."""
    for _ in range(50):
        base = free_port()
        if base < 65000:
            with contextlib.suppress(OSError), socket.socket() as sock:
                sock.bind(("127.0.0.1", base + 1))
                return base
    raise RuntimeError("no two free ports in a row on 127.0.0.1")


def tree(pid: int) -> list[psutil.Process]:
    with contextlib.suppress(psutil.NoSuchProcess):
        return [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return []


def measure(started: float) -> Sample:
    procs = [p for p in tree(os.getpid()) if _alive(p)]
    fds = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            fds += proc.num_fds()
    return Sample(round(time.monotonic() - started, 1), len(procs), fds)


def _pairs(proc: psutil.Process) -> list[tuple[str, str]]:
    try:
        argv = proc.cmdline()
    except psutil.Error:
        return []
    return list(itertools.pairwise(argv))


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class Soak:
    def __init__(self, workdir: Path, minutes: float, fault_every: float, hold: str,
                 log: Any, *, each_fault_once: bool = False):
        self.workdir = workdir
        self.minutes = minutes
        self.each_fault_once = each_fault_once
        self.fault_every = fault_every
        self.hold = hold
        self.log = log
        self.report = Report()
        self.base = free_pair()
        self.router = free_port()
        self.watch: subprocess.Popen[bytes] | None = None
        self.leftovers: list[psutil.Process] = []  # the running watch's tree, last seen
        self.prometheus: LocalPrometheus | None = None

    @property
    def spec(self) -> Path:
        return self.workdir / "release.toml"

    @property
    def journal(self) -> Path:
        return self.workdir / ".release.releasedeck.journal"

    def say(self, text: str) -> None:
        print(f"soak {time.strftime('%H:%M:%S')} {text}", file=self.log, flush=True)

    def start_watch(self, fresh: bool) -> None:
        argv = [sys.executable, "-m", "tui.cli", "watch", str(self.spec), "--headless"]
        if fresh:
            argv.append("--fresh")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.watch = subprocess.Popen(argv, cwd=self.workdir, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    async def wait_gone(self, procs: list[psutil.Process], what: str, limit: float = 20.0) -> None:
        deadline = time.monotonic() + limit
        while any(_alive(p) for p in procs) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        left = [p.pid for p in procs if _alive(p)]
        if left:
            self.report.wrong_outcomes.append(f"{what}: processes still alive after "
                                              f"{limit:g}s: {left}")

    def children(self, word: str) -> list[psutil.Process]:
        if self.watch is None:
            return []
        out = []
        for proc in tree(self.watch.pid)[1:]:
            with contextlib.suppress(psutil.Error):
                if word in " ".join(proc.cmdline()):
                    out.append(proc)
        return out

    async def fault(self, kind: str) -> None:
        self.report.faults[kind] += 1
        self.say(f"fault: {kind}")
        if kind == "instance":
            for proc in self.children("demo_service")[-1:]:  # the candidate's, started last
                with contextlib.suppress(psutil.Error):
                    proc.kill()
        elif kind == "router":
            for proc in self.children("router_process"):
                with contextlib.suppress(psutil.Error):
                    proc.kill()
        elif kind == "prometheus" and self.prometheus is not None:
            pid = self.prometheus.pid
            if pid is not None:
                os.kill(pid, signal.SIGSTOP)
                try:
                    await asyncio.sleep(OUTAGE)
                finally:
                    os.kill(pid, signal.SIGCONT)
        elif kind == "driver" and self.watch is not None:
            below = tree(self.watch.pid)
            self.watch.kill()
            self.watch.wait(30)
            self.close_streams()
            await self.wait_gone(below, "kill -9 of releasedeck")
            self.report.resumes += 1
            self.start_watch(fresh=False)

    def sync_targets(self) -> None:
        """Prometheus scrapes the instances releasedeck runs now: a restarted instance comes
        back on another port (read from its command line), like file_sd in the demo."""
        ports = sorted({f"127.0.0.1:{arg}" for proc in self.children("demo_service")
                        for flag, arg in _pairs(proc) if flag == "--port"})
        text = json.dumps([{"targets": ports}] if ports else [])
        assert self.prometheus is not None
        path = self.prometheus.targets.path
        if not path.exists() or path.read_text() != text:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(path)

    def close_streams(self) -> None:
        if self.watch is not None and self.watch.stderr is not None:
            self.watch.stderr.close()

    async def ended(self, started: float, next_one: bool = True) -> None:
        """The watch exited by itself: judge the outcome, start the next release (in the
        each-fault-once mode: a quiescent sample first, once releasedeck's tree is gone)."""
        assert self.watch is not None
        if self.each_fault_once:
            await self.wait_gone(self.leftovers, "a release's processes after its exit", limit=90)
            self.report.samples.append(measure(started))
        code = self.watch.returncode
        err = self.watch.stderr.read().decode(errors="replace").strip() \
            if self.watch.stderr else ""
        self.close_streams()
        last = err.splitlines()[-1] if err else ""
        if code == 0:
            self.report.releases_promoted += 1
            self.say(f"promoted: {last[:160]}")
        else:
            self.report.wrong_outcomes.append(f"exit {code}: {last[:300]}")
            self.say(f"WRONG exit {code}: {last[:300]}")
        if next_one:
            self.start_watch(fresh=True)

    async def run(self) -> Report:
        started = time.monotonic()
        deadline = started + self.minutes * 60
        self.prometheus = LocalPrometheus(scrape_interval="1s")
        await self.prometheus.start()
        try:
            self.sync_targets()
            self.spec.write_text(SPEC.format(base=self.base, router=self.router,
                                             prometheus=self.prometheus.url, hold=self.hold))
            if self.each_fault_once:
                self.report.samples.append(measure(started))  # quiescent: nothing runs yet
            self.start_watch(fresh=True)
            next_fault = started + self.fault_every
            next_sample = started + 60.0  # the first minute is warm-up: the stack starting
            turn = 0
            while time.monotonic() < deadline:
                now = time.monotonic()
                if now >= next_sample and not self.each_fault_once:
                    self.report.samples.append(measure(started))
                    next_sample += 60.0
                self.sync_targets()
                all_done = self.each_fault_once and turn >= len(FAULTS)
                if self.watch is not None and self.watch.poll() is not None:
                    await self.ended(started, next_one=not all_done)
                    if all_done:
                        break
                elif now >= next_fault and not all_done:
                    await self.fault(FAULTS[turn % len(FAULTS)])
                    turn += 1
                    next_fault = time.monotonic() + self.fault_every
                elif self.watch is not None:
                    self.leftovers = tree(self.watch.pid)[1:]
                await asyncio.sleep(0.2)
            else:
                self.report.finished = not self.each_fault_once
            if not self.each_fault_once:
                self.report.samples.append(measure(started))
        finally:
            self.stop_watch()
            self.close_streams()
            await self.prometheus.stop()
        self.report.seconds = round(time.monotonic() - started, 1)
        self.audit()
        return self.report

    def stop_watch(self) -> None:
        """A `watch` still running at the end is asked to stop (30 s to shut down cleanly),
        then killed: the soak never leaves a driver behind."""
        if self.watch is not None and self.watch.poll() is None:
            self.watch.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.watch.wait(30)
            if self.watch.poll() is None:
                self.watch.kill()

    def audit(self) -> None:
        """Repeated actions and decisions, from the journal every run wrote."""
        done: Counter[str] = Counter()
        decisions: Counter[tuple[str, int]] = Counter()
        if self.journal.exists():
            for line in self.journal.read_text(errors="replace").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line torn by kill -9: never acted on
                decisions[(str(record.get("run")), int(record.get("seq", -1)))] += 1
                if record.get("kind") == "reconcile":
                    self.report.reconciles += 1
                if record.get("kind") == "action_done":
                    for item in record.get("evidence", ()):
                        done[str(item.get("action"))] += 1
        self.report.repeated_actions = sum(n - 1 for n in done.values() if n > 1)
        self.report.repeated_decisions = sum(n - 1 for n in decisions.values() if n > 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--fault-every", type=float, default=150.0, metavar="SECONDS")
    parser.add_argument("--hold", default="20s", help="hold of each canary step")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--keep-journal", type=Path, metavar="FILE",
                        help="copy the soak's journal here at the end (to read it afterwards)")
    parser.add_argument("--each-fault-once", action="store_true",
                        help="every fault once, then end with the release running after the "
                             "last one (--minutes is a cap); samples only when nothing runs")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="releasedeck-soak-") as tmp:
        soak = Soak(Path(tmp), args.minutes, args.fault_every, args.hold, sys.stderr,
                    each_fault_once=args.each_fault_once)
        report = asyncio.run(soak.run())
        if args.keep_journal is not None and soak.journal.exists():
            shutil.copyfile(soak.journal, args.keep_journal)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        growth = report.growth()
        print(f"soak {report.seconds:.0f}s: {report.releases_promoted} releases promoted, "
              f"{len(report.wrong_outcomes)} wrong outcomes, faults {dict(report.faults)}, "
              f"{report.resumes} resumes, {report.reconciles} reconcile corrections, "
              f"{report.repeated_actions} repeated actions, {report.repeated_decisions} "
              f"repeated decisions; processes {[s.processes for s in report.samples]}, fds "
              f"{[s.fds for s in report.samples]} (growth {growth}) → "
              f"{'OK' if report.ok() else 'FAILED'}")
        for line in report.wrong_outcomes:
            print(f"  wrong: {line}")
    return 0 if report.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
