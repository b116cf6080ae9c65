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
included. Traces without tick lines are ticked at their collections. Beside each RFC 3339 time
the recorder writes its exact epoch seconds (`"at"`, `"decided_at"`; see EXACT), which a reader
prefers: a replay then judges at the very times the live engine did.

Two optional parts, added within schema 1 (a reader that does not know them ignores them):
- Event lines carry `"at"` (exact epoch seconds) too. Of the events, a replay reads the levers'
  outcomes (`action_done`, `action_failed`: TraceLever), so a lever takes as long in a replay
  as it did live, and fails where it failed live (see collectors.replay_adapters.LeverLog);
  and the transitions a person made (TraceCommand), given again as commands.
- A counters line carries `"sample"`: the values the live source handed the engine over its
  window (`{"window": 30.0, "requests": ..., "errors": ..., "error_ratio": ...,
  "throughput": ..., "latency_p50": ..., "latency_p95": ..., "latency_p99": ...,
  "custom": {...}, "latency_buckets": {...}, "tally": {"requests": ..., "errors": ...,
  "latency_buckets": {...}}}`), `tally` being everything it had counted exactly (scrape: per
  instance, a new instance's first scrape only anchoring; Prometheus has none: its gates count
  window shares). A replay with the same window judges on those very values; with another
  window it recomputes the window from the raw counters and keeps the recorded tallies.

