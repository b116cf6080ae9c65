"""The trace format: JSON lines of raw cumulative counters, one per version per collection.

Raw counters (not rates) are recorded so that any window, gate or rule can be recomputed later.
Reading is tolerant, because traces outlive the code that wrote them: unknown fields are
ignored, lines of another "kind" (events, decisions) are skipped, and a bad line is reported
with its number while the rest is still read.

    {"ts": "2026-11-21T10:00:01.000Z", "service": "checkout", "version": "v2",
     "requests_total": 1520, "errors_total": 3, "latency_buckets": {"0.1": 1500, "+Inf": 1520},
     "weight": 10.0}

The recorder also writes one `{"kind": "tick", "ts": ..., "decided": ...}` line per driver tick
(collection time, and the engine's time when it decided on it), with "error" when that
collection failed: a replay then ticks exactly when the live run did, failed collections
included. Traces without tick lines are ticked at their collections.

Files written elsewhere are read as they come: a UTF-8 byte-order mark, CRLF line endings and a
gzip'd file (recognised by its magic bytes, whatever its name) are accepted. A line may name the
format it follows with `"schema": 1` (event lines carry their own event schema, not checked
here); any other schema, or a Prometheus query_range answer given
as a trace, refuses the whole file (TraceFormatError) instead of reading it as something else.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from strategies.model import Event, parse_rfc3339, rfc3339
from strategies.ports import RawCounters

KIND = "counters"
TICK = "tick"
SCHEMA = 1  # the trace format this reader knows; a line may say so with "schema": 1
GZIP_MAGIC = b"\x1f\x8b"


class TraceLineError(ValueError):
    """One line that cannot be read; the message says why (the caller adds where)."""


class TraceFormatError(ValueError):
    """The whole file is not a trace this reader can use (its message names file and line)."""


def _format_check(data: Mapping[str, Any]) -> None:
    """Refuse lines that are not our format at all, so they are never half-read."""
    body = data.get("data")
    if isinstance(body, dict) and "resultType" in body:
        raise TraceFormatError("a Prometheus query API answer, not a trace (see the README, "
                               "'Record and replay', for turning a range export into a trace)")
    if data.get("kind", KIND) not in (KIND, TICK):
        return  # events carry their own "schema" (the event format's), not the trace's
    schema = data.get("schema", SCHEMA)
    if schema != SCHEMA:
        raise TraceFormatError(f"schema {schema!r} is not supported (this releasedeck reads "
                               f"trace schema {SCHEMA})")


@dataclass(frozen=True)
class TraceRecord:
    """One counters line: the counters plus what the platform said about that version."""

    counters: RawCounters
    service: str = ""
    weight: float | None = None  # actual traffic percent of this version when scraped
    ready: int | None = None  # ready instances of this version, if recorded
    total: int | None = None
    line: int = 0


@dataclass(frozen=True)
class TraceTick:
    """One live driver tick: collected at `at`, decided (engine time) at `decided`.

    `error` says why its collection gave no counters.
    """

    at: float
    service: str = ""
    error: str = ""
    decided: float | None = None


@dataclass(frozen=True)
class TraceRead:
    records: list[TraceRecord]
    problems: list[str]  # "path:line: why" for each bad line
    skipped: int  # lines of other kinds (events ...) and blank lines
    ticks: list[TraceTick] = field(default_factory=list)


def _number(data: Mapping[str, Any], key: str, *, required: bool = True) -> float | None:
    value = data.get(key)
    if value is None:
        if required:
            raise TraceLineError(f"{key} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TraceLineError(f"{key} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise TraceLineError(f"{key} must be a finite number >= 0, got {value!r}")
    return value


def _time(data: Mapping[str, Any], key: str = "ts") -> float:
    """`ts` as RFC 3339 (what we write) or epoch seconds; `at` (epoch seconds) as a fallback."""
    value = data.get(key, data.get("at") if key == "ts" else None)
    if value is None:
        raise TraceLineError(f"{key} is missing")
    if isinstance(value, bool):
        raise TraceLineError(f"{key} must be an RFC 3339 time or epoch seconds, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return parse_rfc3339(value)
        except ValueError:
            pass
    raise TraceLineError(f"{key} must be an RFC 3339 time or epoch seconds, got {value!r}")


def _buckets(data: Mapping[str, Any]) -> dict[str, float]:
    raw = data.get("latency_buckets")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise TraceLineError(f"latency_buckets must be an object, got {raw!r}")
    out: dict[str, float] = {}
    for label in raw:
        try:
            float(label)
        except ValueError:
            raise TraceLineError(f"latency_buckets: bound {label!r} is not a number") from None
        out[str(label)] = _number(raw, label) or 0.0
    return out


def _custom(data: Mapping[str, Any]) -> dict[str, float]:
    raw = data.get("custom")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise TraceLineError(f"custom must be an object, got {raw!r}")
    return {str(key): _number(raw, key) or 0.0 for key in raw}


MAX_LINE = 1_000_000  # characters: a counters line is a few hundred, with histograms a few thousand


def parse_line(text: str, number: int = 0) -> TraceRecord | TraceTick | None:
    """One trace line -> a TraceRecord (or TraceTick); None for blank lines and other kinds.

    Raises TraceLineError for a counters or tick line that cannot be used.
    """
    text = text.strip()
    if not text:
        return None
    if len(text) > MAX_LINE:
        raise TraceLineError(f"line too long: {len(text)} characters (at most {MAX_LINE})")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise TraceLineError(f"not JSON ({getattr(exc, 'msg', exc)})") from None
    except RecursionError:
        raise TraceLineError("not a trace line: JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise TraceLineError(f"not a JSON object: {text[:40]!r}")
    _format_check(data)
    kind = data.get("kind", KIND)
    if kind == TICK:
        service, error = data.get("service", ""), data.get("error", "")
        return TraceTick(at=_time(data), service=service if isinstance(service, str) else "",
                         error=error if isinstance(error, str) else str(error),
                         decided=_time(data, "decided") if "decided" in data else None)
    if kind != KIND:
        return None
    version = data.get("version")
    if not isinstance(version, str) or not version:
        raise TraceLineError(f"version must be a non-empty string, got {version!r}")
    weight = _number(data, "weight", required=False)
    ready = _number(data, "ready", required=False)
    total = _number(data, "total", required=False)
    requests_total = _number(data, "requests_total") or 0.0
    errors_total = _number(data, "errors_total") or 0.0
    if errors_total > requests_total:
        raise TraceLineError(f"errors_total {errors_total:g} exceeds requests_total "
                             f"{requests_total:g} (errors are counted among requests)")
    counters = RawCounters(
        version=version,
        at=_time(data),
        requests_total=requests_total,
        errors_total=errors_total,
        latency_buckets=_buckets(data),
        latency_sum=_number(data, "latency_sum", required=False),
        custom=_custom(data),
    )
    service = data.get("service", "")
    return TraceRecord(counters=counters, service=service if isinstance(service, str) else "",
                       weight=weight, ready=None if ready is None else int(ready),
                       total=None if total is None else int(total), line=number)


def _duplicate(record: TraceRecord, seen: dict[tuple[str, str, float], TraceRecord],
               where: str) -> str | None:
    """None for a first line; "" for an exact repeat (dropped quietly, as a re-sent line is);
    a problem for a second, different line of the same version at the same time."""
    key = (record.service, record.counters.version, record.counters.at)
    first = seen.setdefault(key, record)
    if first is record:
        return None
    if first.counters == record.counters:
        return ""
    return (f"{where}:{record.line}: bad trace line: version {record.counters.version} at "
            f"{rfc3339(record.counters.at)} is already recorded on line {first.line} with other "
            "counters; this line is ignored")


def parse_lines(lines: Iterable[str], where: str = "<trace>") -> TraceRead:
    """Every readable counters line, in file order; bad lines become problems, not errors.

    An exact repeat of a counters or tick line is dropped (a tool that re-sends lines must not
    make extra ticks); a different line for the same version and time is a problem.
    Raises TraceFormatError, naming the line, when the file is of another format or schema.
    """
    records: list[TraceRecord] = []
    ticks: list[TraceTick] = []
    problems: list[str] = []
    seen: dict[tuple[str, str, float], TraceRecord] = {}
    tick_times: set[tuple[str, float]] = set()
    skipped = 0
    for number, text in enumerate(lines, start=1):
        try:
            record = parse_line(text, number)
        except TraceLineError as exc:
            problems.append(f"{where}:{number}: bad trace line: {exc}")
            continue
        except TraceFormatError as exc:
            raise TraceFormatError(f"{where}:{number}: {exc}") from None
        if record is None:
            skipped += 1
        elif isinstance(record, TraceTick):
            if (record.service, record.at) not in tick_times:
                tick_times.add((record.service, record.at))
                ticks.append(record)
        else:
            problem = _duplicate(record, seen, where)
            if problem is None:
                records.append(record)
            elif problem:
                problems.append(problem)
    return TraceRead(records, problems, skipped, ticks)


def open_trace(path: str | Path) -> IO[str]:
    """The file as text lines: gzip'd or not (by its first bytes), BOM dropped, any newline."""
    path = Path(path)
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == GZIP_MAGIC:
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="replace")
    return path.open(encoding="utf-8-sig", errors="replace")


