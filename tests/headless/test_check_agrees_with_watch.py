"""`check` refuses what `watch` refuses: a router that cannot steer the local stack on
`[platform] kind = "local"` is one line and exit 2 from both, the same line (real processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SPEC = """
[release]
service = "checkout"
baseline = "v1"
candidate = "v2"

[platform]
kind = "local"

[router]
kind = "haproxy"
socket = "/nonexistent/admin.sock"
backend = "checkout"
servers = { v1 = ["v1a"], v2 = ["v2a"] }

[strategy]
kind = "canary"
steps = [10, 100]
hold = "5s"

[[gate]]
metric = "error_rate"
max = 0.05
"""


def releasedeck(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "tui.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_check_and_watch_refuse_a_foreign_router_on_local_alike(tmp_path: Path) -> None:
    spec = tmp_path / "release.toml"
    spec.write_text(SPEC)
    checked = releasedeck("check", str(spec))
    watched = releasedeck("watch", str(spec), "--headless", "--journal", str(tmp_path / "j"))
    assert checked.returncode == 2, checked.stderr
    assert watched.returncode == 2, watched.stderr
    line = f"{spec}: router.kind: 'haproxy' cannot steer the local demo service"
    assert checked.stderr.splitlines()[0].startswith(line), checked.stderr
    assert watched.stderr.splitlines() == [checked.stderr.splitlines()[0]], watched.stderr
    assert "Traceback" not in checked.stderr + watched.stderr
    assert not (tmp_path / "j").exists()  # nothing started, no journal written


def test_examples_still_pass_check() -> None:
    examples = sorted(str(p) for p in (ROOT / "examples").rglob("*.toml"))
    done = releasedeck("check", *examples)
    assert done.returncode == 0, done.stderr


def test_check_and_watch_refuse_no_local_instances_alike(tmp_path: Path) -> None:
    """`replicas = 0` on the local platform passed `check`; `watch` then refused it at start-up
    with exit 3 (as if the platform were unreachable). Now both: the same line, exit 2."""
    spec = tmp_path / "release.toml"
    spec.write_text(SPEC.replace('kind = "local"\n', 'kind = "local"\nreplicas = 0\n').replace(
        '[router]\nkind = "haproxy"\nsocket = "/nonexistent/admin.sock"\nbackend = "checkout"\n'
        'servers = { v1 = ["v1a"], v2 = ["v2a"] }\n', ""))
    checked = releasedeck("check", str(spec))
    watched = releasedeck("watch", str(spec), "--headless", "--journal", str(tmp_path / "j"))
    line = f"{spec}: platform.replicas: must be at least 1"
    assert checked.returncode == 2 and checked.stderr.startswith(line), checked.stderr
    assert watched.returncode == 2 and watched.stderr.startswith(line), watched.stderr
    assert not (tmp_path / "j").exists()
