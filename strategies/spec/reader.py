"""Walking one TOML table: typed reads that collect problems instead of stopping at the first.

Also the helpers every section shares to word a problem the way the user wrote the input
(TOML spelling of values, quoted keys, "did you mean" hints) and to check PromQL templates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from strategies.duration import parse_duration
from strategies.model import Severity
from strategies.wording import hint, show, toml_key, unknown_key_hint


class Reader:
    """Walks one table, collecting problems instead of stopping at the first."""

    def __init__(self, problems: list[tuple[str, str]], table: Mapping[str, Any], where: str):
        self.problems = problems
        self.table = table
        self.where = where
        self.seen: set[str] = set()

    def at(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def problem(self, key: str, what: str) -> None:
        self.problems.append((self.at(key) if key else self.where, what))

    def raw(self, key: str) -> Any:
        self.seen.add(key)
        return self.table.get(key)

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None, *,
            required: bool = False, what: str = "") -> Any:
        value = self.raw(key)
        if value is None:
            if required:
                self.problem(key, f"is required{what}")
            return default
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            self.problem(key, f"must be {_kind_name(kinds)}, got {show(value)}")
            return default
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kinds):
            self.problem(key, f"must be {_kind_name(kinds)}, got {show(value)}")
            return default
        return value

    def text(self, key: str, default: str = "", *, required: bool = False,
             choices: tuple[str, ...] = ()) -> str:
        value = self.get(key, str, None, required=required)
        if value is None:
            return default
        if required and not value.strip():
            self.problem(key, "must not be empty")
        if choices and value not in choices:
            self.problem(key, f"must be one of {', '.join(choices)}, got {show(value)}"
                         + hint(value, choices))
            return default
        return value

    def number(self, key: str, default: float | None = None, *, low: float | None = None,
               high: float | None = None, required: bool = False) -> float | None:
        value = self.get(key, (float, int), None, required=required)
        if value is None:
            return default
        value = float(value)
        if not math.isfinite(value):
            self.problem(key, f"must be a finite number, got {show(value)}")
            return default
        if low is not None and value < low:
            self.problem(key, f"must be at least {low:g}, got {value:g}")
        if high is not None and value > high:
            self.problem(key, f"must be at most {high:g}, got {value:g}")
        return value

    def integer(self, key: str, default: int, *, low: int | None = None,
                high: int | None = None) -> int:
        value = self.get(key, int, None)
        if value is None:
            return default
        if low is not None and value < low:
            self.problem(key, f"must be at least {low}, got {value}")
        if high is not None and value > high:
            self.problem(key, f"must be at most {high}, got {value}")
        return value

    def duration(self, key: str, default: float) -> float:
        value = self.raw(key)
        if value is None:
            return default
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.problem(key, str(exc))
            return default

    def flag(self, key: str, default: bool) -> bool:
        return bool(self.get(key, bool, default))

    def severity(self, key: str, default: Severity) -> Severity:
        value = self.text(key, default.value, choices=tuple(s.value for s in Severity))
        return Severity(value)

    def table_of(self, key: str) -> Mapping[str, Any]:
        value = self.get(key, dict, {})
        return value

    def finish(self, allowed: tuple[str, ...] | None = None) -> None:
        """Report keys nobody asked for, with the closest known key as a hint."""
        known = tuple(self.seen) if allowed is None else allowed
        for key in self.table:
            if key not in self.seen and key not in known:
                self.problem(toml_key(key), "unknown key"
                             + unknown_key_hint(key, tuple(self.seen) + tuple(known)))


def _kind_name(kinds: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             dict: "a table", list: "a list"}
    picked = [names.get(k, k.__name__) for k in kinds if not (k is int and float in kinds)]
    return " or ".join(picked)


def table_readers(problems: list[tuple[str, str]], items: Any, name: str,
                  like: str = "") -> list[tuple[int, Reader]]:
    """A Reader for each table of an `[[name]]` array, with its index; a problem for the array
    or any item that is not a table. `like` shows an example table in that problem."""
    if items is None:
        return []
    if not isinstance(items, list):
        problems.append((name, f"must be an array of tables ([[{name}]])"))
        return []
    readers: list[tuple[int, Reader]] = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            readers.append((i, Reader(problems, item, f"{name}[{i}]")))
        else:
            shape = f"a table like {like}" if like else f"a table ([[{name}]])"
            problems.append((f"{name}[{i}]", f"must be {shape}, got {show(item)}"))
    return readers


PLACEHOLDERS = ("service", "version", "window", "version_label", "quantile")


def check_template(r: Reader, key: str, template: str) -> bool:
    """A PromQL template must only use the known placeholders (literal braces doubled)."""
    try:
        template.format(**dict.fromkeys(PLACEHOLDERS, "x"))
    except KeyError as exc:
        name = str(exc.args[0])
        r.problem(key, f"unknown placeholder {{{name}}}" + hint(name, PLACEHOLDERS)
                  + f"; known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}; "
                  "write PromQL's own braces doubled ({{ }})")
        return False
    except (ValueError, IndexError) as exc:
        r.problem(key, f"is not a valid template ({exc}); write PromQL's own braces doubled ({{{{ }}}})")
        return False
    return True
