"""`releasedeck demo --headless` on a flag release: a flagd file, no server, real processes.

The CLI runs as a subprocess, as a pipeline would; the flag file it leaves behind is read back
with the real OpenFeature SDK, as a service would read it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext

from tests.demo.test_demo_headless import demo, names

SPEC = Path(__file__).resolve().parent / "fast_flag_release.toml"
SPEC_BOUNDS = {"error-rate": 0.05, "latency-p99": 0.4}  # the gates' `max` in that spec


def flag_release(tmp_path: Path, *, faulted: bool = False) -> tuple[str, Path]:
    """The spec in tmp_path; `faulted`: its steps hold until a gate decides, so a fault injected
    at N seconds is judged before a loaded machine's slow ticks could walk the ramp to 100 %."""
    spec = tmp_path / "release.toml"
    shutil.copy(SPEC, spec)
    if faulted:
        text = spec.read_text()
        assert 'hold = "3s"' in text
        spec.write_text(text.replace('hold = "3s"', 'hold = "1h"'))
    return str(spec), tmp_path / "flags.json"


def users_on(path: Path, domain: str) -> int:
    """How many of 1,000 users the real SDK gives the new code path from this file."""
    api.set_provider_and_wait(FlagdProvider(resolver_type=ResolverType.FILE,
                                            offline_flag_source_path=str(path)), domain=domain)
    try:
        client = api.get_client(domain)
        return sum(client.get_boolean_value("new-checkout", False, EvaluationContext(targeting_key=f"u{i}"))
                   for i in range(1000))
    finally:
        api.clear_providers()


def test_healthy_flag_release_ramps_the_flag_and_promotes(tmp_path: Path) -> None:
    spec, flags = flag_release(tmp_path)
    code, events, err = demo("--spec", spec, "--timeout", "90")
    assert code == 0, err
    seen = names(events)
    assert seen.index("started") < seen.index("promoting") < seen.index("promoted")
    assert "rolling_back" not in seen
    steps = [e["weight"] for e in events if e["event"] in ("started", "step", "promoting")]
    assert steps == [20, 50, 100, 100]
    assert "off→on promoted" in err
    flag = json.loads(flags.read_text())["flags"]["new-checkout"]
    assert flag["state"] == "ENABLED"
    assert flag["targeting"]["fractional"][1:] == [["on", 100], ["off", 0]]
    assert users_on(flags, "healthy") == 1000


def test_faulted_flag_path_is_rolled_back_and_switched_off(tmp_path: Path) -> None:
    spec, flags = flag_release(tmp_path, faulted=True)
    code, events, err = demo("--spec", spec, "--fault-at", "4", "--timeout", "90")
    assert code == 1, err
    seen = names(events)
    assert "promoted" not in seen
    assert seen.index("fault_injected") < seen.index("rolling_back") < seen.index("rolled_back")
    rolled = next(e for e in events if e["event"] == "rolled_back")
    assert rolled["gate"] in ("error-rate", "latency-p99")
    assert rolled["value"] > rolled["threshold"]
    assert rolled["weight"] == 0
    # The fault hit the flagged path only: the baseline variant, same processes, stayed healthy.
    assert rolled["baseline"] is not None and rolled["baseline"] <= SPEC_BOUNDS[rolled["gate"]]
    flag = json.loads(flags.read_text())["flags"]["new-checkout"]
    assert flag["state"] == "DISABLED"  # kill_switch = true
    assert users_on(flags, "faulted") == 0


@pytest.mark.prometheus
@pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus binary")
def test_faulted_flag_path_is_rolled_back_through_a_real_prometheus(tmp_path: Path) -> None:
    """Prometheus groups the one workload's series `by (variant)`: the same gates, the same end."""
    spec, flags = flag_release(tmp_path, faulted=True)
    code, events, err = demo("--spec", spec, "--with-prometheus", "--fault-at", "6", "--timeout", "90")
    assert code == 1, err
    seen = names(events)
    assert seen.index("fault_injected") < seen.index("rolling_back") < seen.index("rolled_back")
    rolled = next(e for e in events if e["event"] == "rolled_back")
    assert rolled["value"] > rolled["threshold"]
    assert rolled["baseline"] is not None and rolled["baseline"] <= SPEC_BOUNDS[rolled["gate"]]
    assert json.loads(flags.read_text())["flags"]["new-checkout"]["state"] == "DISABLED"
