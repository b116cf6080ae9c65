"""The fast journal reader (orjson, bytes, markers) reads exactly what the plain json reader reads.

`history` reads with `strategies.json_lines.read_decisions`; whatever it returns — records,
problem lines, the torn flag, and so the summaries — must be what
`strategies.journal.read_records(validate=False)` returns, damaged lines included.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.history import summarise
from strategies.journal import JournalWriter, read_records
from strategies.json_lines import read_decisions
from tests.history.test_history import _faulty_run, _healthy_run
from tests.strategies.brain_kit import T0
from tui.history import NOT_DECISIONS

DAY = 86_400.0

DAMAGE = [
    b"{not json at all",
    b"\xff\xfe{\"at\": 1}",  # invalid UTF-8: the plain reader replaces it, then fails
    b'{"at": NaN, "kind": "gate"}',  # json reads NaN, orjson does not
    b'{"at": 1e999, "kind": "paused"}',
    b'{"at": 1, "big": 123456789012345678901234567890}',  # past 64 bits
    b'{"at": 2, "reason": "\\ud800"}',  # a lone surrogate
    b"[1, 2]",
    b"   ",
    b"\x1f",  # blank to str.strip, not to bytes.strip
    b'\xc2\xa0{"at": 3, "kind": "resumed"}',  # a no-break space before the record
    b'{"at": 4, "kind": "started", "kind": "promoted"}',  # a repeated key: the last wins
    b'{"at": 5, "kind":"evidence", "reason": "skipped by its marker"}',
]


def _same(path: Path) -> None:
    plain = read_records(path, validate=False, skip_kinds=NOT_DECISIONS)
    fast = read_decisions(path, skip_kinds=NOT_DECISIONS)
    assert repr(fast.records) == repr(plain.records)  # repr: a NaN is equal to itself there
    assert fast.problems == plain.problems
    assert fast.torn_tail == plain.torn_tail
    assert repr(summarise(fast.records, source="j")) == repr(summarise(plain.records, source="j"))


def test_engine_journals_with_damaged_lines_read_the_same(tmp_path: Path) -> None:
    path = tmp_path / ".release.releasedeck.journal"
    writer = JournalWriter(path)
    _healthy_run(writer, T0)
    _faulty_run(writer, T0 + DAY)
    writer.close()
    lines = path.read_bytes().split(b"\n")
    assert len(lines) > 2 * len(DAMAGE)
    for n, bad in enumerate(DAMAGE):  # spread the damage through the journal
        lines.insert(1 + n * 2, bad)
    for tail in (b"", b'{"at": 9, "kind":"evidence", "run": "cut', b'{"at": 9, "kind":"evidence"}'):
        path.write_bytes(b"\n".join([*lines, tail]))
        _same(path)
        assert len(read_decisions(path, skip_kinds=NOT_DECISIONS).problems) >= 3  # not json, not UTF-8, not an object
    path.write_bytes(b"\r\n".join(lines))  # carriage returns: read the plain way
    _same(path)


line = st.one_of(
    st.builds(lambda kind, at, extra: json.dumps({"at": at, "kind": kind, "run": "r", **extra}),
              st.sampled_from(["started", "gate", "evidence", "reconcile", "action_done",
                               "paused", "promoted", "rolled_back"]),
              st.floats(min_value=0, max_value=2e9) | st.integers(),
              st.dictionaries(st.sampled_from(["actor", "reason", "refused", "evidence", "step"]),
                              st.none() | st.booleans() | st.integers() | st.text(max_size=6),
                              max_size=3)).map(str.encode),
    st.binary(max_size=12),
    st.sampled_from(DAMAGE),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(line, max_size=25), st.sampled_from([b"", b"\n"]))
def test_any_journal_bytes_read_the_same(lines: list[bytes], end: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "j.journal"
        path.write_bytes(b"\n".join(lines) + end)
        _same(path)
