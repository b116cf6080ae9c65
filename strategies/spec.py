"""The release spec: `release.toml` → typed, frozen objects.

Every problem is reported with the file, the field path (`gate[2].max_ratio`) and what is wrong,
and all problems of a file are reported together, so one `releasedeck check` run shows them all.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strategies.duration import parse_duration
from strategies.model import BUILTIN_METRICS, Severity, frozen_map, no_entries

STRATEGY_KINDS = ("canary", "blue-green", "rolling", "ab", "ring", "flag")
PLATFORM_KINDS = ("local", "docker", "kubernetes")
METRIC_SOURCES = ("scrape", "prometheus", "haproxy")
ROUTER_KINDS = ("local", "haproxy", "platform", "none", "flagd", "unleash")
FLAG_LEVERS = ("flagd", "unleash")  # router kinds that move a feature flag, not traffic
ALERT_KINDS = ("stdout", "webhook", "slack", "alertmanager")
WEBHOOK_TYPES = ("pre-rollout", "confirm-promotion", "rollout")
KUBERNETES_LEVERS = ("replicas", "service", "httproute", "rolling", "argo")
COMPARISONS = ("none", "proportion", "mannwhitney")
REQUIREMENTS = ("no-breach", "evidence")  # what a gate needs to pass: no evidence of a breach, or evidence it holds

DEFAULT_QUERIES: Mapping[str, str] = frozen_map(
    {
        "requests": (
            'sum by ({version_label}) (increase(http_requests_total{{service="{service}"}}[{window}]))'
        ),
        "errors": (
            "sum by ({version_label}) (increase(http_requests_total"
            '{{service="{service}",code=~"5.."}}[{window}]))'
        ),
        "throughput": (
            'sum by ({version_label}) (rate(http_requests_total{{service="{service}"}}[{window}]))'
        ),
        "latency": (
            "histogram_quantile({quantile}, sum by ({version_label}, le) "
            '(rate(http_request_duration_seconds_bucket{{service="{service}"}}[{window}])))'
        ),
    }
)
"""PromQL templates. Placeholders: {service}, {version}, {window}, {version_label}, {quantile}.
Literal braces of PromQL are doubled, as in Python format strings. A template without
{version} is run once for all versions and must group `by` the version label."""


class SpecError(Exception):
    """All problems found in one spec file, each as 'file: field: what is wrong'."""

    def __init__(self, path: str, problems: list[tuple[str, str]]):
        self.path = path
        self.problems = problems
        super().__init__(self.render())

    def lines(self) -> list[str]:
        return [f"{self.path}: {where}: {what}" if where else f"{self.path}: {what}"
                for where, what in self.problems]

    def render(self) -> str:
        return "\n".join(self.lines())


# --------------------------------------------------------------------------- the typed spec


@dataclass(frozen=True)
class ReleaseInfo:
    service: str
    baseline: str
    candidate: str
    journal: str = ""  # path; empty means next to the spec


@dataclass(frozen=True)
class PlatformSpec:
    kind: str
    selector: str = ""
    version_label: str = "version"
    replicas: int = 1  # instances per version at full size
    options: Mapping[str, Any] = field(default_factory=no_entries)  # kind-specific keys, validated here


@dataclass(frozen=True)
class RouterSpec:
    kind: str  # local | haproxy | platform | none
    options: Mapping[str, Any] = field(default_factory=no_entries)


@dataclass(frozen=True)
class MetricsSpec:
    source: str = "scrape"
    url: str = ""
    window: float = 30.0
    interval: float = 1.0
    timeout: float = 2.0
    stale_after: float = 10.0
    version_label: str = "version"
    queries: Mapping[str, str] = field(default_factory=lambda: DEFAULT_QUERIES)
    metrics_path: str = "/metrics"
    request_metric: str = "http_requests_total"
    latency_metric: str = "http_request_duration_seconds"
    error_codes: str = "5.."  # regex on the `code` label for failed requests


@dataclass(frozen=True)
class StepSpec:
    """One step of a plan as written: a weight with a hold, or a pause for the operator."""

    weight: int | None = None
    hold: float | None = None
    pause: bool = False  # wait for the operator's promote
    name: str = ""


@dataclass(frozen=True)
class StrategySpec:
    kind: str
    steps: tuple[StepSpec, ...] = ()
    hold: float = 30.0
    # blue-green
    preview_hold: float = 0.0
    scale_down_delay: float = 30.0
    auto_promote: bool = True
    # the gates judge the preview (traffic must reach the candidate before the switch: preview
    # traffic); false leaves the preview on time alone, for setups that send it none
    preview_analysis: bool = True
    # rolling
    max_surge: int = 1
    max_unavailable: int = 0
    # ab
    split: int = 50
    duration: float = 300.0
    # flag (Flagger's words)
    flag: str = ""
    start_weight: int = 0
    step_weight: int = 10
    max_weight: int = 50
    workload: str = ""  # with a flag lever: the one version whose instances hold both code paths
    kill_switch: bool = False  # rollback also switches the flag off
    drop_targeting: bool = False  # promotion leaves the flag with no targeting, the candidate its default


@dataclass(frozen=True)
class GateSpec:
    name: str
    metric: str
    query: str = ""  # custom PromQL, for metrics that are not built in
    max: float | None = None
    min: float | None = None
    max_ratio: float | None = None
    for_seconds: float = 0.0
    severity: Severity = Severity.CRITICAL
    min_requests: float = 20.0
    compare: str = "none"  # statistical comparison with the baseline
    confidence: float = 0.99  # a wrong fail at most 1 - confidence of the time, however often looked at
    require: str = "no-breach"  # "evidence": pass only once the data show the bound holds


@dataclass(frozen=True)
class AlertSpec:
    kind: str
    url: str = ""
    min_severity: Severity = Severity.WARNING
    secret_env: str = ""  # env var holding the HMAC secret (never the secret itself)
    timeout: float = 5.0
    retries: int = 3
    reminder: float = 300.0
    stale_after: float = 30.0  # alert when metrics are stale this long


@dataclass(frozen=True)
class WebhookSpec:
    name: str
    type: str
    url: str
    timeout: float = 5.0
    metadata: Mapping[str, str] = field(default_factory=no_entries)


@dataclass(frozen=True)
class ReleaseSpec:
    path: str
    release: ReleaseInfo
    platform: PlatformSpec
    router: RouterSpec
    metrics: MetricsSpec
    strategy: StrategySpec
    gates: tuple[GateSpec, ...] = ()
    alerts: tuple[AlertSpec, ...] = ()
    webhooks: tuple[WebhookSpec, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=no_entries)  # [demo] and other surface-only tables

    @property
    def versions(self) -> tuple[str, str]:
        return (self.release.baseline, self.release.candidate)

    @property
    def workloads(self) -> tuple[str, ...]:
        """What runs on the platform: both versions, or for a flag release the one workload
        whose instances serve both variants (then `versions` are the flag's variants)."""
        return (self.strategy.workload,) if self.strategy.workload else self.versions

    def journal_path(self) -> Path:
        if self.release.journal:
            path = Path(self.release.journal)
            return path if path.is_absolute() else Path(self.path).parent / path
        spec = Path(self.path)
        return spec.parent / f".{spec.stem}.releasedeck.journal"


# --------------------------------------------------------------------------- reading tables


class _Reader:
    """Walks one table, collecting problems instead of stopping at the first."""

    def __init__(self, problems: list[tuple[str, str]], table: Mapping[str, Any], where: str):
        self.problems = problems
        self.table = table
        self.where = where
        self.seen: set[str] = set()

    def at(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def problem(self, key: str, what: str) -> None:
        self.problems.append((self.at(key) if key else self.where, what))

    def raw(self, key: str) -> Any:
        self.seen.add(key)
        return self.table.get(key)

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None, *,
            required: bool = False, what: str = "") -> Any:
        value = self.raw(key)
        if value is None:
            if required:
                self.problem(key, f"is required{what}")
            return default
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            self.problem(key, f"must be {_kind_name(kinds)}, got {_show(value)}")
            return default
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kinds):
            self.problem(key, f"must be {_kind_name(kinds)}, got {_show(value)}")
            return default
        return value

    def text(self, key: str, default: str = "", *, required: bool = False,
             choices: tuple[str, ...] = ()) -> str:
        value = self.get(key, str, None, required=required)
        if value is None:
            return default
        if required and not value.strip():
            self.problem(key, "must not be empty")
        if choices and value not in choices:
            self.problem(key, f"must be one of {', '.join(choices)}, got {_show(value)}"
                         + _hint(value, choices))
            return default
        return value

    def number(self, key: str, default: float | None = None, *, low: float | None = None,
               high: float | None = None, required: bool = False) -> float | None:
        value = self.get(key, (float, int), None, required=required)
        if value is None:
            return default
        value = float(value)
        if not math.isfinite(value):
            self.problem(key, f"must be a finite number, got {_show(value)}")
            return default
        if low is not None and value < low:
            self.problem(key, f"must be at least {low:g}, got {value:g}")
        if high is not None and value > high:
            self.problem(key, f"must be at most {high:g}, got {value:g}")
        return value

    def integer(self, key: str, default: int, *, low: int | None = None,
                high: int | None = None) -> int:
        value = self.get(key, int, None)
        if value is None:
            return default
        if low is not None and value < low:
            self.problem(key, f"must be at least {low}, got {value}")
        if high is not None and value > high:
            self.problem(key, f"must be at most {high}, got {value}")
        return value

    def duration(self, key: str, default: float) -> float:
        value = self.raw(key)
        if value is None:
            return default
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.problem(key, str(exc))
            return default

    def flag(self, key: str, default: bool) -> bool:
        return bool(self.get(key, bool, default))

    def severity(self, key: str, default: Severity) -> Severity:
        value = self.text(key, default.value, choices=tuple(s.value for s in Severity))
        return Severity(value)

    def table_of(self, key: str) -> Mapping[str, Any]:
        value = self.get(key, dict, {})
        return value

    def finish(self, allowed: tuple[str, ...] | None = None) -> None:
        """Report keys nobody asked for, with the closest known key as a hint."""
        known = tuple(self.seen) if allowed is None else allowed
        for key in self.table:
            if key not in self.seen and key not in known:
                self.problem(_key(key), "unknown key" + _hint(key, tuple(self.seen) + tuple(known)))


