"""The journal: an append-only JSON-lines file of every decision, written before it is acted on.

A restart reads it back and folds the records into the same RolloutState, so the rollout is
never lost and no action the journal shows as done is taken again. Local file I/O only.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strategies.files import append_whole, not_regular
from strategies.model import Action, Decision, DecisionKind, Phase, rfc3339

FORMAT = 1


@dataclass(frozen=True)
class RunId:
    """Which release a journal record belongs to."""

    service: str
    baseline: str
    candidate: str
    run: str  # opaque id of one attempt, set when the run starts


def decision_to_record(decision: Decision, seq: int, run: RunId) -> dict[str, Any]:
    return {
        "journal": FORMAT,
        "ts": rfc3339(decision.at),
        "at": decision.at,
        "seq": seq,
        "release": run.service,
        "baseline": run.baseline,
        "candidate": run.candidate,
        "run": run.run,
        "kind": decision.kind.value,
        "phase": decision.phase.value,
        "step": decision.step,
        "weight": decision.weight,
        "actor": decision.actor,
        "reason": decision.reason,
        "evidence": [dict(e) for e in decision.evidence],
        "actions": [a.to_dict() for a in decision.actions],
        "refused": decision.refused,
    }


def record_to_decision(record: Mapping[str, Any]) -> Decision:
    return Decision(
        kind=DecisionKind(record["kind"]),
        at=float(record["at"]),
        phase=Phase(record["phase"]),
        step=int(record["step"]),
        weight=int(record["weight"]),
        actor=str(record.get("actor", "engine")),
        reason=str(record.get("reason", "")),
        evidence=tuple(record.get("evidence", ())),
        actions=tuple(Action.from_dict(a) for a in record.get("actions", ())),
        refused=bool(record.get("refused", False)),
    )


@dataclass(frozen=True)
class JournalRead:
    records: list[dict[str, Any]]
    problems: list[str]  # lines that could not be read (e.g. a write cut short by a crash)
    torn_tail: bool = False  # the last line was cut short: a crash while writing it, so never acted on


def read_records(path: str | Path, *, validate: bool = True,
                 skip_kinds: frozenset[str] = frozenset()) -> JournalRead:
    """All readable records, in order. A torn or garbled line is reported, not fatal.

    `validate` also checks that each record decodes into a Decision, as a resume needs;
    readers that only summarise (history) skip it, at a third of the cost per line. Lines of a
    kind in `skip_kinds` (as the writer spells it, `"kind":"evidence"`) are passed over before
    they are decoded: the per-tick evidence checkpoints are most of a journal's bytes and say
    nothing to a reader that only wants decisions.

    Raises NotAJournal when the path is a folder, FIFO, device or socket (`--journal
    /dev/full` would otherwise be read forever).

    A torn last line is the expected trace of a crash mid-write: since every decision is written
    before it is acted on, that decision was never carried out and is safely dropped. A bad line
    anywhere else means the file was damaged, and is reported as such.
    """
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    target = Path(path)
    refuse_irregular(target)
    if not target.exists():
        return JournalRead(records, problems)
    with target.open(encoding="utf-8", errors="replace") as handle:
        lines = handle.read().split("\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    torn = False
    markers = tuple(f'"kind":"{kind}"' for kind in skip_kinds)
    for index, line in enumerate(lines):
        text = line.strip()
        if not text or (markers and index != last and any(m in text for m in markers)):
            continue
        try:
            record = json.loads(text)
            if not isinstance(record, dict):
                raise TypeError(f"expected an object, got {type(record).__name__}")
            if validate:
                record_to_decision(record)
        except (ValueError, KeyError, TypeError) as exc:
            torn = torn or index == last
            problems.append(line_problem(target, index, last, exc))
            continue
        records.append(record)
    return JournalRead(records, problems, torn)


def newer_format(records: Iterable[Mapping[str, Any]]) -> int | None:
    """The newest journal format among records written by a later releasedeck, if any: a run
    such a version journaled may hold decisions this one would misread, so it is not resumed."""
    newer = [r["journal"] for r in records
             if isinstance(r.get("journal"), int) and r["journal"] > FORMAT]
    return max(newer) if newer else None


def line_problem(target: Path, index: int, last: int, exc: Exception) -> str:
    """How a journal line that is not a record is reported, by every reader of journals: the
    last line is a write a crash cut short (never acted on), any other one is damage."""
    if index == last:
        return (f"{target}:{index + 1}: last journal line cut short "
                f"(a crash or a full disk while writing it); ignored, it was never acted on")
    return f"{target}:{index + 1}: unreadable journal line, skipped ({exc})"


class NotAJournal(ValueError):
    """The journal path names something other than a regular file: refused (exit 2)."""


def refuse_irregular(path: str | Path) -> None:
    """Raise NotAJournal (one line) unless `path` is a regular file or does not exist yet."""
    kind = not_regular(path)
    if kind:
        raise NotAJournal(f"journal {path}: not a regular file (it is {kind}); "
                          f"name a file with --journal")


def last_run(records: Iterable[Mapping[str, Any]], service: str, baseline: str,
             candidate: str) -> list[dict[str, Any]]:
    """The records of the newest run of this release, or [] if the journal has none."""
    chosen: list[dict[str, Any]] = []
    current = None
    for record in records:
        if (record.get("release"), record.get("baseline"), record.get("candidate")) != (
                service, baseline, candidate):
            continue
        if record.get("run") != current:
            current = record.get("run")
            chosen = []
        chosen.append(dict(record))
    return chosen


def _ends_without_newline(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() == 0:
                return False
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) != b"\n"
    except FileNotFoundError:
        return False


def torn_path(path: Path) -> Path:
    """Where a torn last line is kept once it is cut off the journal."""
    return path.with_name(path.name + ".torn")


def set_aside_torn(path: Path) -> None:
    """Cut a last line torn by a crash off the journal, keeping its bytes in `<journal>.torn`.

    The torn line was never acted on (every decision is written before it is acted on). Ending
    it with a newline instead, as before, glued it into the middle of the file, where every
    later read warned about it again; cut off, it is warned about once (by the read before this
    writer opened) and later runs are quiet. The bytes are kept, not thrown away, for a person
    who wants to see what the crash cut."""
    with path.open("r+b") as handle:
        data = handle.read()
        keep = data.rfind(b"\n") + 1  # 0 when the whole file is one torn line
        if _whole_record(data[keep:]):
            # Only its newline was lost (a write cut one byte short): readers took it as a
            # record and a resume folded it, so it stays in the journal, ended.
            handle.write(b"\n")
            handle.flush()
            os.fsync(handle.fileno())
            return
        with torn_path(path).open("ab") as aside:
            aside.write(data[keep:] + b"\n")
            aside.flush()
            os.fsync(aside.fileno())
        handle.truncate(keep)
        handle.flush()
        os.fsync(handle.fileno())


def _whole_record(tail: bytes) -> bool:
    """Whether a last line without its newline still reads as a record, as readers take it."""
    try:
        return isinstance(json.loads(tail.decode("utf-8")), dict)
    except ValueError:
        return False


class JournalError(OSError):
    """The journal cannot be written: nothing more may be decided or done (the driver holds;
    headless exits 3), and `line` says which file and the OS's reason, in one line."""

    def __init__(self, path: Path, reason: str, *, resumable: bool = True):
        self.path = path
        self.reason = reason
        after = "fix it, then run again to resume" if resumable else \
            "this run cannot be resumed (its journal is deleted on exit)"
        self.line = f"journal {path}: cannot write ({reason}); nothing more is decided or done: {after}"
        super().__init__(self.line)

    def __str__(self) -> str:
        return self.line


