"""`releasedeck history [SPEC|DIR|JOURNAL ...]`: how past releases went, from their journals.

Finds the journals (a spec's own, every journal under a folder, or a journal file named
directly), summarises each attempt with `strategies.history`, and prints a table, JSON or CSV,
followed by the delivery figures over the period and, with `--plot`, a chart per day.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from strategies.duration import format_duration, parse_duration
from strategies.history import DAY, DeliveryFigures, RunSummary, delivery_figures, summarise
from strategies.journal import FORMAT as JOURNAL_FORMAT
from strategies.journal import NotAJournal, newer_format
from strategies.json_lines import read_decisions
from strategies.model import parse_rfc3339, rfc3339
from strategies.spec import SpecError, load_spec
from tui import exitcodes

JOURNAL_SUFFIX = ".releasedeck.journal"
# Journal lines history never reads: per-tick evidence checkpoints, lever reconciliations and
# action confirmations (most of a journal's lines; a summary needs the decisions).
NOT_DECISIONS = frozenset({"evidence", "reconcile", "action_done", "action_failed"})


@dataclass(frozen=True)
class JournalSource:
    """One journal to read, and what its spec says about the release (when a spec named it)."""

    path: Path
    strategy: str = ""


def add_parser(sub: argparse._SubParsersAction) -> None:
    history = sub.add_parser(
        "history", help="past releases and delivery figures, read from the journals",
        description="Summarise every release attempt found in the journals: when, versions, "
                    "strategy, outcome, duration, the deciding gate with its evidence and "
                    "operator commands; then deployment frequency, change failure rate, time "
                    "to restore, analysis vs waiting time and lead time.")
    history.add_argument("paths", nargs="*", metavar="SPEC|DIR|JOURNAL", default=["."],
                         help="a release spec (its journal is read), a folder (every spec and "
                              f"*{JOURNAL_SUFFIX} under it) or a journal file; default: .")
    form = history.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="one JSON object: runs and figures")
    form.add_argument("--csv", action="store_true", help="one CSV row per attempt")
    history.add_argument("--since", metavar="TIME|AGO",
                         help="only attempts started at or after: RFC 3339, or a duration ago "
                              "(e.g. 30d)")
    history.add_argument("--until", metavar="TIME|AGO", help="only attempts started before this")
    history.add_argument("--commit-time", action="append", default=[], metavar="VERSION=TIME",
                         help="when VERSION's change was committed (RFC 3339), for lead time; "
                              "repeatable")
    history.add_argument("--plot", action="store_true",
                         help="after the table, a chart of promoted and failed releases per day "
                              "(per week over longer periods)")


def history_command(args: argparse.Namespace, out: TextIO, err: TextIO,
                    now: float | None = None) -> int:
    moment = time.time() if now is None else now
    try:
        since = _moment(args.since, moment)
        until = _moment(args.until, moment)
        commits = dict(_commit_time(item) for item in args.commit_time)
    except ValueError as exc:
        print(f"releasedeck history: {exc}", file=err)
        return exitcodes.USAGE
    report = load_history(args.paths, since=since, until=until, commit_times=commits)
    for problem in report.problems:
        print(f"releasedeck history: {problem}", file=err)
    if not report.journals:
        print("releasedeck history: no journals found in " + ", ".join(args.paths), file=err)
        return exitcodes.USAGE
    runs, figures = report.runs, report.figures
    if args.json:
        json.dump({"runs": [run_json(r) for r in runs], "figures": figures_json(figures)}, out)
        out.write("\n")
    elif args.csv:
        _write_csv(runs, out)
    else:
        _write_table(runs, figures, out)
        if args.plot:
            out.write(plot(figures) + "\n")
    return exitcodes.PROMOTED


@dataclass(frozen=True)
class HistoryReport:
    """What the journals say: every attempt (oldest first), the figures, and what was skipped."""

    runs: tuple[RunSummary, ...]
    figures: DeliveryFigures
    journals: tuple[Path, ...]
    problems: tuple[str, ...]


def load_history(paths: Sequence[str], *, since: float | None = None, until: float | None = None,
                 commit_times: Mapping[str, float] | None = None) -> HistoryReport:
    """Read the journals the paths name and summarise them: the one reading both the
    `history` command and the app's History view use, so they cannot disagree."""
    problems = io.StringIO()
    sources = list(_sources(paths, problems))
    said = [line.removeprefix("releasedeck history: ") for line in problems.getvalue().splitlines()]
    runs: list[RunSummary] = []
    for source in sources:
        try:
            read = read_decisions(source.path, skip_kinds=NOT_DECISIONS)
        except NotAJournal as exc:
            said.append(f"{exc}; skipped")
            continue
        except OSError as exc:  # unreadable (permissions, EIO): the other journals still count
            said.append(f"{exc.filename or source.path}: cannot read ({exc.strerror or exc}); "
                        "skipped")
            continue
        said.extend(str(problem) for problem in read.problems)
        said.extend(foreign_records(source.path, read.records))
        runs.extend(summarise(read.records, source=str(source.path), strategy=source.strategy))
    runs = [r for r in runs if (since is None or r.started >= since)
            and (until is None or r.started < until)]
    runs.sort(key=lambda r: r.started)
    figures = delivery_figures(runs, since=since, until=until, commit_times=dict(commit_times or {}))
    return HistoryReport(tuple(runs), figures, tuple(s.path for s in sources), tuple(said))


