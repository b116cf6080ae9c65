"""The sections that name adapters: [platform], [router] and [metrics].

Each kind's options are checked here, so `releasedeck check` refuses what an adapter would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from strategies.model import frozen_map
from strategies.spec.model import (
    DEFAULT_QUERIES,
    FLAG_LEVERS,
    KUBERNETES_LEVERS,
    METRIC_SOURCES,
    PLATFORM_KINDS,
    ROUTER_KINDS,
    MetricsSpec,
    PlatformSpec,
    ReleaseInfo,
    RouterSpec,
    StrategySpec,
)
from strategies.spec.reader import Reader, check_template, hint, show, toml_key

PLATFORM_OPTIONS: Mapping[str, Mapping[str, Callable[[Any], bool]]] = {
    "local": {
        "command": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        "base_port": lambda v: isinstance(v, int) and 1024 <= v <= 65000,
        "behaviour": lambda v: isinstance(v, dict),
        "ready_timeout": lambda v: isinstance(v, int | float | str),
    },
    "docker": {
        "host": lambda v: isinstance(v, str),
        "images": lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
        "command": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        "env": lambda v: isinstance(v, dict),
        "labels": lambda v: isinstance(v, dict),
        "network_mode": lambda v: isinstance(v, str),
        "port": lambda v: isinstance(v, int),
        "base_port": lambda v: isinstance(v, int) or (
            isinstance(v, dict) and all(isinstance(x, int) for x in v.values())),
        "volumes": lambda v: isinstance(v, dict | list),
        "tls": lambda v: isinstance(v, dict),
        "healthcheck": lambda v: isinstance(v, dict),
        "image": lambda v: isinstance(v, str),
        "ready_timeout": lambda v: isinstance(v, int | float | str),
        "stop_timeout": lambda v: isinstance(v, int | float | str),
        "api_timeout": lambda v: isinstance(v, int | float | str),
        "restart": lambda v: v in ("no", "on-failure", "always", "unless-stopped"),
        "init": lambda v: isinstance(v, bool),
    },
    "kubernetes": {
        "namespace": lambda v: isinstance(v, str),
        "context": lambda v: isinstance(v, str),
        "kubeconfig": lambda v: isinstance(v, str),
        "in_cluster": lambda v: isinstance(v, bool),
        "lever": lambda v: v in KUBERNETES_LEVERS,
        "deployments": lambda v: isinstance(v, dict),
        "deployment": lambda v: isinstance(v, str),
        "service": lambda v: isinstance(v, str),
        "httproute": lambda v: isinstance(v, str),
        "rollout": lambda v: isinstance(v, str),
        "backends": lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
        "images": lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
        "container": lambda v: isinstance(v, str),
        "request_timeout": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v > 0,
    },
}


def read_platform(problems: list, data: Mapping[str, Any]) -> PlatformSpec:
    r = Reader(problems, data, "platform")
    kind = r.text("kind", "local", choices=PLATFORM_KINDS)
    spec = PlatformSpec(
        kind=kind,
        selector=r.text("selector"),
        version_label=r.text("version_label", "version"),
        replicas=r.integer("replicas", 1, low=0, high=1000),
    )
    allowed = PLATFORM_OPTIONS.get(kind, {})
    kind_ok = data.get("kind", "local") in PLATFORM_KINDS
    options: dict[str, Any] = {}
    for key, value in data.items():
        if key in r.seen or not kind_ok:  # options of an unknown kind cannot be judged
            continue
        check = allowed.get(key)
        if check is None:
            owners = [k for k, opts in PLATFORM_OPTIONS.items() if key in opts]
            where = f"; it is a key of platform kind {' or '.join(map(repr, owners))}" if owners else ""
            r.problem(toml_key(key), f"unknown key for platform kind {kind!r}"
                      + (where or hint(key, tuple(allowed) + tuple(r.seen))))
        elif not check(value):
            if key == "lever":
                r.problem(key, f"must be one of {', '.join(KUBERNETES_LEVERS)}, got {show(value)}")
            else:
                r.problem(key, f"has the wrong type: {show(value)}")
        else:
            options[key] = value
    return PlatformSpec(kind=spec.kind, selector=spec.selector, version_label=spec.version_label,
                        replicas=spec.replicas, options=frozen_map(options))


def read_router(problems: list, data: Mapping[str, Any], platform: PlatformSpec) -> RouterSpec:
    r = Reader(problems, data, "router")
    default = {"local": "local", "docker": "haproxy", "kubernetes": "platform"}[platform.kind]
    kind = r.text("kind", default, choices=ROUTER_KINDS)
    options = {k: v for k, v in data.items() if k != "kind"}
    allowed = {
        "local": ("listen", "port"),
        "haproxy": ("socket", "backend", "servers", "stats_url", "frontend_url", "sync"),
        "platform": (),
        "none": (),
        "flagd": ("file",),
        "unleash": ("url", "project", "environment", "token_env", "timeout"),
    }[kind]
    for key in options:
        if key not in allowed:
            r.problem(toml_key(key), f"unknown key for router kind {kind!r}" + hint(key, allowed))
    if kind == "flagd" and not (isinstance(options.get("file"), str) and options["file"].strip()):
        r.problem("file", "is required for router kind 'flagd' (the flagd flag-definition JSON file "
                          "releasedeck writes)")
    if kind == "unleash":
        url = options.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            r.problem("url", f"is required for router kind 'unleash' and must start with http:// or "
                             f"https://, got {show(url) if url is not None else 'nothing'}")
        for key in ("project", "environment", "token_env"):
            if key in options and not (isinstance(options[key], str) and options[key].strip()):
                r.problem(key, f"must be a non-empty string, got {show(options[key])}")
        timeout = options.get("timeout")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)
                                    or timeout <= 0):
            r.problem("timeout", f"must be a number of seconds above 0, got {show(timeout)}")
    return RouterSpec(kind=kind, options=frozen_map(options))


def read_metrics(problems: list, data: Mapping[str, Any], platform: PlatformSpec,
                 router: RouterSpec | None = None) -> MetricsSpec:
    r = Reader(problems, data, "metrics")
    source = r.text("source", "scrape", choices=METRIC_SOURCES)
    url = r.text("url")
    if source == "prometheus" and not url:
        r.problem("url", "is required when source is 'prometheus'")
    if url and not url.startswith(("http://", "https://")):
        r.problem("url", f"must start with http:// or https://, got {url!r}")
    queries = dict(DEFAULT_QUERIES)
    custom = r.table_of("queries")
    for key, value in custom.items():
        if key not in DEFAULT_QUERIES:
            r.problems.append((f"metrics.queries.{toml_key(key)}", "unknown query"
                               + hint(key, tuple(DEFAULT_QUERIES))))
        elif not isinstance(value, str) or not value.strip():
            r.problems.append((f"metrics.queries.{key}", "must be a non-empty PromQL string"))
        elif check_template(r, f"queries.{key}", value):
            queries[key] = value
    spec = MetricsSpec(
        source=source,
        url=url,
        window=r.duration("window", 30.0),
        interval=r.duration("interval", 1.0),
        timeout=r.duration("timeout", 2.0),
        stale_after=r.duration("stale_after", 10.0),
        # A flag lever's versions are the flag's variants: services label them `variant`.
        version_label=r.text("version_label", "variant" if router is not None and router.kind in FLAG_LEVERS
                             else platform.version_label),
        queries=frozen_map(queries),
        metrics_path=r.text("metrics_path", "/metrics"),
        request_metric=r.text("request_metric", "http_requests_total"),
        latency_metric=r.text("latency_metric", "http_request_duration_seconds"),
        error_codes=r.text("error_codes", "5.."),
    )
    if spec.interval <= 0:
        r.problem("interval", "must be greater than 0")
    if spec.window < spec.interval:
        r.problem("window", f"must be at least the interval ({spec.interval:g}s)")
    if spec.stale_after < spec.interval:
        r.problem("stale_after", f"must be at least the interval ({spec.interval:g}s)")
    r.finish()
    return spec

def check_kubernetes_levers(problems: list, platform: PlatformSpec, strategy: StrategySpec,
                       release: ReleaseInfo) -> None:
    """Lever and strategy must fit together; say so at load time, not at the first step."""
    if platform.kind != "kubernetes":
        return
    lever = platform.options.get("lever", "replicas")
    if lever == "service" and strategy.kind != "blue-green":
        problems.append(("platform.lever", "'service' switches all traffic at once: use it with strategy "
                         f"kind 'blue-green', or lever 'replicas' or 'httproute' for {strategy.kind!r}"))
    if lever == "rolling":
        if strategy.kind != "rolling":
            problems.append(("platform.lever", f"'rolling' drives a rolling update: use it with strategy kind "
                             f"'rolling', not {strategy.kind!r}"))
        images = platform.options.get("images") or {}
        if release.candidate and release.candidate not in images:
            problems.append(("platform.images", f"lever 'rolling' needs the candidate's image "
                             f"(images.{release.candidate} = \"...\")"))


def check_flag_lever(problems: list, router: RouterSpec, strategy: StrategySpec, release: ReleaseInfo) -> None:
    """A flag lever moves users between a flag's variants inside one workload: say what it needs."""
    if router.kind in FLAG_LEVERS:
        if strategy.kind != "flag":
            problems.append(("router.kind", f"{router.kind!r} moves a feature flag: use it with strategy "
                             f"kind 'flag', not {strategy.kind!r}"))
        elif not strategy.workload:
            problems.append(("strategy.workload", f"is required with router kind {router.kind!r}: the "
                             "version whose instances hold both code paths (baseline and candidate "
                             "then name the flag's variants)"))
        elif strategy.workload in (release.baseline, release.candidate):
            problems.append(("strategy.workload", f"must differ from the variants {release.baseline!r} "
                             f"and {release.candidate!r}: it names what runs, they name the flag's "
                             "variants"))
    elif strategy.workload or strategy.kill_switch or strategy.drop_targeting:
        key = "workload" if strategy.workload else "kill_switch" if strategy.kill_switch else "drop_targeting"
        problems.append((f"strategy.{key}", "needs a flag lever: [router] kind = \"flagd\" or \"unleash\""))
