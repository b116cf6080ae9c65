"""Metrics for a whole fleet from one Prometheus, one query per metric for all releases.

Asking each release on its own costs six queries per release per tick: a hundred releases
would be six hundred. Releases that read the same Prometheus with the default PromQL differ
only in their `service` label, so one query per metric, grouped `by (service, version)`,
answers them all and the cost stays the same however many releases the fleet shows. Releases
with their own PromQL (or a service name a regex cannot hold plainly) are not batched; the
fleet asks those with their own PrometheusSource.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace

from collectors.prometheus_source import QUANTILES, PrometheusSource, QueryError, _Query
from strategies.model import MetricsSnapshot, frozen_map
from strategies.spec import DEFAULT_QUERIES, MetricsSpec

_PLAIN = re.compile(r"^[A-Za-z0-9_-]+$")
SERVICE_LABEL = "service"


def batchable(spec: MetricsSpec, service: str) -> bool:
    """Can this release share the fleet's queries? Default PromQL and a plain service name."""
    return dict(spec.queries) == dict(DEFAULT_QUERIES) and bool(_PLAIN.match(service))


def batch_key(spec: MetricsSpec) -> tuple[str, float, str, float]:
    """Releases with equal keys are answered by the same queries."""
    return (spec.url.rstrip("/"), spec.window, spec.version_label, spec.timeout)


class FleetPrometheus(PrometheusSource):
    """Answers many services at once; `collect_fleet` splits the answers per service."""

    name = "prometheus"

    def __init__(self, spec: MetricsSpec, services: Sequence[str]):
        unknown = [s for s in services if not _PLAIN.match(s)]
        if unknown:
            raise ValueError(f"service {unknown[0]!r} cannot be batched (letters, digits, - and _ only)")
        batched = {key: template.replace('service="{service}"', 'service=~"{service}"')
                   for key, template in DEFAULT_QUERIES.items()}
        super().__init__(replace(spec, queries=frozen_map(batched)), "|".join(sorted(set(services))),
                         record_raw=False)
        self.services = tuple(sorted(set(services)))

    def queries(self, versions: Sequence[str]) -> list[_Query]:
        """Six queries, each grouped by service and version, whatever the number of services."""
        label = self.spec.version_label
        by = f"by ({SERVICE_LABEL}, {label}"
        out = []
        for key, template, quantile in (
                ("requests", self.spec.queries["requests"], None),
                ("errors", self.spec.queries["errors"], None),
                ("throughput", self.spec.queries["throughput"], None),
                *((key, self.spec.queries["latency"], q) for key, q in QUANTILES.items())):
            promql = self._fill(template.replace("by ({version_label}", by), None, quantile)
            out.append(_Query(key, promql, by=(SERVICE_LABEL, label)))
        return out

    async def collect_fleet(self, now: float) -> dict[str, MetricsSnapshot]:
        """One snapshot per service; a failed query makes every service's snapshot an error."""
        queries = self.queries(())
        answers = await asyncio.gather(*(self._ask(q) for q in queries), return_exceptions=True)
        for query, answer in zip(queries, answers, strict=True):
            if isinstance(answer, BaseException):
                if not isinstance(answer, QueryError | ValueError):
                    raise answer
                error = f"prometheus at {self.url}: query {query.key!r} {answer}"
                return {s: MetricsSnapshot(at=now, source=self.name, error=error) for s in self.services}
        values: dict[str, dict[str, dict[str, float]]] = {}  # service → metric → version → value
        for query, answer in zip(queries, answers, strict=True):
            assert isinstance(answer, dict)
            for (service, version), value in answer.items():
                values.setdefault(service, {}).setdefault(query.key, {})[version] = value
        return {service: self._snapshot(values.get(service, {}), now) for service in self.services}

    def _snapshot(self, values: Mapping[str, Mapping[str, float]], now: float) -> MetricsSnapshot:
        versions = sorted({v for per_version in values.values() for v in per_version})
        samples = {v: self._sample(v, now, values, {}) for v in versions}
        return MetricsSnapshot(at=now, samples=frozen_map(samples), source=self.name)