Files written elsewhere are read as they come: a UTF-8 byte-order mark, CRLF line endings and a
gzip'd file (recognised by its magic bytes, whatever its name) are accepted. A line may name the
format it follows with `"schema": 1` (event lines carry their own event schema, not checked
here); any other schema, or a Prometheus query_range answer given
as a trace, refuses the whole file (TraceFormatError) instead of reading it as something else.
"""

from __future__ import annotations

import gzip
import heapq
import json
import math
import re
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from strategies.model import Event, MetricSample, Tally, frozen_map, parse_rfc3339, rfc3339
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
    # What the live source gave the engine (see the module docstring), and the window it was
    # taken over; None in traces recorded before samples were kept, and hand-written ones.
    sample: MetricSample | None = None
    window: float | None = None


@dataclass(frozen=True)
class TraceLever:
    """A lever's outcome as the live run saw it: an `action_done` / `action_failed` event line.

    `at` is when the driver had the lever's answer (the engine stamped the outcome then);
    `error` is why it failed ("" when it worked)."""

    at: float
    kind: str
    value: int
    version: str = ""
    service: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass(frozen=True)
class TraceCommand:
    """An operator's command as the live run carried it out: a transition event whose actor is
    a person (not the engine, a gate, the experiment or reconcile). `kind` is a CommandKind
    value; `value` the weight of a set_weight."""

    at: float
    kind: str
    value: int | None = None
    actor: str = "operator"
    service: str = ""
    reason: str = ""


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


EXACT = {"ts": "at", "decided": "decided_at"}
"""The epoch-seconds twin the recorder writes beside each RFC 3339 time. The RFC 3339 form keeps
milliseconds, for people; the twin is the float the live run used, to the bit (JSON keeps a
float exactly). A replay compares the same differences the live engine did (a gate failing
`for` 1 s, a 3 s hold, 5 s of staleness), and ticks 1 s apart land within a millisecond of
such a bound: rounded times decided those ticks otherwise than live."""


LATEST = 253_402_300_799.0  # 9999-12-31T23:59:59Z: the last moment an RFC 3339 time can name


def _moment(value: float, key: str) -> float:
    """A time a replay can order and print: finite, from 1970 (epoch 0) to the year 9999.
    (NaN would scramble the time order; a time past 9999 cannot be written in an event.)"""
    if not 0.0 <= value <= LATEST:
        raise TraceLineError(f"{key} {value!r} is not a time from 1970 to 9999 (epoch seconds "
                             f"0 to {LATEST:.0f})")
    return value


def _time(data: Mapping[str, Any], key: str = "ts") -> float:
    """`ts` as RFC 3339 (what we write) or epoch seconds; `at` (epoch seconds) as a fallback.
    The exact twin (`at`, `decided_at`), when it is a finite number, is preferred."""
    exact = data.get(EXACT[key])
    if isinstance(exact, int | float) and not isinstance(exact, bool) and math.isfinite(exact):
        return _moment(float(exact), EXACT[key])
    value = data.get(key, exact if key == "ts" else None)
    if value is None:
        raise TraceLineError(f"{key} is missing")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _moment(float(value), key)
    if isinstance(value, str):
        try:
            return _moment(parse_rfc3339(value), key)
        except (ValueError, OverflowError):
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


SAMPLE_VALUES = ("requests", "errors", "error_ratio", "throughput", "latency_p50", "latency_p95",
                 "latency_p99")
"""The window values of a recorded sample (MetricSample's own names); any may be missing."""


def _sample(data: Mapping[str, Any], version: str, at: float) -> tuple[MetricSample | None,
                                                                      float | None]:
    """The optional "sample" block: (the live sample, its window), or (None, None)."""
    raw = data.get("sample")
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        raise TraceLineError(f"sample must be an object, got {raw!r}")
    try:
        window = _number(raw, "window")
        values = {key: _number(raw, key, required=False) for key in SAMPLE_VALUES}
        custom = raw.get("custom") or {}
        if not isinstance(custom, dict):
            raise TraceLineError(f"custom must be an object, got {custom!r}")
        shown = {str(k): _number(custom, k, required=False) for k in custom}
        buckets = _buckets(raw)
    except TraceLineError as exc:
        raise TraceLineError(f"sample: {exc}") from None
    if not window:
        raise TraceLineError("sample: window must be more than 0 seconds")
    return MetricSample(version=version, at=at, custom=frozen_map(shown),
                        latency_buckets=frozen_map(buckets), tally=_tally(raw),
                        **values), window


def _tally(sample: Mapping[str, Any]) -> Tally | None:
    """A recorded sample's `tally` (None when the source had none)."""
    raw = sample.get("tally")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise TraceLineError(f"sample: tally must be an object, got {raw!r}")
    try:
        return Tally(_number(raw, "requests") or 0.0, _number(raw, "errors") or 0.0,
                     frozen_map(_buckets(raw)))
    except TraceLineError as exc:
        raise TraceLineError(f"sample: tally: {exc}") from None


def _sample_body(sample: MetricSample, window: float) -> dict[str, Any]:
    body: dict[str, Any] = {"window": window}
    body.update({key: value for key in SAMPLE_VALUES
                 if (value := getattr(sample, key)) is not None})
    if sample.custom:
        body["custom"] = dict(sample.custom)
    if sample.latency_buckets:
        body["latency_buckets"] = dict(sample.latency_buckets)
    if sample.tally is not None:
        tally = sample.tally
        body["tally"] = {"requests": tally.requests, "errors": tally.errors,
                         **({"latency_buckets": dict(tally.latency_buckets)}
                            if tally.latency_buckets else {})}
    return body


LEVER_EVENTS = {"action_done": False, "action_failed": True}
"""Event names that say how a lever went (value: whether it failed)."""


COMMAND_EVENTS = {"started": "promote", "step": "promote", "promoting": "promote_full",
                  "promoted": "promote_full", "paused": "pause", "resumed": "resume",
                  "rolling_back": "rollback", "aborted": "abort", "weight_set": "set_weight",
                  "retried": "retry"}
"""A transition an operator made -> the command that makes it (a promote past a manual pause
and a resume of it lead to the same step; promote-full and a last promote end alike)."""
ENGINE_ACTORS = frozenset({"engine", "reconcile", "experiment", ""})


def _command(data: Mapping[str, Any]) -> TraceCommand | None:
    """A transition event made by a person, as the command to give again; None otherwise."""
    kind = COMMAND_EVENTS.get(str(data.get("event")))
    actor = data.get("actor", "")
    if kind is None or not isinstance(actor, str) or actor in ENGINE_ACTORS \
            or actor.startswith("gate:"):
        return None
    value = data.get("weight") if kind == "set_weight" else None
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        return None
    try:
        at = _time(data)
    except TraceLineError:
        return None
    service, reason = data.get("release", ""), data.get("reason", "")
    return TraceCommand(at=at, kind=kind, value=value, actor=actor,
                        service=service if isinstance(service, str) else "",
                        reason=reason if isinstance(reason, str) else "")


def _event(data: Mapping[str, Any]) -> TraceLever | TraceCommand | None:
    return _lever(data) or _command(data)


def _lever(data: Mapping[str, Any]) -> TraceLever | None:
    """An action_done / action_failed event line as a TraceLever; None for any other event or
    one without the action it is about (events are for people: never a bad line)."""
    failed = LEVER_EVENTS.get(str(data.get("event")))
    evidence = data.get("evidence")
    if failed is None or not isinstance(evidence, list) or not evidence \
            or not isinstance(evidence[0], dict):
        return None
    action = evidence[0]
    kind, value, version = action.get("kind"), action.get("value"), action.get("version", "")
    service = data.get("release", "")
    if not isinstance(kind, str) or isinstance(value, bool) or not isinstance(value, int) \
            or not isinstance(version, str):
        return None
    try:
        at = _time(data)
    except TraceLineError:
        return None
    reason = data.get("reason", "")
    return TraceLever(at=at, kind=kind, value=value, version=version,
                      service=service if isinstance(service, str) else "",
                      error=(str(reason) or "failed") if failed else "")


MAX_INSTANCES = 10_000
"""Instances of one version a line may state (`ready`, `total`): a replay stands them up as
instances each tick, so a mistyped 1e12 must be a bad line, not a replay that never ends."""


def _instances(data: Mapping[str, Any], key: str) -> int | None:
    value = _number(data, key, required=False)
    if value is not None and value > MAX_INSTANCES:
        raise TraceLineError(f"{key} must be at most {MAX_INSTANCES} instances, got {value:g}")
    return None if value is None else int(value)


_UNDECODED = re.compile("[\udc80-\udcff]")
MAX_LINE = 1_000_000  # characters: a counters line is a few hundred, with histograms a few thousand


def _json_object(text: str) -> dict:
    """The JSON object on one stripped line, or TraceLineError saying why it is not one."""
    if len(text) > MAX_LINE or text.startswith(LONG):
        length = text.removeprefix(LONG) if text.startswith(LONG) else len(text)
        raise TraceLineError(f"line too long: {length} characters (at most {MAX_LINE})")
    # The file is read with errors="surrogateescape": a byte that is not UTF-8 arrives as a lone
    # surrogate, told apart from a real U+FFFD. Named as such, inside a string too (a version
    # "v\xe92" is an encoding fault, not an unknown version; "Expecting value" would mislead).
    undecoded = _UNDECODED.search(text)
    if undecoded is not None:
        raise TraceLineError(f"not UTF-8 text (byte 0x{ord(undecoded.group()) - 0xDC00:02x} at "
                             f"column {undecoded.start() + 1}): a trace is UTF-8")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise TraceLineError(f"not JSON ({getattr(exc, 'msg', exc)})") from None
    except RecursionError:
        raise TraceLineError("not a trace line: JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise TraceLineError(f"not a JSON object: {text[:40]!r}")
    return data


LONG = "\0line too long\0"
"""What bounded_lines hands on instead of a line longer than MAX_LINE (never held whole)."""


def bounded_lines(handle: IO[str]) -> Iterator[str]:
    """The file's lines, as iterating it gives them, but a line longer than MAX_LINE is read
    past in pieces and handed on as LONG + its length: a file with no newline in gigabytes
    (a binary, a dump) costs no more memory than one long line."""
    while text := handle.readline(MAX_LINE + 1):
        if len(text) <= MAX_LINE or text.endswith("\n"):
            yield text
            continue
        length = len(text)
        while (more := handle.readline(MAX_LINE)) and not more.endswith("\n"):
            length += len(more)
        yield f"{LONG}{length + len(more)}"


def parse_line(text: str, number: int = 0
               ) -> TraceRecord | TraceTick | TraceLever | TraceCommand | None:
    """One trace line -> a TraceRecord (or TraceTick, or TraceLever for a lever's outcome);
    None for blank lines and other kinds.

    Raises TraceLineError for a counters or tick line that cannot be used.
    """
    text = text.strip()
    if not text:
        return None
    data = _json_object(text)
    _format_check(data)
    kind = data.get("kind", KIND)
    if kind == TICK:
        service, error = data.get("service", ""), data.get("error", "")
        return TraceTick(at=_time(data), service=service if isinstance(service, str) else "",
                         error=error if isinstance(error, str) else str(error),
                         decided=_time(data, "decided") if "decided" in data
                         or "decided_at" in data else None)
    if kind == "event":
        return _event(data)
    if kind != KIND:
        return None
    version = data.get("version")
    if not isinstance(version, str) or not version:
        raise TraceLineError(f"version must be a non-empty string, got {version!r}")
    weight = _number(data, "weight", required=False)
    ready, total = _instances(data, "ready"), _instances(data, "total")
    requests_total = _number(data, "requests_total") or 0.0
    errors_total = _number(data, "errors_total") or 0.0
    if errors_total > requests_total:
        raise TraceLineError(f"errors_total {errors_total:g} exceeds requests_total "
                             f"{requests_total:g} (errors are counted among requests)")
    at = _time(data)
    sample, window = _sample(data, version, at)
    counters = RawCounters(
        version=version,
        at=at,
        requests_total=requests_total,
        errors_total=errors_total,
        latency_buckets=_buckets(data),
        latency_sum=_number(data, "latency_sum", required=False),
        custom=_custom(data),
    )
    service = data.get("service", "")
    return TraceRecord(counters=counters, service=service if isinstance(service, str) else "",
                       weight=weight, ready=ready, total=total, line=number,
                       sample=sample, window=window)


def _conflict(record: TraceRecord, first: TraceRecord, where: str) -> str:
    """"" for an exact repeat of `first` (dropped quietly, as a re-sent line is); a problem for
    a second, different line of the same version at the same time."""
    if first.counters == record.counters:
        return ""
    return (f"{where}:{record.line}: bad trace line: version {record.counters.version} at "
            f"{rfc3339(record.counters.at)} is already recorded on line {first.line} with other "
            "counters; this line is ignored")


def _duplicate(record: TraceRecord, seen: dict[tuple[str, str, float], TraceRecord],
               where: str) -> str | None:
    """None for a first line, else what _conflict says."""
    key = (record.service, record.counters.version, record.counters.at)
    first = seen.setdefault(key, record)
    return None if first is record else _conflict(record, first, where)


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
        if record is None or isinstance(record, TraceLever | TraceCommand):
            skipped += 1  # events, levers' outcomes included, are not counters
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
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="surrogateescape")
    return path.open(encoding="utf-8-sig", errors="surrogateescape")


@contextmanager
def _reading(path: str | Path) -> Iterator[IO[str]]:
    """open_trace, with a broken gzip turned into the OSError every other unreadable file is."""
    try:
        with open_trace(path) as handle:
            yield handle
    except EOFError:  # a gzip cut short
        raise OSError("the gzip'd file is cut short") from None
    except zlib.error as exc:
        raise OSError(f"the gzip'd file is damaged ({exc})") from None


def read_trace(path: str | Path) -> TraceRead:
    """Read a whole trace file into memory (small traces, tests; replay streams, see
    scan_trace and time_ordered). OSError (missing, unreadable, a broken gzip) is the caller's
    to report; TraceFormatError too."""
    with _reading(path) as handle:
        return parse_lines(bounded_lines(handle), str(path))


# --- Streaming: a trace of any length in bounded memory -------------------------------------

Item = TraceRecord | TraceTick | TraceLever | TraceCommand
REORDER_WINDOW = 300.0
"""Seconds of trace time a line may come late (behind the latest line before it) and still be
put in place while streaming: lines from several scrapers or a merged export interleave a little.
A file out of order by more is sorted through temporary files instead (same result, slower)."""
SORT_RUN = 8_000_000
"""Characters of lines sorted in memory at a time when a trace must be sorted through files."""
KEPT_PROBLEMS = 100
"""Problem lines a scan keeps word for word; beyond these it only counts them."""


def item_time(item: Item) -> float:
    return item.counters.at if isinstance(item, TraceRecord) else item.at


def _ignore(_problem: str) -> None:
    return None


def _items(lines: Iterable[str], where: str, problem: Callable[[str], None]
           ) -> Iterator[tuple[int, str, Item | None]]:
    """(line number, text, parsed line or None for blank/other kinds), bad lines to `problem`."""
    for number, text in enumerate(lines, start=1):
        try:
            item = parse_line(text, number)
        except TraceLineError as exc:
            problem(f"{where}:{number}: bad trace line: {exc}")
            continue
        except TraceFormatError as exc:
            raise TraceFormatError(f"{where}:{number}: {exc}") from None
        yield number, text, item


@dataclass
class TraceScan:
    """What one pass over a trace learns, in memory that does not grow with its length."""

    problems: list[str] = field(default_factory=list)  # the first KEPT_PROBLEMS, word for word
    bad: int = 0  # all bad lines
    skipped: int = 0  # lines of other kinds (events, levers' outcomes ...) and blank lines
    counters: int = 0  # counters lines (exact repeats included)
    versions: dict[str, set[str]] = field(default_factory=dict)  # service -> versions seen
    tick_services: set[str] = field(default_factory=set)  # services with tick lines
    in_order: bool = True  # no line more than REORDER_WINDOW behind the latest before it

    def problem(self, text: str) -> None:
        self.bad += 1
        if len(self.problems) < KEPT_PROBLEMS:
            self.problems.append(text)

    def add(self, item: Item) -> None:
        if isinstance(item, TraceLever | TraceCommand):
            self.skipped += 1  # an event line, though a replay reads it
        elif isinstance(item, TraceTick):
            self.tick_services.add(item.service)
        else:
            self.counters += 1
            self.versions.setdefault(item.service, set()).add(item.counters.version)


def scan_trace(path: str | Path, window: float = REORDER_WINDOW) -> TraceScan:
    """First pass: bad lines, versions, tick lines, and whether the file is in time order
    within `window`. Raises OSError / TraceFormatError as read_trace does."""
    scan = TraceScan()
    latest = -math.inf
    with _reading(path) as handle:
        for _number, _text, item in _items(bounded_lines(handle), str(path), scan.problem):
            if item is None:
                scan.skipped += 1
                continue
            scan.add(item)
            at = item_time(item)
            scan.in_order = scan.in_order and at >= latest - window
            latest = max(latest, at)
    return scan


Keyed = tuple[float, int, Item]  # (time, line number, line): the replay's order


def _window_sorted(path: str | Path, window: float) -> Iterator[Keyed]:
    """Lines in time order through a heap of the last `window` seconds: right for a file whose
    lines are never more than `window` behind the latest line before them (scan_trace)."""
    heap: list[Keyed] = []
    with _reading(path) as handle:
        for number, _text, item in _items(bounded_lines(handle), str(path), _ignore):
            if item is None:
                continue
            at = item_time(item)
            heapq.heappush(heap, (at, number, item))
            while heap[0][0] < at - window:
                yield heapq.heappop(heap)
    while heap:
        yield heapq.heappop(heap)


def _write_run(folder: str, index: int, run: list[tuple[float, int, str]]) -> Path:
    path = Path(folder) / f"run-{index}.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for entry in sorted(run):
            handle.write(json.dumps(entry, separators=(",", ":")) + "\n")
    return path


def _read_run(path: Path) -> Iterator[tuple[float, int, str]]:
    with path.open(encoding="utf-8") as handle:
        for text in handle:
            at, number, line = json.loads(text)
            yield at, number, line


def _file_sorted(path: str | Path, run_size: int = SORT_RUN) -> Iterator[Keyed]:
    """Lines in time order for a file in any order: sorted runs of `run_size` characters in
    temporary files, merged (an external merge sort: memory stays bounded, time is one more
    write and read of the usable lines)."""
    with tempfile.TemporaryDirectory(prefix="releasedeck-replay-") as folder:
        runs: list[Path] = []
        run: list[tuple[float, int, str]] = []
        size = 0
        with _reading(path) as handle:
            for number, text, item in _items(bounded_lines(handle), str(path), _ignore):
                if item is None:
                    continue
                run.append((item_time(item), number, text.strip()))
                size += len(text)
                if size >= run_size:
                    runs.append(_write_run(folder, len(runs), run))
                    run, size = [], 0
        run.sort()
        for at, number, text in heapq.merge(*(_read_run(p) for p in runs), iter(run)):
            item = parse_line(text, number)
            if item is not None:
                yield at, number, item


def _unrepeated(keyed: Iterable[Keyed], where: str,
                problem: Callable[[str], None]) -> Iterator[Item]:
    """Lines in time order with repeats dropped as parse_lines drops them: lines of one time
    are adjacent here, so only the current time's lines are remembered."""
    now: float | None = None
    seen: dict[tuple[str, str], TraceRecord] = {}
    ticks: dict[object, tuple[int, Item]] = {}  # tick lines by service, events: (line, line)
    for at, number, item in keyed:
        if at != now:
            now = at
            seen.clear()
            ticks.clear()
        if not isinstance(item, TraceRecord):
            key = item.service if isinstance(item, TraceTick) else item
            line, first_item = ticks.setdefault(key, (number, item))
            if line == number:
                yield item
            elif first_item != item:
                problem(f"{where}:{number}: bad trace line: a tick at {rfc3339(at)} is already "
                        f"recorded on line {line} otherwise; this line is ignored")
            continue
        first = seen.setdefault((item.service, item.counters.version), item)
        if first is item:
            yield item
        elif message := _conflict(item, first, where):
            problem(message)


def time_ordered(path: str | Path, *, in_order: bool, problem: Callable[[str], None],
                 window: float = REORDER_WINDOW, run_size: int = SORT_RUN) -> Iterator[Item]:
    """Second pass: every usable line in time order (ties in file order), repeats dropped
    and conflicting repeats given to `problem`. `in_order` is scan_trace's: a file in order
    within `window` streams through a heap; any other is sorted through temporary files."""
    keyed = _window_sorted(path, window) if in_order else _file_sorted(path, run_size)
    return _unrepeated(keyed, str(path), problem)


def counters_line(counters: RawCounters, service: str = "", *, weight: float | None = None,
                  ready: int | None = None, total: int | None = None,
                  sample: MetricSample | None = None, window: float | None = None) -> str:
    """Serialize one version's counters (and the platform facts seen with them) as a line;
    with `sample` and its `window`, the window values a source without exact counts gave."""
    body: dict[str, Any] = {"ts": rfc3339(counters.at), "at": counters.at}  # see EXACT
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
    if sample is not None and window:
        body["sample"] = _sample_body(sample, window)
    return json.dumps(body, separators=(",", ":"))


def tick_line(at: float, service: str = "", error: str | None = None,
              decided: float | None = None) -> str:
    """A driver tick as a trace line: collected at `at`, decided at `decided` (engine time);
    `error` when its collection gave no counters."""
    body: dict[str, Any] = {"kind": TICK, "ts": rfc3339(at), "at": at}  # see EXACT
    if decided is not None:
        body["decided"], body["decided_at"] = rfc3339(decided), decided
    if service:
        body["service"] = service
    if error:
        body["error"] = error
    return json.dumps(body, separators=(",", ":"))


def event_line(event: Event) -> str:
    """An event as a trace line: kind "event", kept for post-mortems; a replay reads only the
    levers' outcomes. `at` is the event's exact time (see EXACT)."""
    return json.dumps({"kind": "event", **json.loads(event.to_json()), "at": event.at},
                      separators=(",", ":"))