class JournalWriter:
    """Appends records durably: each line is written whole, then fsynced, before the caller acts.

    The journal is the run's memory, so a journal deleted or replaced while the run goes on
    (a clean-up script, a hand) is written again before the next record: the run being
    resumed (`carry`) and every line this writer wrote, then the new line; `warn` says so once
    each time. Without it the run would go on writing into a file no one can open, and the
    next start would begin the release again from its first step.

    The disk can say no mid-line (a full filesystem, a file size limit, EIO). Lines go out
    unbuffered, so a failed write leaves nothing queued in this process that a later write or
    `close()` could still put on disk (a decision nobody folded, acted on at the next resume);
    and the part of the line that did reach the file is cut off again, so the journal ends on
    its last whole record. If even that cut fails, the next run sets the torn line aside.
    """

    def __init__(self, path: str | Path, *, carry: Iterable[Mapping[str, Any]] = (),
                 warn: Callable[[str], None] | None = None, resumable: bool = True):
        self.path = Path(path)
        self.resumable = resumable  # False: a demo's journal, deleted on exit (its failure says so)
        refuse_irregular(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if _ends_without_newline(self.path):
            set_aside_torn(self.path)
        self._handle = self.path.open("ab", buffering=0)
        self._lines = [_line(record) for record in carry]
        self._warn = warn
        self._failed: JournalError | None = None

    def __call__(self, record: Mapping[str, Any]) -> None:
        if self._failed is not None:  # not retried: the caller holds from the first failure
            raise self._failed
        line = _line(record)
        try:
            if self._gone():
                self._write_again()
            append_whole(self._handle.fileno(), line)
            os.fsync(self._handle.fileno())
        except (OSError, NotAJournal) as exc:
            # Nothing may be acted on unless it is journaled: the run must stop here.
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._failed = JournalError(self.path, reason, resumable=self.resumable)
            raise self._failed from None
        self._lines.append(line)

    def _gone(self) -> bool:
        """Whether the path no longer names the file this writer appends to."""
        mine = os.fstat(self._handle.fileno())
        try:
            there = os.stat(self.path)
        except FileNotFoundError:
            return True
        return (there.st_dev, there.st_ino) != (mine.st_dev, mine.st_ino)

    def _write_again(self) -> None:
        self._handle.close()
        refuse_irregular(self.path)
        self._handle = self.path.open("ab", buffering=0)
        append_whole(self._handle.fileno(), "".join(self._lines))
        if self._warn is not None:
            self._warn(f"journal {self.path} was deleted or replaced while the run went on: "
                       f"written again with this run's {len(self._lines)} records (earlier "
                       "runs' records in it are gone)")

    def close(self) -> None:
        """Close; nothing is buffered, so closing never writes (or fails to write) a line."""
        if not self._handle.closed:
            with contextlib.suppress(OSError):
                self._handle.close()


def _line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":")) + "\n"


class MemoryJournal:
    """A journal kept in a list: for tests, replays and runs that asked for no file."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def __call__(self, record: Mapping[str, Any]) -> None:
        self.records.append(json.loads(json.dumps(record)))

    def close(self) -> None:
        return None