def foreign_records(path: Path, records: Sequence[Mapping[str, Any]]) -> list[str]:
    """What in a journal file is not a journal record this releasedeck writes, said once per
    file: a file of `--headless` events or another tool's JSON would otherwise read as "0
    attempts" with no word why, and a newer journal format as if it were fully understood."""
    said = []
    foreign = [r for r in records if not isinstance(r.get("at"), int | float) or "kind" not in r]
    if foreign:
        events = sum(1 for r in foreign if "event" in r and "ts" in r)
        verb = "looks" if events == 1 else "look"
        hint = (f"; {events} {verb} like releasedeck events (--headless output): history reads "
                "the journal a run writes (.NAME.releasedeck.journal beside the spec, or the "
                "file --journal named)") if events else ""
        said.append(f"{path}: {len(foreign)} of {len(records)} readable lines are not journal "
                    f"records, skipped{hint}")
    newer = newer_format(records)
    if newer is not None:
        said.append(f"{path}: written in journal format {newer} by a newer releasedeck "
                    f"(this one reads {JOURNAL_FORMAT}): read as far as understood")
    return said


def _moment(text: str | None, now: float) -> float | None:
    if text is None:
        return None
    try:
        return parse_rfc3339(text)
    except ValueError:
        pass
    try:
        return now - parse_duration(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither an RFC 3339 time nor a duration such as 30d") from None


def _commit_time(item: str) -> tuple[str, float]:
    version, sep, when = item.partition("=")
    if not sep or not version:
        raise ValueError(f"--commit-time {item!r}: expected VERSION=TIME")
    try:
        return version, parse_rfc3339(when)
    except ValueError:
        raise ValueError(f"--commit-time {item!r}: {when!r} is not an RFC 3339 time") from None


def _sources(paths: Sequence[str], err: TextIO) -> Iterator[JournalSource]:
    """Every journal the arguments name, each once (a spec and its journal may both be given)."""
    seen: set[Path] = set()
    for text in paths:
        path = Path(text)
        if path.is_dir():
            found = [*sorted(path.rglob("*.toml")), *sorted(path.rglob(f"*{JOURNAL_SUFFIX}"))]
        elif path.exists():
            found = [path]
        else:
            print(f"releasedeck history: {path}: no such file or folder", file=err)
            continue
        for item in found:
            source = _from_spec(item, err) if item.suffix == ".toml" else JournalSource(item)
            if source is None or not source.path.exists():
                continue
            key = source.path.resolve()
            if key in seen:
                continue
            seen.add(key)
            yield source


def _from_spec(path: Path, err: TextIO) -> JournalSource | None:
    try:
        spec = load_spec(path)
    except SpecError as exc:
        if Path(path).with_name(f".{path.stem}{JOURNAL_SUFFIX}").exists():
            print(f"releasedeck history: {path}: spec unreadable ({len(exc.problems)} problem(s));"
                  f" its journal is read without the strategy", file=err)
            return JournalSource(path.with_name(f".{path.stem}{JOURNAL_SUFFIX}"))
        return None
    return JournalSource(spec.journal_path(), spec.strategy.kind)


# --------------------------------------------------------------------------- output


def run_json(run: RunSummary) -> dict[str, Any]:
    return {
        "release": run.release, "baseline": run.baseline, "candidate": run.candidate,
        "run": run.run, "attempt": run.attempt, "strategy": run.strategy,
        "started": rfc3339(run.started),
        "ended": None if run.ended is None else rfc3339(run.ended),
        "duration_seconds": run.duration, "outcome": run.outcome.value,
        "step": run.steps_reached + 1, "decided_by": run.decided_by, "reason": run.reason,
        "deciding_gate": None if run.deciding is None else dict(run.deciding),
        "analysis_seconds": round(run.analysis_seconds, 3),
        "waiting_seconds": round(run.waiting_seconds, 3),
        "time_to_restore_seconds": run.time_to_restore,
        "commands": [{"ts": rfc3339(c.at), "actor": c.actor, "command": c.kind,
                      "reason": c.reason, "refused": c.refused} for c in run.commands],
        "journal": run.source,
    }


def figures_json(figures: DeliveryFigures) -> dict[str, Any]:
    return {
        "since": None if figures.since is None else rfc3339(figures.since),
        "until": None if figures.until is None else rfc3339(figures.until),
        "attempts": figures.attempts, "finished": figures.finished,
        "promoted": figures.promoted, "failed": figures.failed,
        "deployments_per_day": figures.deployments_per_day,
        "change_failure_rate": figures.change_failure_rate,
        "time_to_restore_median_seconds": figures.time_to_restore_median,
        "lead_time_median_seconds": figures.lead_time_median,
        "analysis_seconds": round(figures.analysis_seconds, 3),
        "waiting_seconds": round(figures.waiting_seconds, 3),
        "per_day": [{"day": rfc3339(day)[:10], "promoted": p, "failed": f}
                    for day, p, f in figures.per_day],
    }


CSV_COLUMNS = ("started", "ended", "release", "baseline", "candidate", "strategy", "attempt",
               "outcome", "duration_seconds", "step", "decided_by", "deciding_gate", "value",
               "threshold", "analysis_seconds", "waiting_seconds", "time_to_restore_seconds",
               "commands", "journal")


def _write_csv(runs: Sequence[RunSummary], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for run in runs:
        row = run_json(run)
        gate = run.deciding or {}
        writer.writerow([row["started"], row["ended"] or "", run.release, run.baseline,
                         run.candidate, run.strategy, run.attempt, run.outcome.value,
                         "" if run.duration is None else f"{run.duration:.3f}", row["step"],
                         run.decided_by, gate.get("gate", ""), _blank(gate.get("value")),
                         _blank(gate.get("threshold")), row["analysis_seconds"],
                         row["waiting_seconds"], _blank(run.time_to_restore),
                         "; ".join(f"{c.kind}{' (refused)' if c.refused else ''}"
                                   for c in run.commands), run.source])


def _blank(value: Any) -> str:
    return "" if value is None else str(value)


def _span(seconds: float | None) -> str:
    return "—" if seconds is None else format_duration(round(seconds))


def _cause(run: RunSummary) -> str:
    gate = run.deciding
    if gate and gate.get("gate"):
        value, bound = gate.get("value"), gate.get("threshold")
        shown = f"{gate['gate']}"
        if value is not None and bound is not None:
            shown += f" {value:g} vs {bound:g}"
        return shown
    return run.decided_by if run.outcome.failed else ""


TABLE_HEADER = ("started (UTC)", "release", "versions", "strategy", "outcome", "took", "step",
                "cause", "by hand")


def table_row(run: RunSummary) -> tuple[str, ...]:
    """One attempt as the table shows it (the CLI's table and the app's History view)."""
    return (rfc3339(run.started)[:19].replace("T", " "), run.release,
            f"{run.baseline}→{run.candidate}" + (f" #{run.attempt}" if run.attempt > 1 else ""),
            run.strategy or "—", run.outcome.value.replace("_", " "), _span(run.duration),
            str(run.steps_reached + 1), _cause(run) or "—", _by_hand(run))


def _by_hand(run: RunSummary) -> str:
    return ", ".join(c.kind for c in run.commands if not c.refused) or "—"


def table_lines(runs: Sequence[RunSummary], width: int | None = None) -> list[str]:
    """The attempts as aligned columns; when `width` is given and they do not fit, each attempt
    takes two lines instead (what happened, then why and who acted), so nothing is cut."""
    rows = [table_row(r) for r in runs]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
              for i, h in enumerate(TABLE_HEADER)]
    if width is None or sum(widths) + 2 * (len(widths) - 1) <= width:
        return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                for row in (TABLE_HEADER, *rows)]
    lines = []
    for run, row in zip(runs, rows, strict=True):
        started, release, versions, strategy, outcome, took, step = row[:7]
        lines.append(f"{started[:16]}  {release} {versions}  {strategy}  {outcome}  {took}  "
                     f"step {step}")
        hands = ", ".join(f"{c.kind} ({c.actor} {rfc3339(c.at)[11:19]})"
                          for c in run.commands if not c.refused)
        lines.append(f"  cause {row[7]}" + (f" · by hand {hands}" if hands else ""))
    return lines


