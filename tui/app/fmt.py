"""Number formatting shared by every widget, so one figure reads the same everywhere."""

from __future__ import annotations

from strategies.duration import format_duration
from strategies.model import rfc3339


def pct(ratio: float | None, digits: int = 2) -> str:
    """An error ratio (0..1) as a percent; '—' when unmeasured, never a fake zero."""
    return "—" if ratio is None else f"{ratio * 100:.{digits}f}%"


def ms(seconds: float | None) -> str:
    """A latency in seconds as milliseconds, the unit SREs read latencies in."""
    if seconds is None:
        return "—"
    value = seconds * 1000
    return f"{value:.0f}ms" if value >= 10 else f"{value:.1f}ms"


def rate(per_second: float | None) -> str:
    return "—" if per_second is None else f"{per_second:.1f}/s"


def cores(value: float | None) -> str:
    """CPU in cores as a share of one core: 0.25 → 25%; '—' until measured."""
    return "—" if value is None else f"{value * 100:.0f}%"


def mib(value: float | None) -> str:
    """Memory in bytes as MiB (GiB past 10 GiB)."""
    if value is None:
        return "—"
    value /= 1024 ** 2
    return f"{value / 1024:.1f}G" if value >= 10240 else f"{value:.0f}M"


def weight(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}%"


def secs(value: float | None) -> str:
    """A duration as 1h02m, 3m04s or 12s: whole seconds, short enough for the rollout bar."""
    if value is None:
        return "—"
    return format_duration(max(0, round(value)))


def clock(ts: float) -> str:
    """HH:MM:SS (UTC) of an epoch time, for the event log."""
    return rfc3339(ts)[11:19]


def metric(name: str, value: float | None) -> str:
    """A gate's metric value in its natural unit."""
    if name == "error_rate":
        return pct(value)
    if name.startswith("latency_"):
        return ms(value)
    if name == "throughput":
        return rate(value)
    if name == "cpu":
        return cores(value)
    if name == "memory":
        return mib(value)
    if value is None:
        return "—"
    return f"{value:.4g}"


def clip(text: str, width: int) -> str:
    """One line of at most `width` characters, ending in … when cut."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: max(0, width - 1)] + "…"
