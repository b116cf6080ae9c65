"""The embedded default: the release `releasedeck demo` runs, one spec per strategy kind.

Holds and windows are short so a newcomer sees a whole release in about a minute. The gates
decide on evidence (anytime-valid sequential tests at confidence 0.99, no `for`): an injected
fault rolls back within seconds, and a healthy candidate is not rolled back by noise.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import tomllib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the command line imports this module for its defaults: kept light
    from strategies.spec import ReleaseSpec

_COMMON = """
[release]
service = "{service}"
baseline = "{baseline}"
candidate = "{candidate}"

[platform]
kind = "local"
replicas = {replicas}
# v2's checkout converts better: what the A/B demo finds out
behaviour.v1 = {{ latency_ms = 20, error_ratio = 0.002, conversion = 0.10 }}
behaviour.v2 = {{ latency_ms = 18, error_ratio = 0.002, conversion = 0.20 }}

[metrics]
source = "{source}"
{url_line}
interval = "1s"
window = "10s"
timeout = "2s"
stale_after = "5s"

[[gate]]
name = "error-rate"
metric = "error_rate"
max = 0.05
severity = "critical"
min_requests = 20

[[gate]]
name = "latency-p99"
metric = "latency_p99"
max = 0.4
severity = "critical"
min_requests = 20

[[gate]]
name = "latency-p95-vs-baseline"
metric = "latency_p95"
max_ratio = 3.0
severity = "warning"
min_requests = 20
"""

STRATEGIES = {
    "canary": """
[strategy]
kind = "canary"
steps = [10, 25, 50, 100]
hold = "8s"
scale_down_delay = "2s"
""",
    "blue-green": """
[strategy]
kind = "blue-green"
preview_hold = "3s"
hold = "15s"
scale_down_delay = "3s"
""",
    "rolling": """
[strategy]
kind = "rolling"
max_surge = 1
max_unavailable = 0
hold = "8s"
scale_down_delay = "2s"
""",
    "ab": """
[strategy]
kind = "ab"
split = 50
duration = "90s"
hold = "5s"
scale_down_delay = "2s"
sticky = { header = "X-User-Id" }
experiment = { success = "checkout_orders_total", trials = "checkout_visits_total", confidence = 0.95 }
""",
    "ring": """
[strategy]
kind = "ring"
hold = "8s"
scale_down_delay = "2s"
sticky = { header = "X-User-Id" }
rings = [
  { name = "staff", match = { header = "X-User-Group", values = ["staff"] } },
  { name = "early", weight = 20 },
  { name = "region", weight = 50 },
  { name = "everyone", weight = 100 },
]
""",
    "dark": """
[strategy]
kind = "canary"
steps = [{ dark = 50, name = "dark", hold = "8s" }, 10, 50, 100]
hold = "8s"
scale_down_delay = "2s"
""",
    "flag": """
[strategy]
kind = "flag"
flag = "new-checkout"
workload = "v2"
start_weight = 10
step_weight = 20
max_weight = 70
hold = "6s"
scale_down_delay = "2s"
kill_switch = true

[router]
kind = "flagd"
file = {flag_file}
""",
}

DEFAULT_TARGETS = os.path.join(tempfile.gettempdir(), "releasedeck-demo-targets.json")
"""`demo --targets-file`'s default: the file_sd file a Prometheus reads to find the instances."""
SERVICE = "checkout"
"""The demo's release, unless its metrics go to a Prometheus through a targets file of the
user's choosing (`demo_service`)."""


def demo_service(targets_file: str | None, default_targets: str = DEFAULT_TARGETS) -> str:
    """The built-in demo's release name. Demos that share one Prometheus (`--prometheus URL`)
    are told apart by their targets file: the lease sits beside it, so a second demo on the same
    file is refused, and one on another file must not label its metrics as the first's (the
    gates would read both demos' requests as one). So the default file keeps "checkout" and any
    other gets "checkout-" and six hex digits of its absolute path."""
    if targets_file is None:
        return SERVICE
    path, default = os.path.abspath(targets_file), os.path.abspath(default_targets)
    if path == default:
        return SERVICE
    return f"{SERVICE}-{hashlib.sha256(path.encode()).hexdigest()[:6]}"


FAULT = {"error_ratio": 0.5, "latency_ms": 600}
"""What `f` / --fault-at does to the candidate: half its requests fail, and slowly."""


def default_flag_file() -> str:
    """Where the flag demo keeps its flagd file when the caller names none (one per process)."""
    return os.path.join(tempfile.gettempdir(), f"releasedeck-demo-{os.getpid()}", "flags.json")


def demo_spec_text(strategy: str = "canary", prometheus_url: str | None = None,
                   flag_file: str = "", service: str = SERVICE) -> str:
    """The flag demo is one workload (v2) holding both code paths; its versions are the flag's
    variants "off" and "on", and the flagd file it ramps is `flag_file`. `service` names the
    release (and labels the instances' metrics)."""
    replicas = 3 if strategy == "rolling" else 1
    source = "prometheus" if prometheus_url else "scrape"
    url_line = f'url = "{prometheus_url}"' if prometheus_url else ""
    baseline, candidate = ("off", "on") if strategy == "flag" else ("v1", "v2")
    return _COMMON.format(service=service, replicas=replicas, source=source, url_line=url_line,
                          baseline=baseline, candidate=candidate) + \
        STRATEGIES[strategy].replace("{flag_file}", json.dumps(flag_file or default_flag_file()))


def demo_spec(strategy: str = "canary", prometheus_url: str | None = None,
              flag_file: str = "", service: str = SERVICE) -> ReleaseSpec:
    text = demo_spec_text(strategy, prometheus_url, flag_file, service)
    from strategies.spec import parse_spec

    return parse_spec(tomllib.loads(text), f"<embedded demo: {strategy}>")