def _key(key: str) -> str:
    """A user's key as TOML would write it: bare when it can be, quoted (one line) otherwise."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def _show(value: Any) -> str:
    """A value as the user wrote it in TOML (true, not True), on one line, shortened if long."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{_key(str(k))} = {_show(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, list):
        text = "[" + ", ".join(_show(v) for v in value) + "]"
    elif isinstance(value, float) and not math.isfinite(value):
        text = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind_name(kinds: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             dict: "a table", list: "a list"}
    picked = [names.get(k, k.__name__) for k in kinds if not (k is int and float in kinds)]
    return " or ".join(picked)


def _hint(word: str, options: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


PLACEHOLDERS = ("service", "version", "window", "version_label", "quantile")


def _check_template(r: _Reader, key: str, template: str) -> bool:
    """A PromQL template must only use the known placeholders (literal braces doubled)."""
    try:
        template.format(**dict.fromkeys(PLACEHOLDERS, "x"))
    except KeyError as exc:
        name = str(exc.args[0])
        r.problem(key, f"unknown placeholder {{{name}}}" + _hint(name, PLACEHOLDERS)
                  + f"; known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}; "
                  "write PromQL's own braces doubled ({{ }})")
        return False
    except (ValueError, IndexError) as exc:
        r.problem(key, f"is not a valid template ({exc}); write PromQL's own braces doubled ({{{{ }}}})")
        return False
    return True


# --------------------------------------------------------------------------- sections


def _release(problems: list, data: Mapping[str, Any]) -> ReleaseInfo:
    r = _Reader(problems, data, "release")
    info = ReleaseInfo(
        service=r.text("service", required=True),
        baseline=r.text("baseline", required=True),
        candidate=r.text("candidate", required=True),
        journal=r.text("journal"),
    )
    if info.baseline and info.baseline == info.candidate:
        r.problem("candidate", f"must differ from baseline (both are {info.baseline!r})")
    r.finish()
    return info


_PLATFORM_OPTIONS: Mapping[str, Mapping[str, Callable[[Any], bool]]] = {
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


def _platform(problems: list, data: Mapping[str, Any]) -> PlatformSpec:
    r = _Reader(problems, data, "platform")
    kind = r.text("kind", "local", choices=PLATFORM_KINDS)
    spec = PlatformSpec(
        kind=kind,
        selector=r.text("selector"),
        version_label=r.text("version_label", "version"),
        replicas=r.integer("replicas", 1, low=0, high=1000),
    )
    allowed = _PLATFORM_OPTIONS.get(kind, {})
    kind_ok = data.get("kind", "local") in PLATFORM_KINDS
    options: dict[str, Any] = {}
    for key, value in data.items():
        if key in r.seen or not kind_ok:  # options of an unknown kind cannot be judged
            continue
        check = allowed.get(key)
        if check is None:
            owners = [k for k, opts in _PLATFORM_OPTIONS.items() if key in opts]
            where = f"; it is a key of platform kind {' or '.join(map(repr, owners))}" if owners else ""
            r.problem(_key(key), f"unknown key for platform kind {kind!r}"
                      + (where or _hint(key, tuple(allowed) + tuple(r.seen))))
        elif not check(value):
            if key == "lever":
                r.problem(key, f"must be one of {', '.join(KUBERNETES_LEVERS)}, got {_show(value)}")
            else:
                r.problem(key, f"has the wrong type: {_show(value)}")
        else:
            options[key] = value
    return PlatformSpec(kind=spec.kind, selector=spec.selector, version_label=spec.version_label,
                        replicas=spec.replicas, options=frozen_map(options))


def _router(problems: list, data: Mapping[str, Any], platform: PlatformSpec) -> RouterSpec:
    r = _Reader(problems, data, "router")
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
            r.problem(_key(key), f"unknown key for router kind {kind!r}" + _hint(key, allowed))
    if kind == "flagd" and not (isinstance(options.get("file"), str) and options["file"].strip()):
        r.problem("file", "is required for router kind 'flagd' (the flagd flag-definition JSON file "
                          "releasedeck writes)")
    if kind == "unleash":
        url = options.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            r.problem("url", f"is required for router kind 'unleash' and must start with http:// or "
                             f"https://, got {_show(url) if url is not None else 'nothing'}")
        for key in ("project", "environment", "token_env"):
            if key in options and not (isinstance(options[key], str) and options[key].strip()):
                r.problem(key, f"must be a non-empty string, got {_show(options[key])}")
        timeout = options.get("timeout")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)
                                    or timeout <= 0):
            r.problem("timeout", f"must be a number of seconds above 0, got {_show(timeout)}")
    return RouterSpec(kind=kind, options=frozen_map(options))


