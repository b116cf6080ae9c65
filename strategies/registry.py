"""The adapter registry: every platform, router, metric source and alert sink kind, once.

Each kind owns its option schema (what `[platform]` / `[router]` keys it takes and what each
must look like) and names its factory (`module:Class`, built by `tui.wiring`). The spec reader
checks options against the schema, so `releasedeck check` refuses what `watch` would refuse at
start-up; the kind lists the spec, the CLI and the wiring offer all come from here.

Pure and declarative: no adapter is imported here (the layers point one way), a factory is only
its dotted name. Adding an adapter: write it in `collectors/`, add one `AdapterKind` below; see
README "Add an adapter".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from strategies.duration import parse_duration
from strategies.wording import hint, show, toml_key

Problems = list[tuple[str, str]]  # (key below the option, "" for the option itself; what is wrong)
Check = Callable[[Any], Problems]

PLATFORM, ROUTER, SOURCE, ALERT = "platform", "router", "metrics source", "alert"


# --------------------------------------------------------------------------- option checks


def anything(_value: Any) -> Problems:
    return []


def _typed(test: Callable[[Any], bool]) -> Check:
    return lambda value: [] if test(value) else [("", f"has the wrong type: {show(value)}")]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


text = _typed(lambda v: isinstance(v, str))
flag = _typed(lambda v: isinstance(v, bool))
table = _typed(lambda v: isinstance(v, dict))
integer = _typed(_is_int)
texts = _typed(lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v))
text_map = _typed(lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()))


def non_empty_text(value: Any) -> Problems:
    if isinstance(value, str) and value.strip():
        return []
    return [("", f"must be a non-empty string, got {show(value)}")]


def one_of(*choices: str) -> Check:
    def check(value: Any) -> Problems:
        if value in choices:
            return []
        return [("", f"must be one of {', '.join(choices)}, got {show(value)}"
                 + (hint(value, choices) if isinstance(value, str) else ""))]
    return check


def port_number(value: Any) -> Problems:
    if _is_int(value) and 1024 <= value <= 65000:
        return []
    return [("", f"must be a port from 1024 to 65000, got {show(value)}")]


def seconds(value: Any) -> Problems:
    """A positive number of seconds (not a duration string)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return []
    return [("", f"must be a number of seconds above 0, got {show(value)}")]


def lease_seconds(value: Any) -> Problems:
    """A Lease's leaseDurationSeconds: whole seconds, long enough to renew in (every third)."""
    if _is_int(value) and 3 <= value <= 3600:
        return []
    return [("", f"must be whole seconds from 3 to 3600, got {show(value)}")]


def duration(value: Any) -> Problems:
    """A duration as the adapter will parse it: "30s", "1m30s" or a number of seconds."""
    try:
        parse_duration(value)
    except ValueError as exc:
        return [("", str(exc))]
    return []


def http_url(value: Any) -> Problems:
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return []
    return [("", f"must start with http:// or https://, got {show(value)}")]


def keys(schema: Mapping[str, Check], *, what: str) -> Check:
    """A table whose keys are known (each with its own check)."""
    def check(value: Any) -> Problems:
        if not isinstance(value, dict):
            return [("", f"must be a table of {what}, got {show(value)}")]
        problems: Problems = []
        for key, item in value.items():
            inner = schema.get(key)
            if inner is None:
                problems.append((toml_key(str(key)), f"unknown key (known: {', '.join(schema)})"
                                 + hint(str(key), tuple(schema))))
                continue
            problems += [(f"{toml_key(str(key))}.{sub}" if sub else toml_key(str(key)), why)
                         for sub, why in inner(item)]
        return problems
    return check


def _command(value: Any) -> Problems:
    if isinstance(value, list) and value and all(isinstance(x, str) for x in value):
        return []
    return [("", f"must be a list like [\"CMD\", \"wget\", ...], got {show(value)}")]


HEALTHCHECK = keys({"test": _command, "interval": duration, "timeout": duration,
                    "retries": integer, "start_period": duration}, what="healthcheck settings")
DOCKER_TLS = keys({"ca_cert": text, "client_cert": text, "client_key": text, "verify": flag},
                  what="TLS settings")


def _base_ports(value: Any) -> Problems:
    if _is_int(value) or (isinstance(value, dict) and all(_is_int(x) for x in value.values())):
        return []
    return [("", f"has the wrong type: {show(value)}")]


# --------------------------------------------------------------------------- the kinds


@dataclass(frozen=True)
class Option:
    check: Check = anything
    required: str = ""  # why it is required ("" when optional)


@dataclass(frozen=True)
class AdapterKind:
    """One kind of adapter: where it plugs in, its options, and what builds it."""

    layer: str  # PLATFORM | ROUTER | SOURCE | ALERT
    kind: str
    summary: str
    factory: str = ""  # "module:callable" taking the ReleaseSpec (tui.wiring calls it); "" builds nothing
    options: Mapping[str, Option] = field(default_factory=lambda: MappingProxyType({}))

    def check(self, options: Mapping[str, Any], *, common: tuple[str, ...] = ()) -> Problems:
        """Every problem of these options, as (key path, what is wrong). `common` are the
        section's keys every kind shares (offered as "did you mean" hints too)."""
        problems: Problems = []
        for key, value in options.items():
            option = self.options.get(key)
            if option is None:
                problems.append((toml_key(key), self._unknown(key, common)))
                continue
            problems += [(f"{toml_key(key)}.{sub}" if sub else toml_key(key), why)
                         for sub, why in option.check(value)]
        for key, option in self.options.items():
            if option.required and key not in options:
                problems.append((key, f"is required for {self.layer} kind {self.kind!r} "
                                      f"({option.required})"))
        return problems

    def _unknown(self, key: str, common: tuple[str, ...]) -> str:
        owners = [k.kind for k in REGISTRY if k.layer == self.layer and key in k.options]
        where = f"; it is a key of {self.layer} kind {' or '.join(map(repr, owners))}" if owners else ""
        return (f"unknown key for {self.layer} kind {self.kind!r}"
                + (where or hint(key, tuple(self.options) + common)))


