"""A fast reader of journals for readers that only summarise (history): same records, less time.

`history` over a year of journals reads hundreds of MB, most of it per-tick evidence lines it
never needs, and its time went to decoding text and JSON in Python. This reader reads bytes,
passes over the skipped kinds with one compiled search per line, and decodes the rest with
orjson (C). It must give exactly what `strategies.journal.read_records(validate=False)` gives,
problems included, so anything orjson refuses (a damaged line, invalid UTF-8, a NaN, a lone
surrogate) or would read otherwise (an integer past 64 bits becomes a float there) is decoded
again the plain way, and a file with a carriage return (where text mode's universal newlines
would split lines differently) is read the plain way.
tests/history checks the two readers agree on damaged journals.
"""

from __future__ import annotations

import bisect
import gc
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from strategies.journal import JournalRead, line_problem, read_records, refuse_irregular

# 19 digits in a row, found as 19 zeros once every digit is a zero (a C pass, unlike a regex)
_DIGITS_AS_ZEROS = bytes.maketrans(b"123456789", b"000000000")
_LONG = b"0" * 19


def read_decisions(path: str | Path, skip_kinds: frozenset[str] = frozenset()) -> JournalRead:
    """`read_records(path, validate=False, skip_kinds=skip_kinds)`, faster, same result."""
    target = Path(path)
    refuse_irregular(target)  # NotAJournal for a folder, FIFO or device, as read_records
    if not target.exists():
        return JournalRead([], [])
    data = target.read_bytes()
    if b"\r" in data:
        return read_records(target, validate=False, skip_kinds=skip_kinds)
    lines = data.split(b"\n")
    last = _last_line(lines)
    skip = _marker_search(skip_kinds)
    wanted = [i for i, line in enumerate(lines) if line and (skip is None or not skip(line))]
    if skip is not None and last >= 0 and skip(lines[last]):
        bisect.insort(wanted, last)  # the last line is always decoded: it may be a torn write
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    torn = False
    loads = orjson.loads
    zeros, long = _DIGITS_AS_ZEROS, _LONG
    append = records.append
    collecting = gc.isenabled()
    gc.disable()  # tens of thousands of new dicts, none cyclic: the collector would only rescan
    try:
        for index in wanted:
            line = lines[index]
            try:
                if long in line.translate(zeros):  # orjson turns integers past 64 bits into floats
                    raise orjson.JSONDecodeError("long number", "", 0)
                record = loads(line)
            except orjson.JSONDecodeError:
                record = _plain(line)  # blank, damaged or beyond orjson: the plain way
                if record is None:
                    continue
            if type(record) is dict:
                append(record)
                continue
            torn = torn or index == last
            problems.append(_problem(record, target, index, last))
    finally:
        if collecting:
            gc.enable()
    return JournalRead(records, problems, torn)


class _Unreadable:
    """A line the plain decoder refused, with the reason it gave."""

    def __init__(self, exc: Exception):
        self.exc = exc


def _plain(line: bytes) -> Any:
    """The line as `read_records` decodes it: None when blank, _Unreadable when refused."""
    text = line.decode("utf-8", errors="replace").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        return _Unreadable(exc)


def _problem(value: Any, target: Path, index: int, last: int) -> str:
    """The problem line `read_records` writes for a decoded value that is not a record."""
    exc = value.exc if isinstance(value, _Unreadable) else \
        TypeError(f"expected an object, got {type(value).__name__}")
    return line_problem(target, index, last, exc)


def _last_line(lines: list[bytes]) -> int:
    """Index of the last line that is not blank as text (str.strip, as read_records sees it)."""
    for index in range(len(lines) - 1, -1, -1):
        if lines[index].decode("utf-8", errors="replace").strip():
            return index
    return -1


def _marker_search(skip_kinds: frozenset[str]) -> Callable[[bytes], re.Match[bytes] | None] | None:
    """One compiled search for every `"kind":"<skipped>"` marker, or None when none is skipped."""
    if not skip_kinds:
        return None
    pattern = b"|".join(re.escape(f'"kind":"{kind}"'.encode()) for kind in sorted(skip_kinds))
    return re.compile(pattern).search