def _metrics(problems: list, data: Mapping[str, Any], platform: PlatformSpec,
             router: RouterSpec | None = None) -> MetricsSpec:
    r = _Reader(problems, data, "metrics")
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
            r.problems.append((f"metrics.queries.{_key(key)}", "unknown query"
                               + _hint(key, tuple(DEFAULT_QUERIES))))
        elif not isinstance(value, str) or not value.strip():
            r.problems.append((f"metrics.queries.{key}", "must be a non-empty PromQL string"))
        elif _check_template(r, f"queries.{key}", value):
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


def _steps(r: _Reader, default_hold: float) -> tuple[StepSpec, ...]:
    raw = r.raw("steps")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        r.problem("steps", f"must be a list, got {_show(raw)}")
        return ()
    steps: list[StepSpec] = []
    last = -1
    for i, item in enumerate(raw):
        where = f"steps[{i}]"
        if isinstance(item, bool):
            r.problem(where, f"must be a weight, 'pause' or a table, got {_show(item)}")
        elif isinstance(item, int):
            steps.append(StepSpec(weight=item))
        elif item == "pause":
            steps.append(StepSpec(pause=True))
        elif isinstance(item, dict):
            sub = _Reader(r.problems, item, r.at(where))
            if "pause" in item:
                if "weight" in item:
                    sub.raw("weight")
                    sub.problem("weight", "a step is a weight or a pause, not both; "
                                          "make them two steps")
                pause = sub.raw("pause")
                if pause in (True, "manual"):
                    steps.append(StepSpec(pause=True, name=sub.text("name")))
                else:
                    steps.append(StepSpec(weight=None, hold=sub.duration("pause", default_hold),
                                          name=sub.text("name")))
            else:
                weight = sub.get("weight", int, None, required=True)
                steps.append(StepSpec(weight=weight, hold=sub.duration("hold", default_hold),
                                      name=sub.text("name")))
            sub.finish()
        else:
            r.problem(where, f"must be a weight, 'pause' or a table, got {_show(item)}")
            continue
        weight = steps[-1].weight if steps else None
        if weight is not None:
            if not 0 <= weight <= 100:
                r.problem(where, f"weight must be between 0 and 100, got {weight}")
            elif weight < last:
                r.problem(where, f"weights must not go down ({weight} after {last})")
            last = max(last, weight)
    return tuple(steps)


