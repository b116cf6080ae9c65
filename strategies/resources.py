"""Resources per version: the platform's CPU, memory and restarts joined to the metric samples.

Platforms measure resources (processes, containers, pods); metric sources measure requests.
Gates read one sample per version, so this joins the two once per tick: a resource gate
(`metric = "cpu"`, `"memory"`, `"restarts"`) then works with the same bounds, ratios to the
baseline and severities as any other point comparison. Pure: snapshots in, snapshot out.
"""

from __future__ import annotations

from dataclasses import replace

from strategies.model import MetricsSnapshot, PlatformSnapshot, frozen_map

RESOURCE_METRICS = ("cpu", "memory", "restarts")


def with_resources(metrics: MetricsSnapshot, platform: PlatformSnapshot | None) -> MetricsSnapshot:
    """`metrics` with each version's resource figures from `platform` filled in.

    Only versions the metric source answered for are joined: a version missing from this read
    keeps its last full sample until that goes stale (the engine's rule), rather than being
    replaced by resources alone. A failed platform read adds nothing: stale resources are not
    evidence.
    """
    if platform is None or platform.error:
        return metrics
    samples = dict(metrics.samples)
    for name, sample in metrics.samples.items():
        status = platform.versions.get(name)
        if status is None or not status.instances:
            continue
        samples[name] = replace(sample, cpu=status.cpu, memory=status.memory,
                                restarts=float(status.restarts))
    return replace(metrics, samples=frozen_map(samples))
