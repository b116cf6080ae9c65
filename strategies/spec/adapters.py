"""The sections that name adapters: [platform], [router] and [metrics].

Each kind's options are checked here, so `releasedeck check` refuses what an adapter would.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strategies.model import frozen_map
from strategies.registry import PLATFORM, ROUTER, find
from strategies.spec.model import (
    DEFAULT_QUERIES,
    FLAG_LEVERS,
    METRIC_SOURCES,
    PLATFORM_KINDS,
    ROUTER_KINDS,
    MetricsSpec,
    PlatformSpec,
    ReleaseInfo,
    RouterSpec,
    StrategySpec,
)
from strategies.spec.reader import Reader, check_template
from strategies.wording import hint, toml_key


def read_platform(problems: list, data: Mapping[str, Any]) -> PlatformSpec:
    r = Reader(problems, data, "platform")
    kind = r.text("kind", "local", choices=PLATFORM_KINDS)
    spec = PlatformSpec(
        kind=kind,
        selector=r.text("selector"),
        version_label=r.text("version_label", "version"),
        replicas=r.integer("replicas", 1, low=0, high=1000),
    )
    options = {key: value for key, value in data.items() if key not in r.seen}
    adapter = find(PLATFORM, kind)
    if adapter is not None and data.get("kind", "local") in PLATFORM_KINDS:
        # options of an unknown kind cannot be judged; the kind's own schema judges the rest
        for where, what in adapter.check(options, common=tuple(r.seen)):
            r.problem(where, what)
    return PlatformSpec(kind=spec.kind, selector=spec.selector, version_label=spec.version_label,
                        replicas=spec.replicas, options=frozen_map(options))


def read_router(problems: list, data: Mapping[str, Any], platform: PlatformSpec) -> RouterSpec:
    r = Reader(problems, data, "router")
    default = {"local": "local", "docker": "haproxy", "kubernetes": "platform"}[platform.kind]
    kind = r.text("kind", default, choices=ROUTER_KINDS)
    options = {k: v for k, v in data.items() if k != "kind"}
    adapter = find(ROUTER, kind)
    if adapter is not None and data.get("kind", default) in ROUTER_KINDS:
        for where, what in adapter.check(options):
            r.problem(where, what)
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


def kubernetes_cohorts(platform: PlatformSpec, router: RouterSpec) -> bool:
    """Kubernetes' httproute lever routes cohorts (header matches) and mirrors (RequestMirror)."""
    return platform.kind == "kubernetes" and router.kind == "platform" \
        and platform.options.get("lever", "replicas") == "httproute"


def check_kubernetes_cohorts(problems: list, strategy: StrategySpec) -> None:
    """What an HTTPRoute cannot do: Gateway API's standard channel has no session persistence,
    so neither sticky shares nor an A/B (which must show each user one version)."""
    if strategy.kind == "ab":
        problems.append(("strategy.kind", "an A/B needs sticky users and an HTTPRoute splits requests, "
                         "not users (no session persistence in Gateway API's standard channel): "
                         "use the built-in router or HAProxy"))
    elif strategy.sticky is not None:
        problems.append(("strategy.sticky", "lever 'httproute' cannot keep a user on one version (no "
                         "session persistence in Gateway API's standard channel): drop sticky, or "
                         "give the users a ring with a header cohort"))


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


LOCAL_STEERING = ("local", "flagd")  # what can steer the local stack's demo service


def run_problems(platform: PlatformSpec, router: RouterSpec) -> list[tuple[str, str]]:
    """What a run (`watch`, `demo --spec`) refuses beyond the spec's own shape, asked by `check`
    and by the local stack alike so the two agree. Kept out of the spec reader because code may
    still build a Driver over local instances with another router (tests do, with nginx)."""
    if platform.kind != "local":
        return []
    problems = []
    if platform.replicas < 1:
        problems.append(("platform.replicas", "must be at least 1 under [platform] kind = "
                         "\"local\" (the stack starts that many instances of each version)"))
    if router.kind not in LOCAL_STEERING:
        problems.append(("router.kind", f"{router.kind!r} cannot steer the local demo service "
                         "(it reads flagd files) under [platform] kind = \"local\"; use "
                         "\"local\" or \"flagd\""))
    return problems