def _strategy(problems: list, data: Mapping[str, Any]) -> StrategySpec:
    r = _Reader(problems, data, "strategy")
    kind = r.text("kind", "canary", choices=STRATEGY_KINDS)
    hold = r.duration("hold", 30.0)
    steps = _steps(r, hold)
    rings = r.raw("rings")
    if rings is not None:
        if not isinstance(rings, list) or not all(isinstance(x, dict) for x in rings):
            r.problem("rings", "must be a list of tables like {name = 'internal', weight = 5}")
        else:
            last = max((s.weight for s in steps if s.weight is not None), default=-1)
            for i, ring in enumerate(rings):
                sub = _Reader(problems, ring, r.at(f"rings[{i}]"))
                name = sub.text("name", required=True)
                if sub.raw("weight") is None:
                    sub.problem("weight", "is required (percent of traffic this ring gets)")
                weight = sub.integer("weight", 0, low=0, high=100)
                ring_hold = sub.duration("hold", hold)
                sub.finish()
                if weight < last:
                    sub.problem("weight", f"must not go down from the ring before ({weight} after {last})")
                last = max(last, weight)
                steps = (*steps, StepSpec(weight=weight, hold=ring_hold, name=name))
    spec = StrategySpec(
        kind=kind,
        steps=steps,
        hold=hold,
        preview_hold=r.duration("preview_hold", 0.0),
        scale_down_delay=r.duration("scale_down_delay", 30.0),
        auto_promote=r.flag("auto_promote", True),
        preview_analysis=r.flag("preview_analysis", True),
        max_surge=r.integer("max_surge", 1, low=0),
        max_unavailable=r.integer("max_unavailable", 0, low=0),
        split=r.integer("split", 50, low=1, high=99),
        duration=r.duration("duration", 300.0),
        flag=r.text("flag"),
        start_weight=r.integer("start_weight", 0, low=0, high=100),
        step_weight=r.integer("step_weight", 10, low=1, high=100),
        max_weight=r.integer("max_weight", 50, low=1, high=100),
        workload=r.text("workload"),
        kill_switch=r.flag("kill_switch", False),
        drop_targeting=r.flag("drop_targeting", False),
    )
    if kind in ("canary", "ring") and not spec.steps:
        r.problem("steps" if kind == "canary" else "rings", f"a {kind} plan needs at least one step")
    if kind == "rolling" and spec.max_surge == 0 and spec.max_unavailable == 0:
        r.problem("max_surge", "max_surge and max_unavailable cannot both be 0")
    if kind == "flag" and not spec.flag:
        r.problem("flag", "is required for a flag plan (the feature flag's name)")
    if kind == "flag" and spec.start_weight > spec.max_weight:
        r.problem("start_weight", f"is above max_weight ({spec.start_weight} > {spec.max_weight})")
    r.finish()
    return spec