def read_trace(path: str | Path) -> TraceRead:
    """Read a trace file. OSError (missing, unreadable, a broken gzip) is the caller's to
    report; TraceFormatError too."""
    try:
        with open_trace(path) as handle:
            return parse_lines(handle, str(path))
    except EOFError:  # a gzip cut short
        raise OSError("the gzip'd file is cut short") from None
    except zlib.error as exc:
        raise OSError(f"the gzip'd file is damaged ({exc})") from None


def counters_line(counters: RawCounters, service: str = "", *, weight: float | None = None,
                  ready: int | None = None, total: int | None = None) -> str:
    """Serialize one version's counters (and the platform facts seen with them) as a line."""
    body: dict[str, Any] = {"ts": rfc3339(counters.at)}
    if service:
        body["service"] = service
    body.update({
        "version": counters.version,
        "requests_total": counters.requests_total,
        "errors_total": counters.errors_total,
    })
    if counters.latency_buckets:
        body["latency_buckets"] = dict(counters.latency_buckets)
    if counters.latency_sum is not None:
        body["latency_sum"] = counters.latency_sum
    if counters.custom:
        body["custom"] = dict(counters.custom)
    if weight is not None:
        body["weight"] = weight
    if ready is not None:
        body["ready"] = ready
    if total is not None:
        body["total"] = total
    return json.dumps(body, separators=(",", ":"))


def tick_line(at: float, service: str = "", error: str | None = None,
              decided: float | None = None) -> str:
    """A driver tick as a trace line: collected at `at`, decided at `decided` (engine time);
    `error` when its collection gave no counters."""
    body: dict[str, Any] = {"kind": TICK, "ts": rfc3339(at)}
    if decided is not None:
        body["decided"] = rfc3339(decided)
    if service:
        body["service"] = service
    if error:
        body["error"] = error
    return json.dumps(body, separators=(",", ":"))


def event_line(event: Event) -> str:
    """An event as a trace line: kind "event", skipped by replay, kept for post-mortems."""
    return json.dumps({"kind": "event", **json.loads(event.to_json())}, separators=(",", ":"))
