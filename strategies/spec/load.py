"""Reading a whole spec: TOML text → sections → one ReleaseSpec, or one SpecError listing all problems."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from strategies.files import TooLarge, read_bounded
from strategies.model import frozen_map
from strategies.spec.adapters import (
    check_flag_lever,
    check_kubernetes_cohorts,
    check_kubernetes_levers,
    kubernetes_cohorts,
    read_metrics,
    read_platform,
    read_router,
    run_problems,
)
from strategies.spec.cohorts import check_cohort_router
from strategies.spec.errors import SpecError
from strategies.spec.model import ReleaseInfo, ReleaseSpec
from strategies.spec.notify import read_alerts, read_webhooks
from strategies.spec.rollout import read_gates, read_release, read_strategy
from strategies.wording import toml_key, unknown_key_hint

_TOP = ("release", "platform", "router", "metrics", "strategy", "gate", "alert", "webhook", "demo")


def parse_spec(data: Mapping[str, Any], path: str = "<spec>") -> ReleaseSpec:
    """Build a ReleaseSpec from parsed TOML; raises SpecError listing every problem."""
    problems: list[tuple[str, str]] = []
    for key in data:
        if key not in _TOP:
            problems.append((toml_key(key), "unknown section" + unknown_key_hint(key, _TOP)))

    def section(name: str) -> Mapping[str, Any]:
        value = data.get(name, {})
        if not isinstance(value, dict):
            problems.append((name, "must be a table"))
            return {}
        return value

    if "release" not in data:
        problems.append(("release", "section is required (service, baseline and candidate)"))
        release = ReleaseInfo(service="", baseline="", candidate="")
    else:
        release = read_release(problems, section("release"))
    platform = read_platform(problems, section("platform"))
    router = read_router(problems, section("router"), platform)
    metrics = read_metrics(problems, section("metrics"), platform, router)
    strategy = read_strategy(problems, section("strategy"))
    gates = read_gates(problems, data.get("gate"))
    alerts = read_alerts(problems, data.get("alert"))
    webhooks = read_webhooks(problems, data.get("webhook"))
    check_kubernetes_levers(problems, platform, strategy, release)
    check_flag_lever(problems, router, strategy, release)
    if kubernetes_cohorts(platform, router):
        check_kubernetes_cohorts(problems, strategy)
    else:
        check_cohort_router(problems, router, strategy)
    if metrics.source == "haproxy" and (router.kind != "haproxy"
                                        or not router.options.get("stats_url")):
        problems.append(("metrics.source", "'haproxy' reads HAProxy's exporter: it needs "
                         "[router] kind = \"haproxy\" with stats_url"))
    if problems:
        raise SpecError(path, problems)
    return ReleaseSpec(
        path=path, release=release, platform=platform, router=router, metrics=metrics,
        strategy=strategy, gates=gates, alerts=alerts, webhooks=webhooks,
        extra=frozen_map({"demo": data.get("demo", {})}),
    )


MAX_SPEC_BYTES = 1_000_000  # a release spec is a page of TOML; anything this big is a mistake


def load_runnable_spec(path: str | Path) -> ReleaseSpec:
    """`load_spec`, and refused too (SpecError) for what a run refuses beyond the spec's shape
    (`run_problems`): the one loading `check`, `watch` and `demo --spec` share, so the three
    say the same line for the same spec."""
    spec = load_spec(path)
    problems = run_problems(spec.platform, spec.router)
    if problems:
        raise SpecError(str(path), problems)
    return spec


def load_spec(path: str | Path) -> ReleaseSpec:
    """Read and validate a release.toml; raises SpecError (file unreadable or invalid)."""
    where = str(path)
    try:
        # bounded and regular files only: a FIFO would block the open, /dev/zero never ends
        raw = read_bounded(path, MAX_SPEC_BYTES)
    except TooLarge:
        raise SpecError(where, [("", f"too large for a release spec: more than "
                                     f"{MAX_SPEC_BYTES} bytes (the limit)"
                                     )]) from None
    except OSError as exc:
        raise SpecError(where, [("", f"cannot read file: {exc.strerror or exc}")]) from exc
    except ValueError as exc:
        raise SpecError(where, [("", f"{exc}; name a spec file")]) from None
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark (Notepad writes one) is not TOML
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError(where, [(f"line {line}", f"not UTF-8 text (byte 0x{raw[exc.start]:02x} "
                                                 f"at offset {exc.start}): a TOML spec is UTF-8")]
                        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(where, [_toml_problem(text, exc)]) from exc
    except RecursionError:
        raise SpecError(where, [("", "not valid TOML: arrays or tables nested too deeply")]
                        ) from None
    return parse_spec(data, where)


def _toml_problem(text: str, exc: tomllib.TOMLDecodeError) -> tuple[str, str]:
    """Where the TOML broke, with the offending line quoted so it can be found at a glance."""
    message = str(exc)
    found = re.search(r"\(at line (\d+), column (\d+)\)", message)
    if found is None:
        return ("", f"not valid TOML: {message}")
    line, column = int(found.group(1)), int(found.group(2))
    reason = message[: found.start()].strip()
    lines = text.splitlines()
    quoted = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    shown = f": {quoted[:80]}" if quoted else ""
    return (f"line {line}, column {column}", f"not valid TOML ({reason}){shown}")
