"""Per-version metrics read from a Prometheus server with prometheus-api-client.

One PromQL per metric, grouped `by (<version_label>)`, so the cost of a collection does not
grow with the number of versions; a template that names `{version}` is run once per version
instead. The queries of one collection run concurrently on a small thread pool of our own (the
client is blocking), so a hung Prometheus cannot starve other adapters' threads. Any failed,
late or malformed answer makes the whole snapshot an error: a sample is never presented with
some of its metrics silently missing.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
import urllib3
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from collectors.deadlines import answer_budget
from strategies.experiment import SUCCESS_KEY, TRIALS_KEY
from strategies.model import EMPTY, MetricSample, MetricsSnapshot, PlatformSnapshot, frozen_map
from strategies.ports import RawCounters
from strategies.rates import bucket_labels, parse_bound
from strategies.spec import MetricsSpec, ReleaseSpec
from strategies.step_evidence import QUANTILE

QUANTILES: Mapping[str, float] = {"latency_p50": 0.5, "latency_p95": 0.95, "latency_p99": 0.99}
# Metrics whose NaN means garbage; a NaN quantile or custom value just means "no observations".
_NO_NAN = frozenset({"requests", "errors", "throughput"})
_RAW = ("raw_requests", "raw_errors", "raw_buckets", "raw_sum")


class QueryError(Exception):
    """One query failed; the message is a short phrase that fits in a one-line report."""


@dataclass(frozen=True)
class _Query:
    key: str  # metric name the answer fills (requests, latency_p99, a custom name, raw_*)
    promql: str
    version: str | None = None  # set when the template is run per version
    by: tuple[str, ...] = ()  # labels the answer is keyed by (version label, maybe le)


def _timed_out(exc: requests.ConnectionError) -> bool:
    """True when requests wrapped a timeout (urllib3's MaxRetryError around ReadTimeoutError)."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    # Not urllib3's TimeoutError: NewConnectionError (a refused connection) derives from it.
    return isinstance(reason, urllib3.exceptions.ReadTimeoutError)


def _window_histogram(buckets: Mapping[tuple[str, ...], float], version: str) -> Mapping[str, float]:
    """One version's window bucket increases, labelled as the scrape source labels them."""
    bounds: dict[float, float] = {}
    for (key, owner, le), value in ((k[:3], v) for k, v in buckets.items() if len(k) >= 3):
        bound = parse_bound(le)
        if key == "window_buckets" and owner == version and bound is not None and not math.isnan(value):
            bounds[bound] = bounds.get(bound, 0.0) + value
    return bucket_labels(bounds)


def _window(seconds: float) -> str:
    """A PromQL range: whole seconds when possible, else milliseconds."""
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{max(1, round(seconds * 1000))}ms"


class PrometheusSource:
    """MetricSource (and RawCounterSource) backed by a Prometheus HTTP API."""

    name = "prometheus"

    def __init__(self, spec: MetricsSpec, service: str, *,
                 custom_queries: Mapping[str, str] = EMPTY, record_raw: bool = True,
                 histograms: bool = False, max_workers: int = 16):
        self.spec = spec
        self.service = service
        self.url = spec.url.rstrip("/")
        self.budget = answer_budget(spec.timeout)
        self.custom_queries = dict(custom_queries)
        self.record_raw = record_raw
        self.histograms = histograms  # window latency histograms, for latency gates
        for key, template in {**spec.queries, **self.custom_queries}.items():
            self._check_template(key, template)
        # No retries (a back-off would blow the timeout we promise), and a connection pool as
        # large as the thread pool, so concurrent queries reuse connections instead of
        # discarding them with a warning on the screen.
        session = requests.Session()
        self._client = PrometheusConnect(url=self.url, timeout=self.budget, session=session)
        session.mount(self.url, HTTPAdapter(max_retries=Retry(total=0, raise_on_status=False),
                                            pool_connections=1, pool_maxsize=max_workers))
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="prometheus")
        self._raw: tuple[RawCounters, ...] = ()

    @classmethod
    def for_release(cls, release: ReleaseSpec, **options: Any) -> PrometheusSource:
        """The source a release needs: its metrics spec, service and the gates' own PromQL."""
        # A latency gate is tested on the window's histogram (the share slower than its bound),
        # as on scrape; without it only a point comparison of two window quantiles is left,
        # which flips on noise however healthy the candidate.
        options.setdefault("histograms", any(g.metric in QUANTILE or g.compare == "mannwhitney"
                                             for g in release.gates))
        return cls(release.metrics, release.release.service, custom_queries=gate_queries(release), **options)

    # ------------------------------------------------------------------ building queries

    def _fill(self, template: str, version: str | None = None, quantile: float | None = None) -> str:
        return template.format(service=self.service, version=version or "", window=_window(self.spec.window),
                               version_label=self.spec.version_label,
                               quantile=f"{quantile:g}" if quantile is not None else "")

    def _check_template(self, key: str, template: str) -> None:
        try:
            self._fill(template, "v", 0.5)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"metrics query {key!r}: bad template {template!r}: {exc}") from exc

    def queries(self, versions: Sequence[str]) -> list[_Query]:
        """Every query one collection runs: batched by version unless the template names it."""
        label = self.spec.version_label
        templates: list[tuple[str, str, float | None]] = [
            ("requests", self.spec.queries["requests"], None),
            ("errors", self.spec.queries["errors"], None),
            ("throughput", self.spec.queries["throughput"], None),
            *((key, self.spec.queries["latency"], q) for key, q in QUANTILES.items()),
            *((key, template, None) for key, template in self.custom_queries.items()),
        ]
        out: list[_Query] = []
        for key, template, quantile in templates:
            if "{version}" in template:
                out.extend(_Query(key, self._fill(template, v, quantile), version=v) for v in versions)
            else:
                out.append(_Query(key, self._fill(template, None, quantile), by=(label,)))
        if self.histograms:
            lat, window = self.spec.latency_metric, _window(self.spec.window)
            out.append(_Query("window_buckets", f"sum by ({label}, le) (increase({lat}_bucket"
                              f'{{service="{self.service}"}}[{window}]))', by=(label, "le")))
        if self.record_raw:
            out.extend(self._raw_queries())
        return out

    def _raw_queries(self) -> list[_Query]:
        label = self.spec.version_label
        sel = f'service="{self.service}"'
        errors = f'{sel},code=~"{self.spec.error_codes}"'
        req, lat = self.spec.request_metric, self.spec.latency_metric
        return [
            _Query("raw_requests", f"sum by ({label}) ({req}{{{sel}}})", by=(label,)),
            _Query("raw_errors", f"sum by ({label}) ({req}{{{errors}}})", by=(label,)),
            _Query("raw_buckets", f"sum by ({label}, le) ({lat}_bucket{{{sel}}})", by=(label, "le")),
            _Query("raw_sum", f"sum by ({label}) ({lat}_sum{{{sel}}})", by=(label,)),
        ]

    # ------------------------------------------------------------------ running them

    def _run(self, promql: str) -> Any:
        return self._client.custom_query(promql, timeout=self.budget)

    async def _ask(self, query: _Query) -> dict[tuple[str, ...], float]:
        """One query → {label values: value}, or QueryError with a short reason."""
        loop = asyncio.get_running_loop()
        try:
            result = await asyncio.wait_for(loop.run_in_executor(self._pool, self._run, query.promql),
                                            timeout=self.budget)
        except (TimeoutError, requests.Timeout) as exc:
            raise QueryError(f"got no answer within {self.budget:g}s") from exc
        except requests.ConnectionError as exc:
            if _timed_out(exc):  # with retries off, a read timeout arrives as a ConnectionError
                raise QueryError(f"got no answer within {self.budget:g}s") from exc
            reason = "connection refused" if "refused" in str(exc).lower() else "cannot connect"
            raise QueryError(f"is unreachable ({reason})") from exc
        except PrometheusApiClientException as exc:
            raise QueryError(_http_error(str(exc))) from exc
        except requests.exceptions.JSONDecodeError as exc:  # subclass of ValueError: check first
            raise QueryError("answered with something that is not JSON") from exc
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise QueryError("answered JSON that is not a Prometheus query result") from exc
        except requests.RequestException as exc:
            raise QueryError(f"request failed ({type(exc).__name__})") from exc
        return _vector(result, query)

    async def collect(self, versions: Sequence[str], platform: PlatformSnapshot | None,
                      now: float) -> MetricsSnapshot:
        """One snapshot for `versions`; never raises for trouble at the server."""
        queries = self.queries(versions)
        answers = await asyncio.gather(*(self._ask(q) for q in queries), return_exceptions=True)
        failed = [(q, a) for q, a in zip(queries, answers, strict=True) if isinstance(a, BaseException)]
        if failed:
            query, exc = failed[0]
            if not isinstance(exc, QueryError | ValueError):
                raise exc  # a bug of ours, not the server's: let the driver report it
            more = f" (and {len(failed) - 1} more queries failed)" if len(failed) > 1 else ""
            return MetricsSnapshot(at=now, source=self.name,
                                   error=f"prometheus at {self.url}: query {query.key!r} {exc}{more}")
        values: dict[str, dict[str, float]] = {}  # metric -> version -> value
        raw: dict[tuple[str, ...], float] = {}
        for query, answer in zip(queries, answers, strict=True):
            assert isinstance(answer, dict)
            if query.key in ("raw_buckets", "window_buckets"):
                raw.update({(query.key, *k): v for k, v in answer.items()})
                continue
            per_version = values.setdefault(query.key, {})
            for key, value in answer.items():
                per_version[query.version or key[0]] = value
        bad = _nan_problem(values)
        if bad:
            return MetricsSnapshot(at=now, source=self.name, error=f"prometheus at {self.url}: {bad}")
        samples = {v: self._sample(v, now, values, raw) for v in versions}
        self._raw = self._raw_counters(versions, now, values, raw) if self.record_raw else ()
        return MetricsSnapshot(at=now, samples=frozen_map(samples), source=self.name)

    def _sample(self, version: str, now: float, values: Mapping[str, Mapping[str, float]],
                buckets: Mapping[tuple[str, ...], float]) -> MetricSample:
        def get(key: str) -> float | None:
            value = values.get(key, {}).get(version)
            return None if value is None or math.isnan(value) else value

        requests_ = get("requests")
        errors = get("errors")
        if errors is None and requests_ is not None:
            errors = 0.0  # no series with an error code in the window: no errors
        ratio = None
        if requests_ and errors is not None:  # two queries may straddle a scrape: keep it a ratio
            ratio = min(1.0, max(0.0, errors / requests_))
        return MetricSample(
            version=version, at=now, requests=requests_, throughput=get("throughput"),
            error_ratio=ratio, errors=errors,
            latency_p50=get("latency_p50"), latency_p95=get("latency_p95"), latency_p99=get("latency_p99"),
            custom=frozen_map({key: get(key) for key in self.custom_queries}),
            latency_buckets=_window_histogram(buckets, version),
        )

    def _raw_counters(self, versions: Sequence[str], now: float, values: Mapping[str, Mapping[str, float]],
                      buckets: Mapping[tuple[str, ...], float]) -> tuple[RawCounters, ...]:
        out = []
        for version in versions:
            total = values.get("raw_requests", {}).get(version)
            if total is None:
                continue
            les = {k[2]: v for k, v in buckets.items() if k[0] == "raw_buckets" and k[1] == version}
            out.append(RawCounters(version=version, at=now, requests_total=total,
                                   errors_total=values.get("raw_errors", {}).get(version, 0.0),
                                   latency_buckets=frozen_map(les),
                                   latency_sum=values.get("raw_sum", {}).get(version)))
        return tuple(out)

    def last_raw(self) -> Sequence[RawCounters]:
        """Cumulative counters summed per version, as read by the last good collection."""
        return self._raw

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(self._client.close)