def _gates(problems: list, items: Any) -> tuple[GateSpec, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        problems.append(("gate", "must be an array of tables ([[gate]])"))
        return ()
    gates: list[GateSpec] = []
    names: set[str] = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append((f"gate[{i}]", f"must be a table like {{metric = 'error_rate', max = 0.01}}, "
                                           f"got {_show(item)}"))
            continue
        r = _Reader(problems, item, f"gate[{i}]")
        metric = r.text("metric", required=True)
        query = r.text("query")
        if metric and metric not in BUILTIN_METRICS and not query:
            r.problem("metric", f"unknown metric {metric!r}" + _hint(metric, tuple(BUILTIN_METRICS))
                      + "; a custom metric needs a 'query'")
        gate = GateSpec(
            name=r.text("name", metric),
            metric=metric,
            query=query,
            max=r.number("max"),
            min=r.number("min"),
            max_ratio=r.number("max_ratio", low=0.0),
            for_seconds=r.duration("for", 0.0),
            severity=r.severity("severity", Severity.CRITICAL),
            min_requests=r.number("min_requests", 20.0, low=0.0) or 0.0,
            compare=r.text("compare", "none", choices=COMPARISONS),
            confidence=r.number("confidence", 0.99, low=0.5, high=0.9999) or 0.99,
            require=r.text("require", "no-breach", choices=REQUIREMENTS),
        )
        if not any(key in item for key in ("max", "min", "max_ratio", "compare")):
            r.problem("", "needs at least one of max, min, max_ratio or compare")
        if gate.compare == "proportion" and metric and metric != "error_rate":
            r.problem("compare", f"'proportion' compares error rates; use it on metric 'error_rate', "
                                 f"not {metric!r} (latency: compare = 'mannwhitney')")
        if gate.compare == "mannwhitney" and metric and not metric.startswith("latency_"):
            r.problem("compare", f"'mannwhitney' compares latency histograms; use it on a latency_* "
                                 f"metric, not {metric!r} (error rate: compare = 'proportion')")
        if gate.max_ratio is not None and gate.max_ratio <= 0:
            r.problem("max_ratio", f"must be greater than 0, got {gate.max_ratio:g}")
        if query:
            _check_template(r, "query", query)
        if gate.max is not None and gate.min is not None and gate.min > gate.max:
            r.problem("min", f"is above max ({gate.min:g} > {gate.max:g})")
        if gate.name in names:
            r.problem("name", f"duplicate gate name {gate.name!r}; give each gate a unique name")
        names.add(gate.name)
        r.finish()
        gates.append(gate)
    return tuple(gates)


def _alerts(problems: list, items: Any) -> tuple[AlertSpec, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        problems.append(("alert", "must be an array of tables ([[alert]])"))
        return ()
    alerts: list[AlertSpec] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append((f"alert[{i}]", f"must be a table ([[alert]]), got {_show(item)}"))
            continue
        r = _Reader(problems, item, f"alert[{i}]")
        kind = r.text("kind", required=True, choices=ALERT_KINDS)
        url = r.text("url")
        if kind in ("webhook", "slack", "alertmanager") and not url:
            r.problem("url", f"is required for a {kind} alert")
        alerts.append(AlertSpec(
            kind=kind,
            url=url,
            min_severity=r.severity("min_severity", Severity.WARNING),
            secret_env=r.text("secret_env"),
            timeout=r.duration("timeout", 5.0),
            retries=r.integer("retries", 3, low=0, high=20),
            reminder=r.duration("reminder", 300.0),
            stale_after=r.duration("stale_after", 30.0),
        ))
        r.finish()
    return tuple(alerts)


def _webhooks(problems: list, items: Any) -> tuple[WebhookSpec, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        problems.append(("webhook", "must be an array of tables ([[webhook]])"))
        return ()
    hooks: list[WebhookSpec] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append((f"webhook[{i}]", f"must be a table ([[webhook]]), got {_show(item)}"))
            continue
        r = _Reader(problems, item, f"webhook[{i}]")
        hooks.append(WebhookSpec(
            name=r.text("name", f"webhook-{i}"),
            type=r.text("type", required=True, choices=WEBHOOK_TYPES),
            url=r.text("url", required=True),
            timeout=r.duration("timeout", 5.0),
            metadata=frozen_map({str(k): str(v) for k, v in r.table_of("metadata").items()}),
        ))
        r.finish()
    return tuple(hooks)


def _kubernetes_levers(problems: list, platform: PlatformSpec, strategy: StrategySpec,
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


def _flag_lever(problems: list, router: RouterSpec, strategy: StrategySpec, release: ReleaseInfo) -> None:
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


_TOP = ("release", "platform", "router", "metrics", "strategy", "gate", "alert", "webhook", "demo")


def parse_spec(data: Mapping[str, Any], path: str = "<spec>") -> ReleaseSpec:
    """Build a ReleaseSpec from parsed TOML; raises SpecError listing every problem."""
    problems: list[tuple[str, str]] = []
    for key in data:
        if key not in _TOP:
            problems.append((_key(key), "unknown section" + _hint(key, _TOP)))

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
        release = _release(problems, section("release"))
    platform = _platform(problems, section("platform"))
    router = _router(problems, section("router"), platform)
    metrics = _metrics(problems, section("metrics"), platform, router)
    strategy = _strategy(problems, section("strategy"))
    gates = _gates(problems, data.get("gate"))
    alerts = _alerts(problems, data.get("alert"))
    webhooks = _webhooks(problems, data.get("webhook"))
    _kubernetes_levers(problems, platform, strategy, release)
    _flag_lever(problems, router, strategy, release)
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


def load_spec(path: str | Path) -> ReleaseSpec:
    """Read and validate a release.toml; raises SpecError (file unreadable or invalid)."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(where, [("", f"cannot read file: {exc.strerror or exc}")]) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(where, [_toml_problem(text, exc)]) from exc
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