def _write_table(runs: Sequence[RunSummary], figures: DeliveryFigures, out: TextIO) -> None:
    for line in table_lines(runs):
        out.write(line + "\n")
    out.write("\n" + figures_text(figures) + "\n")


def figures_text(figures: DeliveryFigures) -> str:
    period = "—" if figures.since is None or figures.until is None else \
        f"{rfc3339(figures.since)[:10]} → {rfc3339(figures.until)[:10]}"
    rate = "—" if figures.change_failure_rate is None else f"{figures.change_failure_rate:.0%}"
    frequency = "—" if figures.deployments_per_day is None else \
        f"{figures.deployments_per_day:.2f}/day"
    return "\n".join((
        f"period {period}: {figures.attempts} attempt{'' if figures.attempts == 1 else 's'}, "
        f"{figures.promoted} promoted, "
        f"{figures.failed} rolled back or aborted",
        f"deployment frequency {frequency} · change failure rate {rate} · "
        f"time to restore (median) {_span(figures.time_to_restore_median)} · "
        f"lead time (median) {_span(figures.lead_time_median)}",
        f"time in analysis {_span(figures.analysis_seconds)} · waiting for a person "
        f"{_span(figures.waiting_seconds)}",
    ))


def plot(figures: DeliveryFigures, width: int = 40) -> str:
    """Promoted and failed releases per day (per week past 31 days) as bars, one row a period.

    Plain text on purpose: whole-number counts, one shared scale, the legend above the bars and
    the change failure rate of each period beside its bar, readable in any terminal or log.
    """
    if not figures.per_day:
        return "(nothing to plot: no finished release in the period)"
    weekly = figures.per_day[-1][0] - figures.per_day[0][0] > 31 * DAY
    periods: dict[str, list[int]] = {}
    for day, promoted, failed in figures.per_day:
        moment = datetime.fromtimestamp(day, tz=UTC)
        label = moment.strftime("%G-W%V") if weekly else moment.strftime("%Y-%m-%d")
        counts = periods.setdefault(label, [0, 0])
        counts[0] += promoted
        counts[1] += failed
    top = max(p + f for p, f in periods.values())
    scale = min(1.0, width / top)
    lines = [f"releases per {'week' if weekly else 'day'}: █ promoted  ░ rolled back or aborted"
             f"  (one block = {1 / scale:.3g} release{'s' if scale < 1 else ''})"]
    for label, (promoted, failed) in periods.items():
        bar = "█" * round(promoted * scale) + "░" * round(failed * scale)
        rate = f"{failed / (promoted + failed):.0%} failed" if failed else ""
        lines.append(f"{label:>10}  {bar:<{width}}  {promoted:>3} ✓ {failed:>3} ✗  {rate}".rstrip())
    return "\n".join(lines)
