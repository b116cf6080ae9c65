"""Each adapter kind owns its options (strategies.registry): `releasedeck check` reports every
problem `watch` would hit at start-up, all in one run, with file, field and reason; `watch`
refuses the same spec with the same lines, before anything is started."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from strategies.registry import REGISTRY, kinds
from strategies.spec import ALERT_KINDS, METRIC_SOURCES, PLATFORM_KINDS, ROUTER_KINDS
from tui import exitcodes
from tui.check import run_check
from tui.watch import watch_command

BAD = """
[release]
service = "checkout"
baseline = "v1"
candidate = "v2"

[platform]
kind = "docker"
image = "checkout:{version}"
ready_timeout = "soon"
stop_timeout = true
healthcheck = { intervall = "2s", timeout = "fast", test = "wget -q" }
tls = { ca_cert = "ca.pem", verfy = false }
imagez = "checkout"

[router]
kind = "haproxy"
socket = "/run/haproxy.sock"
sync = "yes"
weight = 5

[strategy]
steps = [20, 100]
"""

EXPECTED = {
    "platform.ready_timeout": "expected a duration like",
    "platform.stop_timeout": "expected a duration like",
    "platform.healthcheck.intervall": "unknown key",
    "platform.healthcheck.timeout": "expected a duration like",
    "platform.healthcheck.test": "must be a list",
    "platform.tls.verfy": "unknown key",
    "platform.imagez": "unknown key for platform kind 'docker'",
    "router.sync": "has the wrong type",
    "router.weight": "unknown key for router kind 'haproxy'",
}


def problem_lines(text: str, path: Path) -> list[str]:
    prefix = f"{path}: "
    return [line for line in text.splitlines() if line.startswith(prefix) and ": " in line[len(prefix):]]


def test_check_reports_every_bad_adapter_option_in_one_run(tmp_path: Path) -> None:
    spec = tmp_path / "release.toml"
    spec.write_text(BAD)
    out, err = io.StringIO(), io.StringIO()
    assert run_check([str(spec)], out, err) == exitcodes.USAGE
    lines = problem_lines(err.getvalue(), spec)
    found = {line[len(f"{spec}: "):].split(": ", 1)[0]: line.split(": ", 2)[2] for line in lines}
    assert set(found) == set(EXPECTED), lines
    for where, words in EXPECTED.items():
        assert words in found[where], (where, found[where])
    assert err.getvalue().splitlines()[-1] == f"{spec}: {len(EXPECTED)} problems"
    assert out.getvalue() == "" and "Traceback" not in err.getvalue()


def test_watch_refuses_the_same_spec_with_the_same_lines(tmp_path: Path) -> None:
    spec = tmp_path / "release.toml"
    spec.write_text(BAD)
    check_err = io.StringIO()
    run_check([str(spec)], io.StringIO(), check_err)
    watch_err = io.StringIO()
    args = argparse.Namespace(spec=str(spec), headless=True, observe=False, until="done",
                              timeout=5.0, journal=None, fresh=False, record=None,
                              read_only=False)
    assert watch_command(args, out=io.StringIO(), err=watch_err) == exitcodes.USAGE
    assert watch_err.getvalue().splitlines() == problem_lines(check_err.getvalue(), spec)
    assert not (tmp_path / ".release.releasedeck.journal").exists()  # nothing was started


def test_kind_lists_come_from_the_registry_once() -> None:
    assert PLATFORM_KINDS == kinds("platform") == ("local", "docker", "kubernetes")
    assert kinds("router") == ROUTER_KINDS and kinds("metrics source") == METRIC_SOURCES
    assert kinds("alert") == ALERT_KINDS
    pairs = [(k.layer, k.kind) for k in REGISTRY]
    assert len(pairs) == len(set(pairs))  # one entry per kind