def gate_queries(release: ReleaseSpec) -> dict[str, str]:
    """Custom metric name -> PromQL template, from the gates that bring their own `query`."""
    queries = {gate.metric: gate.query for gate in release.gates if gate.query}
    experiment = release.strategy.experiment
    if experiment is not None:  # cumulative counts: the experiment folds in what grew
        queries[SUCCESS_KEY] = experiment.query("success")
        queries[TRIALS_KEY] = experiment.query("trials")
    return queries


def _vector(result: Any, query: _Query) -> dict[tuple[str, ...], float]:
    """Check the shape of an instant-vector answer and key it by the grouping labels."""
    if not isinstance(result, list):
        raise QueryError("answered JSON that is not a Prometheus query result")
    if query.version is not None:
        if len(result) > 1:
            raise QueryError(f"returned {len(result)} series for version {query.version!r}; expected one")
        return {(query.version,): _number(result[0])} if result else {}
    out: dict[tuple[str, ...], float] = {}
    for item in result:
        if not isinstance(item, dict) or not isinstance(item.get("metric"), dict):
            raise QueryError("answered JSON that is not a Prometheus query result")
        labels = item["metric"]
        missing = [name for name in query.by if name not in labels]
        if missing:
            raise QueryError(f"returned a series without the {missing[0]!r} label; group it "
                             f"`by ({', '.join(query.by)})` or name {{version}} in the query")
        key = tuple(str(labels[name]) for name in query.by)
        if key in out:
            raise QueryError(f"returned several series for {dict(zip(query.by, key, strict=True))}; "
                             f"group it `by ({', '.join(query.by)})` only")
        out[key] = _number(item)
    return out


def _number(item: Any) -> float:
    try:
        _, text = item["value"]
        return float(text)
    except (KeyError, TypeError, ValueError) as exc:
        raise QueryError("answered a sample that is not a number") from exc


def _nan_problem(values: Mapping[str, Mapping[str, float]]) -> str:
    for key in sorted(_NO_NAN | {"raw_requests", "raw_errors", "raw_sum"}):
        for version, value in sorted(values.get(key, {}).items()):
            if math.isnan(value):
                return f"query {key!r} returned NaN for version {version!r}"
    return ""


def _http_error(text: str) -> str:
    """`HTTP Status Code 400 (b'{"error":"..."}')` → `returned HTTP 400: ...`."""
    status = text.partition(" (")[0].replace("Status Code ", "").strip()
    found = re.search(r'"error"\s*:\s*"((?:[^"\\]|\\.)*)"', text)
    return f"returned {status}" + (f": {found.group(1)[:200]}" if found else "")