def _options(**options: Option | Check) -> Mapping[str, Option]:
    return MappingProxyType({k: v if isinstance(v, Option) else Option(v) for k, v in options.items()})


KUBERNETES_LEVERS = ("replicas", "service", "httproute", "rolling", "argo")

REGISTRY: tuple[AdapterKind, ...] = (
    AdapterKind(PLATFORM, "local", "service processes on this machine (the demo's platform)",
                "collectors.local.platform:LocalPlatform.from_spec", _options(
                    command=texts, base_port=port_number, behaviour=table, ready_timeout=duration)),
    AdapterKind(PLATFORM, "docker", "containers on a Docker (or Podman) engine",
                "collectors.docker_platform:DockerPlatform.from_spec", _options(
                    host=text, images=text_map, command=texts, env=table, labels=table,
                    network_mode=text, port=integer, base_port=_base_ports,
                    volumes=_typed(lambda v: isinstance(v, dict | list)), tls=DOCKER_TLS,
                    healthcheck=HEALTHCHECK, image=text, ready_timeout=duration,
                    stop_timeout=duration, api_timeout=duration,
                    restart=_typed(lambda v: v in ("no", "on-failure", "always", "unless-stopped")),
                    init=flag)),
    AdapterKind(PLATFORM, "kubernetes", "Deployments (or an Argo Rollout) in a Kubernetes cluster",
                "collectors.kubernetes.platform:KubernetesPlatform", _options(
                    namespace=text, context=text, kubeconfig=text, in_cluster=flag,
                    lever=one_of(*KUBERNETES_LEVERS), deployments=table, deployment=text,
                    service=text, httproute=text, rollout=text, backends=text_map, images=text_map,
                    container=text, request_timeout=seconds, lease_duration=lease_seconds)),
    AdapterKind(ROUTER, "local", "the built-in weighted HTTP router (local processes)",
                "collectors.local.router:LocalRouter.from_spec", _options(listen=text, port=integer)),
    AdapterKind(ROUTER, "haproxy", "an HAProxy's runtime API (server weights)",
                "collectors.haproxy:HAProxyRouter.from_spec", _options(
                    socket=anything, backend=text, servers=table, stats_url=text,
                    frontend_url=text, sync=flag, maps=non_empty_text,
                    version_backends=text_map)),
    AdapterKind(ROUTER, "nginx", "releasedeck's own nginx on 127.0.0.1 (weights; dark steps by mirror)",
                "collectors.nginx:NginxRouter.from_spec", _options(
                    port=port_number, servers=table, binary=non_empty_text)),
    AdapterKind(ROUTER, "platform", "the platform moves traffic itself (Kubernetes levers)"),
    AdapterKind(ROUTER, "none", "nothing moves traffic: replicas only"),
    AdapterKind(ROUTER, "flagd", "a feature flag in a flagd flag-definition file",
                "collectors.flags.flagd:FlagdLever.from_spec", _options(file=Option(
                    non_empty_text, "the flagd flag-definition JSON file releasedeck writes"))),
    AdapterKind(ROUTER, "unleash", "a feature flag's rollout in Unleash (admin API)",
                "collectors.flags.unleash:UnleashLever.from_spec", _options(
                    url=Option(http_url, "the Unleash server"), project=non_empty_text,
                    environment=non_empty_text, token_env=non_empty_text, timeout=seconds)),
    AdapterKind(SOURCE, "scrape", "each instance's own /metrics, scraped directly",
                "collectors.scrape_source:ScrapeSource.for_release"),
    AdapterKind(SOURCE, "prometheus", "PromQL against a Prometheus server",
                "collectors.prometheus_source:PrometheusSource.for_release"),
    AdapterKind(SOURCE, "haproxy", "HAProxy's Prometheus exporter (per-server counters)",
                "collectors.haproxy_stats:HAProxyMetricSource.from_spec"),
    AdapterKind(ALERT, "stdout", "one JSON line per alert on the event stream"),
    AdapterKind(ALERT, "webhook", "the alert as JSON, optionally HMAC-signed"),
    AdapterKind(ALERT, "slack", "a Slack-compatible incoming webhook"),
    AdapterKind(ALERT, "alertmanager", "Alertmanager's v2 API"),
)


def kinds(layer: str) -> tuple[str, ...]:
    """The kind names of one layer, in the registry's order (the first is the default)."""
    return tuple(k.kind for k in REGISTRY if k.layer == layer)


def find(layer: str, kind: str) -> AdapterKind | None:
    return next((k for k in REGISTRY if k.layer == layer and k.kind == kind), None)
