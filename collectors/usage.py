"""CPU and memory of the instances a platform runs: local processes and Docker containers.

CPU is time used between two looks at the same instance: psutil keeps the previous look per
process between snapshots, a Docker stats read carries two samples a second apart. Without
two looks CPU is "not measured yet" (None), never a misleading 0 %. Memory is resident
memory (processes) or what `docker stats` shows (usage less reclaimable page cache).
Kubernetes reads both from metrics.k8s.io instead (collectors.kubernetes.discovery).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psutil


@dataclass(frozen=True)
class Usage:
    cpu: float | None  # cores in use since the last look (None on the first look)
    memory: float | None  # resident set size in bytes


NOT_MEASURED = Usage(None, None)


class ProcessUsage:
    """Local processes through psutil; one `psutil.Process` kept per pid between looks."""

    def __init__(self) -> None:
        self._seen: dict[int, psutil.Process] = {}

    def usage(self, pid: int) -> Usage:
        process = self._seen.get(pid)
        first = process is None
        try:
            if process is None:
                process = self._seen[pid] = psutil.Process(pid)
            with process.oneshot():
                percent = process.cpu_percent(interval=None)
                memory = float(process.memory_info().rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            self._seen.pop(pid, None)
            return NOT_MEASURED
        return Usage(None if first else percent / 100.0, memory)

    def forget_others(self, live: set[int]) -> None:
        """Drop processes that are gone, so a reused pid starts over (and nothing grows)."""
        for pid in set(self._seen) - live:
            del self._seen[pid]


def memory_bytes(stats: Mapping[str, Any]) -> float | None:
    memory = stats.get("memory_stats") or {}
    usage = memory.get("usage")
    if not isinstance(usage, int | float):
        return None
    details = memory.get("stats") or {}
    cache = details.get("inactive_file", details.get("total_inactive_file", details.get("cache", 0)))
    return float(max(0, usage - (cache if isinstance(cache, int | float) else 0)))


def container_usage(stats: Mapping[str, Any]) -> Usage:
    """CPU and memory from one Docker stats read, as `docker stats` computes them.

    A non-streaming read carries two CPU samples about a second apart (`precpu_stats` and
    `cpu_stats`); CPU is the container's share of that interval in cores. No earlier sample
    (a container just started) means CPU not measured yet.
    """
    cpu, before = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    used = _number((cpu.get("cpu_usage") or {}).get("total_usage"))
    used_before = _number((before.get("cpu_usage") or {}).get("total_usage"))
    system, system_before = _number(cpu.get("system_cpu_usage")), _number(before.get("system_cpu_usage"))
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or ()) or 1
    cores = None
    if None not in (used, used_before, system, system_before) and system > system_before \
            and used >= used_before:
        # system_cpu_usage counts every CPU of the host: wall time per CPU is Δsystem / online
        cores = (used - used_before) / ((system - system_before) / online)
    return Usage(cores, memory_bytes(stats))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
